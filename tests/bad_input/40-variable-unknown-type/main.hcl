variable "replicas" {
  type = integer
}

resource "berth_data" "a" {
  input = var.replicas
}
