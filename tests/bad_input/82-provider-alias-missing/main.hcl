resource "berth_data" "a" {
  provider = berth.other
  input    = "x"
}
