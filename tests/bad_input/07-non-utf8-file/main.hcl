resource "berth_data" "a" {
  input = "café"
}
