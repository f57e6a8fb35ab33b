variable "zones" {
  type = list(string)
}

resource "berth_data" "a" {
  input = var.zones
}
