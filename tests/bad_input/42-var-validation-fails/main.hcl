variable "replicas" {
  type = number
  validation {
    condition     = var.replicas <= 10
    error_message = "at most 10 replicas"
  }
}

resource "berth_data" "a" {
  input = var.replicas
}
