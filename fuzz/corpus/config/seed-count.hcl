variable "n" {
  type    = number
  default = 2
}
resource "berth_data" "web" {
  count = var.n
  input = "web-${count.index}"
}
output "names" { value = berth_data.web[*].output }
