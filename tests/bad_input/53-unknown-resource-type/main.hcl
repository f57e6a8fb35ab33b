resource "berth_data" "a" {
  input = "x"
}

resource "berth_dat" "b" {
  input = "y"
}
