locals {
  upper         = [for s in var.list : upper(s)]
  filtered      = [for i, v in var.list : v if i % 2 == 0]
  by_name       = { for inst in var.instances : inst.name => inst.id }
  grouped       = { for k, v in var.m : v.group => k... }
  literal_tuple = [for x in [1, 2, 3] : x * 2]
  multi = {
    for name, cfg in var.services :
    name => {
      port = cfg.port
      host = "${name}.internal"
    }
    if cfg.enabled
  }
  splat  = aws_instance.web[*].id
  legacy = aws_instance.web.*.id
  neg    = -1
  expr   = (var.a + var.b) * -var.c
  cond   = var.enabled ? "yes" : "no"
  not    = !var.enabled
  cmp    = var.a >= 1 && var.b != 2 || var.c < 3
}
