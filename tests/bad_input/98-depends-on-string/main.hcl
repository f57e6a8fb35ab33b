resource "berth_data" "a" {}
resource "berth_data" "b" {
  depends_on = ["berth_data.a"]
}
