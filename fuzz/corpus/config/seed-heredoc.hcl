locals {
  script = <<EOT
#!/bin/sh
echo ${upper("hi")}
EOT
}
