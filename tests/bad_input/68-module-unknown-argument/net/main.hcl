variable "cidr" {
  type = string
}

variable "zones" {
  type    = list(string)
  default = []
}

resource "berth_data" "vpc" {
  input = var.cidr
}
