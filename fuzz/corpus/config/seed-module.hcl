module "net" {
  source = "./net"
  cidr   = "10.0.0.0/16"
}
resource "berth_data" "a" {
  input = module.net.vpc_id
}
