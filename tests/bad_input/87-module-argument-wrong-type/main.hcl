module "net" {
  source = "./net"
  size   = "large"
}
