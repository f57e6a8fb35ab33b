locals {
  t = templatefile("${path.module}/t.tpl", { name = "x" })
  f = file("missing.txt")
  e = fileexists("x")
}
