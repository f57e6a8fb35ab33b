# Two hosts of one role behind an internal load balancer, reached by one
# private name (`web.internal`, an alias of the load balancer), each host
# also by its own name (`web-0.internal`, `web-1.internal`) for Kamal.
#
# A new release replaces the hosts (`user_data_replace_on_change`) one
# create_before_destroy at a time: each new host is registered in the target
# group and healthy there before its name moves to it, and the old host is
# deregistered (and drained, `deregistration_delay`) before it is destroyed.
#
# Against moto (what the tests use):
#   moto_server -H 127.0.0.1 -p 5000 &
#   AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
#     berth apply -var aws_endpoint=http://127.0.0.1:5000
# Against AWS, leave `aws_endpoint` unset.

variable "aws_endpoint" {
  type    = string
  default = null
}

variable "release" {
  type    = string
  default = "1"
}

provider "aws" {
  region       = "us-east-1"
  endpoint_url = var.aws_endpoint
}

data "aws_ami" "amzn2" {
  owners      = ["amazon"]
  most_recent = true

  filter {
    name   = "name"
    values = ["amzn2-ami-hvm-*-x86_64-gp2"]
  }
}

resource "aws_vpc" "main" {
  cidr_block           = "10.40.0.0/16"
  enable_dns_support   = true
  enable_dns_hostnames = true
}

resource "aws_subnet" "private" {
  for_each          = { a = "10.40.1.0/24", b = "10.40.2.0/24" }
  vpc_id            = aws_vpc.main.id
  cidr_block        = each.value
  availability_zone = "us-east-1${each.key}"
}

resource "aws_security_group" "web" {
  name        = "web-internal"
  description = "web hosts and their internal load balancer"
  vpc_id      = aws_vpc.main.id

  ingress {
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["10.40.0.0/16"]
  }
}

resource "aws_instance" "web" {
  count                       = 2
  ami                         = data.aws_ami.amzn2.id
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.private["a"].id
  vpc_security_group_ids      = [aws_security_group.web.id]
  user_data                   = "release ${var.release}"
  user_data_replace_on_change = true

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb" "web" {
  name               = "web-internal"
  internal           = true
  load_balancer_type = "application"
  subnets            = [aws_subnet.private["a"].id, aws_subnet.private["b"].id]
  security_groups    = [aws_security_group.web.id]
}

resource "aws_lb_target_group" "web" {
  name_prefix          = "web-"
  port                 = 80
  protocol             = "HTTP"
  vpc_id               = aws_vpc.main.id
  deregistration_delay = 5

  health_check {
    path              = "/up"
    interval          = 5
    timeout           = 2
    healthy_threshold = 2
  }
}

resource "aws_lb_listener" "web" {
  load_balancer_arn = aws_lb.web.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}

# Replaced with its host, the new registration first.
resource "aws_lb_target_group_attachment" "web" {
  count            = 2
  target_group_arn = aws_lb_target_group.web.arn
  target_id        = aws_instance.web[count.index].id
  port             = 80

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_zone" "internal" {
  name = "internal"

  vpc {
    vpc_id = aws_vpc.main.id
  }
}

resource "aws_route53_record" "web" {
  zone_id = aws_route53_zone.internal.zone_id
  name    = "web"
  type    = "A"

  alias {
    name                   = aws_lb.web.dns_name
    zone_id                = aws_lb.web.zone_id
    evaluate_target_health = true
  }
}

resource "aws_route53_record" "host" {
  count   = 2
  zone_id = aws_route53_zone.internal.zone_id
  name    = "web-${count.index}"
  type    = "A"
  ttl     = 60
  records = [aws_instance.web[count.index].private_ip]
}

output "lb_dns_name" {
  value = aws_lb.web.dns_name
}

output "host_ips" {
  value = [aws_instance.web[0].private_ip, aws_instance.web[1].private_ip]
}

# Kamal deploys to every host of the role, so the role lists each host (by
# its private address), not the load balancer in front of them.
inventory "kamal" {
  format  = "kamal"
  path    = "config/deploy.yml"
  address = "private_ip"
  role "web" {
    hosts = [aws_instance.web[0], aws_instance.web[1]]
  }
}
