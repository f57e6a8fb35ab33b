a = 1 + 2 * 3
b = (1 + 2) / 3 % 4
c = var.x == var.y
d = -5
e = [-1, -2, 3 - 4]
f = func(-x)
g = 1.5e-3
h = a.b.c[0].d
i = "s"[0]
