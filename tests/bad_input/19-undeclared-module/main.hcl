resource "berth_data" "a" {
  input = module.core.vpc_id
}
