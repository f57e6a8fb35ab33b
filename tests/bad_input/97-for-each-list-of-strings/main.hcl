resource "berth_data" "a" {
  for_each = ["web", "db"]
  input    = each.key
}
