# One host for a Kamal service: an instance in a given subnet with its
# security groups, and its private DNS record (`NAME.ZONE`) that follows the
# instance when it is replaced. Replacement is create-before-destroy: the new
# host is created, passes its health check, the record switches to it, the
# inventory is rewritten, and only then is the old host destroyed.

variable "name" {
  type        = string
  description = "Service name: the host is `NAME.ZONE` in private DNS."
}

variable "ami" {
  type = string
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

variable "subnet_id" {
  type = string
}

variable "security_group_ids" {
  type    = list(string)
  default = []
}

variable "key_name" {
  type    = string
  default = null
}

variable "user_data" {
  type    = string
  default = null
}

variable "zone_id" {
  type = string
}

variable "zone_name" {
  type = string
}

variable "record_ttl" {
  type    = number
  default = 30
}

variable "health_check" {
  type        = bool
  default     = true
  description = "Wait for the new host to answer before switching DNS to it."
}

variable "health_check_url" {
  type        = string
  default     = ""
  description = "Defaults to http://PUBLIC_IP/up (kamal-proxy's health path)."
}

variable "health_check_timeout" {
  type    = string
  default = "5m"
}

variable "health_check_interval" {
  type    = string
  default = "5s"
}

variable "tags" {
  type    = map(string)
  default = {}
}

resource "aws_instance" "this" {
  ami                    = var.ami
  instance_type          = var.instance_type
  subnet_id              = var.subnet_id
  vpc_security_group_ids = var.security_group_ids
  key_name               = var.key_name
  user_data              = var.user_data
  tags                   = merge(var.tags, { Name = var.name, Service = var.name })

  lifecycle {
    create_before_destroy = true
  }

  health_check {
    enabled  = var.health_check
    url      = var.health_check_url != "" ? var.health_check_url : "http://${self.public_ip}/up"
    timeout  = var.health_check_timeout
    interval = var.health_check_interval
  }
}

resource "aws_route53_record" "this" {
  zone_id = var.zone_id
  name    = "${var.name}.${var.zone_name}"
  type    = "A"
  ttl     = var.record_ttl
  records = [aws_instance.this.private_ip]
}

output "host" {
  description = "The host, for `inventory` blocks: its id, private_ip, public_ip."
  value = {
    id         = aws_instance.this.id
    private_ip = aws_instance.this.private_ip
    public_ip  = aws_instance.this.public_ip
    dns_name   = aws_route53_record.this.fqdn
  }
}

output "dns_name" {
  value = aws_route53_record.this.fqdn
}
