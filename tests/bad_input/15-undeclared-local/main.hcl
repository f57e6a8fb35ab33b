locals {
  name = "search"
}

resource "berth_data" "a" {
  input = local.nmae
}
