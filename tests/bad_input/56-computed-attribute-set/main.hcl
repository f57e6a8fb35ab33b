resource "berth_data" "a" {
  input = "x"
  id    = "fixed"
}
