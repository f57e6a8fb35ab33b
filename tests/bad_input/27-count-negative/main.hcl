resource "berth_data" "a" {
  count = -1
  input = "x"
}
