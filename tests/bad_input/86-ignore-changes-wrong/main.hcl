resource "berth_data" "a" {
  input = "x"
  lifecycle {
    ignore_changes = "input"
  }
}
