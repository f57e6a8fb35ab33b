resource "berth_data" "a" {
  input = "x"
  lifecycle {
    prevent_destroy = "yes"
  }
}
