locals {
  zones = ["a", "b"]
}

resource "berth_data" "a" {
  input = local.zones[2]
}
