resource "berth_data" "a" {
  input = "x"
}

resource "berth_data" "a" {
  input = "y"
}
