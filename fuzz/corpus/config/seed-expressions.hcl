locals {
  a = 1 + 2 * 3 - 4 / 2 % 3
  b = !true || false && (1 < 2) && 3 >= 3 && 4 != 5 && "a" == "a"
  c = -local.a
  d = local.b ? "yes" : "no"
  e = [for x in [1, 2, 3] : x * 2 if x > 1]
  f = { for k, v in { a = 1, b = 2 } : k => v... }
  g = [{ n = 1 }, { n = 2 }][*].n
  h = { "quoted key" = 1, (local.d) = 2 }
  i = [1, 2, 3][1]
  j = { a = { b = ["c"] } }.a.b[0]
  k = null
  l = 1.5e3
}
