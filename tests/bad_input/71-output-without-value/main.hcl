resource "berth_data" "a" {
  input = "x"
}

output "id" {
  description = "the id"
}
