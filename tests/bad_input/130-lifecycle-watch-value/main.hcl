resource "berth_data" "a" {
  input = "x"
  lifecycle {
    watch = "fix"
  }
}
