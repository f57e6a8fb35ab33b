locals {
  a = local.b
  b = local.c
  c = local.a
}

resource "berth_data" "x" {
  input = local.a
}
