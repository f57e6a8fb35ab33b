variable "n" {
  type      = number
  sensitive = true
  default   = 2
}

resource "berth_data" "a" {
  count = var.n
  input = "x"
}
