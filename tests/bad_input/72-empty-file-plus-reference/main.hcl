resource "berth_data" "a" {
  input = berth_data.missing.output
}
