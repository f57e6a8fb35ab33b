provider "aws" {
  region       = "us-east-1"
  endpoint_url = "http://127.0.0.1:1"
  access_key   = "x"
  secret_key   = "y"
}

resource "aws_route53_zone" "internal" {
  name = "internal"
}

resource "aws_route53_record" "search" {
  zone_id = aws_route53_zone.internal.zone_id
  name    = "micro search.internal"
  type    = "A"
  ttl     = 60
  records = ["10.0.1.5"]
}
