module "net" {
  source = "./net"
}

resource "berth_data" "a" {
  input = module.net.vpc
}
