resource "berth_data" "a" {
  for_each = 3
  input    = each.key
}
