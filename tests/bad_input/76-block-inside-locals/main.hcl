locals {
  name = "a"
  tags {
    role = "web"
  }
}
