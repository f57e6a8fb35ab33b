variable "zone" {
  type = string
}

resource "berth_data" "a" {
  input = var.zone
}
