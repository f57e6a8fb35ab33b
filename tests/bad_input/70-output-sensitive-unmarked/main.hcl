variable "password" {
  type      = string
  sensitive = true
  default   = "hunter2"
}

resource "berth_data" "a" {
  input = "x"
}

output "password" {
  value = var.password
}
