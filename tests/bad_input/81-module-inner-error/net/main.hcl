resource "berth_data" "vpc" {
  input = var.cidr
}
