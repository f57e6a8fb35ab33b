resource "berth_data" "a" {
  input = each.key
}
