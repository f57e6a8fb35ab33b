variable "cidr" {
  type = string
}

resource "berth_data" "vpc" {
  input = var.cidr
}
