berth {
  backend "local" {
    path = "state"
  }
}
provider "aws" {
  region = "us-east-1"
}
provider "aws" {
  alias  = "west"
  region = "us-west-2"
}
provider "dns" {
  update {
    server = "127.0.0.1"
  }
}
data "aws_ami" "debian" {
  provider    = aws.west
  most_recent = true
  owners      = ["136693071363"]
}
resource "aws_instance" "web" {
  ami           = data.aws_ami.debian.id
  instance_type = "t3.micro"
  tags          = { Name = "web" }
}
resource "dns_a_record_set" "web" {
  zone      = "internal."
  name      = "web"
  addresses = [aws_instance.web.private_ip]
}
inventory "kamal" {
  format = "kamal"
}
