provider "aws" {
  region     = "eu-west-1"
  access_key = "testing"
  secret_key = "testing"

  assume_role {
    role_arn = "deploy"
  }
}

resource "berth_data" "a" {
  input = "x"
}
