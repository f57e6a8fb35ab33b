variable "zone" {
  default = "a"
}

variable "zone" {
  default = "b"
}

resource "berth_data" "a" {
  input = var.zone
}
