provider "aws" {
  region = "eu-west-1"

  assume_role {
    rol_arn = "arn:aws:iam::123456789012:role/deploy"
  }
}

resource "berth_data" "a" {
  input = "x"
}
