locals {
  a = 1
  bb = 2
  ccc = 3

  after_blank = true
  x = 1
  # a comment line breaks the run
  longer_name = 2
  y = 3
  nested {
    k = 1
    kkkk = 2
  }
  z = 4
  multi = [
    1,
  ]
  zz = 5
  script = <<EOF
echo hi
EOF
  short = "s"
  tags = { Name = "x", Env = "prod" }
  obj = {
    one = 1
    three = 3
    "quoted key" = "v"
    (local.k) = 4
  }
}
