resource "berth_data" "a" {
  input = "x"
}

hook "on_replace" {
  command = ["kamal", 3]
}
