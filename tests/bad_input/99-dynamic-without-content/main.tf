variable "ports" { default = [22] }
resource "aws_security_group" "a" {
  dynamic "ingress" {
    for_each = var.ports
  }
}
