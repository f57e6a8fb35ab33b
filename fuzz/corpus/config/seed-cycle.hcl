locals {
  a = local.b
  b = local.a
}
resource "berth_data" "x" { input = berth_data.y.id }
resource "berth_data" "y" { input = berth_data.x.id }
