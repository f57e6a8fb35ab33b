resource "berth_data" "a" {
  input = "x"
}
output "id" { value = berth_data.a.id }
