locals {
  hosts = ["a", "b"]
  text  = <<-EOT
    %{ for i, h in local.hosts ~}
    ${i}: ${h}
    %{ endfor ~}
    %{ if length(local.hosts) > 1 }many%{ else }one%{ endif }
  EOT
  inline = "x${"y"}z %{ if true }t%{ endif }"
}
