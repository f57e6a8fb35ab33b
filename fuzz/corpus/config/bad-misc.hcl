x = 1
resource "a" {}
variable "v" { type = integer }
variable "w" { type = list(map(object({a=string}))) }
