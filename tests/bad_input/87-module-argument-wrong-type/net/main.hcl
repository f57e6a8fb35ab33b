variable "size" {
  type = number
}

resource "berth_data" "vpc" {
  input = var.size * 2
}
