resource "berth_data" "a" {
  input = (1 + 2
}
