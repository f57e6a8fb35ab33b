resource "berth_data" "a" {
  for_each = null
  input    = each.key
}
