resource "berth_data" "a" {
  input = "x"

resource "berth_data" "b" {
  input = "y"
}
