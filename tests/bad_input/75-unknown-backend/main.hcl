berth {
  backend "s4" {
    bucket = "x"
  }
}

resource "berth_data" "a" {
  input = "x"
}
