resource "berth_data" "a" {
  input = "ten" * 2
}
