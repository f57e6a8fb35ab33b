module "svc" {
  source   = "./svc"
  count    = 2
  for_each = {}
  name     = "x"
}
