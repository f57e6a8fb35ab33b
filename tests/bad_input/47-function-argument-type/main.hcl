resource "berth_data" "a" {
  input = length(3)
}
