resource "berth_data" "a" {
  for_each = [1, 2]
  input    = each.key
}
