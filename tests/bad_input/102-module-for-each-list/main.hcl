module "svc" {
  source   = "./svc"
  for_each = ["a", "b"]
  name     = each.key
}
