locals {
  zones = { a = "10.0.1.0/24", b = "10.0.2.0/24" }
}
resource "berth_data" "subnet" {
  for_each = local.zones
  input    = { zone = each.key, cidr = each.value }
}
