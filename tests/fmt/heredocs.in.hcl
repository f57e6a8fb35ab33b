resource "r" "h" {
user_data = <<EOF
#!/bin/sh
   echo "indented stays"   
echo ${var.x} { not a brace }
EOF
    script = <<-EOS
      line one
        line two
      EOS
  a = 1
  in_call = join("\n", [<<EOF
inside call
EOF
, "x"])
  indented_close = templatefile("t", { body = <<-EOT
    hello
    EOT
  })
}
