variable "region" {
  default = "eu-west-1"
}

resource "berth_data" "a" {
  input = var.regoin
}
