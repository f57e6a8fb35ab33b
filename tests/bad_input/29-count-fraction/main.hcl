resource "berth_data" "a" {
  count = 1.5
  input = "x"
}
