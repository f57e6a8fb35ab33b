resource "berth_data" "a" {
  count = "three"
  input = "x"
}
