resource "berth_data" {
  input = "x"
}
