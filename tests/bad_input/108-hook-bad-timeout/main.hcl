resource "berth_data" "a" {
  input = "x"
}

hook "on_replace" {
  command = "kamal setup"
  timeout = "ten minutes"
}
