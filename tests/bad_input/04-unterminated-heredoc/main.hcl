resource "berth_data" "a" {
  input = <<EOT
hello
}
