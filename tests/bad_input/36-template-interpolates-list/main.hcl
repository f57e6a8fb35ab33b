locals {
  hosts = ["a", "b"]
}

resource "berth_data" "a" {
  input = "hosts: ${local.hosts}"
}
