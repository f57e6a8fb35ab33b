resource "berth_data" "b" {
  input      = "y"
  depends_on = [berth_data.nope]
}
