variable "name" { type = string }
resource "berth_data" "host" { input = var.name }
