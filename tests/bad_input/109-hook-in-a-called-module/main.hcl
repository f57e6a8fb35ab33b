module "svc" {
  source = "./svc"
}
