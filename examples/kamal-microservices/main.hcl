# Two services, core and search, each on its own host in one VPC. Core reaches
# search at http://micro-search.internal:3000 — a private DNS name that berth
# keeps pointing at the current search host. Replace the host
# (`berth apply --replace module.search.aws_instance.this`) and nothing else
# changes: not the Kamal config, not core's settings.

variable "aws_endpoint" {
  type        = string
  default     = null
  description = "An AWS-compatible endpoint (the demo and tests use a local moto)."
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "health_check" {
  type        = bool
  default     = true
  description = "Wait for each new host's /up before switching DNS to it."
}

variable "health_check_url" {
  type        = string
  default     = ""
  description = "Override the health URL (the demo points it at a local endpoint)."
}

variable "health_check_timeout" {
  type    = string
  default = "5m"
}

provider "aws" {
  region       = var.region
  endpoint_url = var.aws_endpoint
}

data "aws_ami" "debian" {
  owners      = ["amazon"]
  most_recent = true
  filter {
    name   = "name"
    values = ["amzn2-ami-hvm-*-x86_64-gp2"]
  }
}

module "network" {
  source             = "../../modules/private-network"
  name               = "micro"
  availability_zones = ["${var.region}a"]
  region             = var.region
}

resource "aws_security_group" "app" {
  name        = "micro-app"
  description = "Kamal hosts: ssh and http from anywhere, everything inside the VPC"
  vpc_id      = module.network.vpc_id

  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/16"]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

module "core" {
  source                = "../../modules/kamal-host"
  name                  = "micro-core"
  ami                   = data.aws_ami.debian.id
  subnet_id             = module.network.subnet_ids[0]
  security_group_ids    = [aws_security_group.app.id]
  zone_id               = module.network.zone_id
  zone_name             = module.network.zone_name
  health_check          = var.health_check
  health_check_url      = var.health_check_url
  health_check_timeout  = var.health_check_timeout
  health_check_interval = "1s"
}

module "search" {
  source                = "../../modules/kamal-host"
  name                  = "micro-search"
  ami                   = data.aws_ami.debian.id
  subnet_id             = module.network.subnet_ids[0]
  security_group_ids    = [aws_security_group.app.id]
  zone_id               = module.network.zone_id
  zone_name             = module.network.zone_name
  health_check          = var.health_check
  health_check_url      = var.health_check_url
  health_check_timeout  = var.health_check_timeout
  health_check_interval = "1s"
}

# Kamal destinations: deep-merged onto your config/deploy.yml by
# `kamal deploy -d production`. Role options (cmd, proxy, env) stay there.
inventory "core" {
  format = "kamal"
  path   = "core/config/deploy.production.yml"
  role "web" {
    hosts = [module.core.host]
  }
}

inventory "search" {
  format = "kamal"
  path   = "search/config/deploy.production.yml"
  role "web" {
    hosts = [module.search.host]
  }
}

inventory "ansible" {
  format = "ansible"
  path   = "ansible/inventory.yml"
  role "core" {
    hosts = [module.core.host]
  }
  role "search" {
    hosts = [module.search.host]
  }
}

inventory "hosts" {
  format = "hosts"
  path   = "hosts/berth.hosts"
  role "all" {
    hosts = [module.core.host, module.search.host]
  }
}

output "search_url" {
  value = "http://${module.search.dns_name}:3000"
}

output "hosts" {
  value = {
    core   = module.core.host
    search = module.search.host
  }
}
