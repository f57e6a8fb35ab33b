resource "berth_data" "a" {
  input = <<EOT
first line
value: ${lookup({a = 1}, "b")}
EOT
}
