# Values the corpus refers to as `local.NAME`. Keep every local valid:
# an error here would reject every case.
locals {
  objs    = [{ id = "a", n = 1, tags = { k = "x" } }, { id = "b", n = 2, tags = { k = "y" } }]
  nums    = [3, 1, 2]
  strs    = ["b", "a", "c"]
  m       = { a = 1, b = 2 }
  mixed   = { a = 1, b = "two", c = true }
  set     = toset(["b", "a"])
  nested  = { list = [1, 2], obj = { x = "y" } }
  empty   = []
  nothing = null
  text    = "Hello, World"
  lines   = "one\ntwo\n"
  hosts   = { web = { ip = "10.0.0.1", port = 80 }, db = { ip = "10.0.0.2", port = 5432 } }
  big     = 9007199254740993
  name    = "berth"
  port    = 8080
  flag    = true
  strnum  = "5"
  strbool = "true"
}
