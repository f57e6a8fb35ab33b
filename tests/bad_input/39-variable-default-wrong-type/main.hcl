variable "replicas" {
  type    = number
  default = "many"
}

resource "berth_data" "a" {
  input = var.replicas
}
