variable "replicas" {
  type = number
}

resource "berth_data" "a" {
  input = var.replicas
}
