resource "aws_instance" "search" {
  ami           = "ami-123"
  instance_type = "t3.micro"
  root_block_device {
    volume_size = 20
    volume_type = "gp3"
  }
  lifecycle { ignore_changes = [tags] }
  timeouts {}
  timeouts {}
  dynamic "ingress" {
    for_each = var.ports
    content {
      from_port = ingress.value
      to_port   = ingress.value
    }
  }
}
module core {
  source = "./core"
}
