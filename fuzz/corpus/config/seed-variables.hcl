variable "zones" {
  type    = list(string)
  default = ["a", "b"]
  validation {
    condition     = length(var.zones) > 0
    error_message = "needs a zone"
  }
}
variable "obj" {
  type = object({ name = string, size = optional(number, 1) })
  default = { name = "x" }
}
variable "secret" {
  type      = string
  sensitive = true
  default   = "hunter2"
}
variable "m" {
  type    = map(number)
  default = { a = 1 }
}
output "s" {
  value     = var.secret
  sensitive = true
}
