resource "berth_data" "a" {
  input = "yes" ? 1 : 2
}
