# The infrastructure the CI examples plan and apply: one Kamal web host in its
# own VPC, with a private DNS name and a Kamal destination file.
#
# Every name, zone and tag carries the workspace, so pull-request environments
# (workspaces `pr-1`, `pr-2`, ...) live side by side in one account without
# colliding, and each gets its own Kamal destination `config/deploy.pr-N.yml`
# (`kamal deploy -d pr-N`). The `default` workspace is production.
#
# The state lives in S3 (the lock is an object next to it, written with a
# conditional put; no DynamoDB table). Put your bucket and region here, or
# pass them with `--backend-config bucket=...`.

berth {
  backend "s3" {
    bucket = "acme-berth-state"
    key    = "web/state.json"
    region = "us-east-1"
  }
}

variable "aws_endpoint" {
  type        = string
  default     = null
  description = "An AWS-compatible endpoint; the tests point it at moto. Unset on AWS."
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

locals {
  # `default` is production; every other workspace is its own environment.
  env  = terraform.workspace == "default" ? "production" : terraform.workspace
  name = "web-${local.env}"
}

provider "aws" {
  region       = var.region
  endpoint_url = var.aws_endpoint

  default_tags {
    tags = {
      app = "web"
      env = local.env
    }
  }
}

data "aws_ami" "debian" {
  owners      = ["amazon"]
  most_recent = true
  filter {
    name   = "name"
    values = ["amzn2-ami-hvm-*-x86_64-gp2"]
  }
}

resource "aws_vpc" "this" {
  cidr_block           = "10.0.0.0/16"
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = local.name }
}

resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.this.id
  cidr_block              = "10.0.1.0/24"
  availability_zone       = "${var.region}a"
  map_public_ip_on_launch = true
  tags                    = { Name = "${local.name}-public" }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = local.name }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }
  tags = { Name = "${local.name}-public" }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_security_group" "web" {
  name        = local.name
  description = "Kamal web hosts of ${local.env}"
  vpc_id      = aws_vpc.this.id

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
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "web" {
  ami                    = data.aws_ami.debian.id
  instance_type          = var.instance_type
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.web.id]
  tags                   = { Name = local.name }
}

# A private zone per environment: `web.pr-7.internal` never clashes with
# another pull request's `web.pr-8.internal`.
resource "aws_route53_zone" "private" {
  name    = "${local.env}.internal"
  comment = "private names of ${local.name}"
  vpc {
    vpc_id     = aws_vpc.this.id
    vpc_region = var.region
  }
}

resource "aws_route53_record" "web" {
  zone_id = aws_route53_zone.private.zone_id
  name    = "web.${local.env}.internal"
  type    = "A"
  ttl     = 30
  records = [aws_instance.web.private_ip]
}

# The Kamal destination: `kamal deploy -d pr-7` deep-merges
# config/deploy.pr-7.yml onto your config/deploy.yml.
inventory "kamal" {
  format  = "kamal"
  path    = "config/deploy.${local.env}.yml"
  address = "public_ip"
  role "web" {
    hosts = [aws_instance.web]
  }
}

output "web_dns_name" {
  value = aws_route53_record.web.fqdn
}

output "web_public_ip" {
  value = aws_instance.web.public_ip
}
