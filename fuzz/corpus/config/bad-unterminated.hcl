resource "berth_data" "a" {
  input = "x
}
