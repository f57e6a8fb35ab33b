resource "berth_data" "a" {
  input            = "x"
  triggers_replace = [1]
  lifecycle {
    create_before_destroy = true
    prevent_destroy       = false
    ignore_changes        = [input]
  }
}
resource "berth_data" "b" {
  input      = berth_data.a.output
  depends_on = [berth_data.a]
}
resource "berth_sleep" "wait" {
  create_duration = "1s"
}
resource "berth_assert" "ok" {
  condition = berth_data.b.output == "x"
  message   = "b must be x"
}
