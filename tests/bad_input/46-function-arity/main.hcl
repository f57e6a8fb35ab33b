resource "berth_data" "a" {
  input = upper("x", "y")
}
