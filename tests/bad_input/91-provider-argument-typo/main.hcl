provider "aws" {
  regoin = "eu-west-1"
}

resource "berth_data" "a" {
  input = "x"
}
