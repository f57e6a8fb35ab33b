terraform {
  backend "remote" {
    organization = "acme"
  }
}
resource "terraform_data" "a" {}
