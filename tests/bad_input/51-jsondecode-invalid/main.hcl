resource "berth_data" "a" {
  input = jsondecode("{\"a\": }")
}
