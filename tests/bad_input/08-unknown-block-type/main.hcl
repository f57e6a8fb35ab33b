resource "berth_data" "a" {
  input = "x"
}

resorce "berth_data" "b" {
  input = "y"
}
