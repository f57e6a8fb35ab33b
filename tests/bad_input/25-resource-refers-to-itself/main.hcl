resource "berth_data" "a" {
  input = berth_data.a.id
}
