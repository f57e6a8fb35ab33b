provider "aws" {
  region = "eu-west-1"

  default_tag {
    tags = { team = "search" }
  }
}

resource "berth_data" "a" {
  input = "x"
}
