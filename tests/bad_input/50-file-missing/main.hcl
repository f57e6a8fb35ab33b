resource "berth_data" "a" {
  input = file("${path.module}/missing.txt")
}
