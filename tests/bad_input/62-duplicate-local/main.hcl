locals {
  name = "a"
}

locals {
  name = "b"
}

resource "berth_data" "a" {
  input = local.name
}
