resource "berth_data" "a" {
  input = !3
}
