module "net" {
  source = "./network"
}
