# A VPC for Kamal hosts: public subnets (one per availability zone), an
# internet gateway and its routes, and a private Route53 zone associated with
# the VPC, where hosts get names such as `micro-search.internal`.

variable "name" {
  type        = string
  description = "Name tag of the VPC and its parts."
}

variable "cidr_block" {
  type    = string
  default = "10.0.0.0/16"
}

variable "availability_zones" {
  type    = list(string)
  default = ["us-east-1a"]
}

variable "zone_name" {
  type        = string
  default     = "internal"
  description = "The private DNS zone, e.g. `internal` for `micro-search.internal`."
}

variable "region" {
  type    = string
  default = "us-east-1"
}

resource "aws_vpc" "this" {
  cidr_block           = var.cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name }
}

resource "aws_subnet" "public" {
  count                   = length(var.availability_zones)
  vpc_id                  = aws_vpc.this.id
  cidr_block              = cidrsubnet(var.cidr_block, 8, count.index + 1)
  availability_zone       = var.availability_zones[count.index]
  map_public_ip_on_launch = true
  tags                    = { Name = "${var.name}-public-${count.index}" }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = var.name }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }
  tags = { Name = "${var.name}-public" }
}

resource "aws_route_table_association" "public" {
  count          = length(var.availability_zones)
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_route53_zone" "private" {
  name    = var.zone_name
  comment = "private names of ${var.name}"
  vpc {
    vpc_id     = aws_vpc.this.id
    vpc_region = var.region
  }
}

output "vpc_id" {
  value = aws_vpc.this.id
}

output "subnet_ids" {
  value = aws_subnet.public[*].id
}

output "zone_id" {
  value = aws_route53_zone.private.zone_id
}

output "zone_name" {
  value = var.zone_name
}
