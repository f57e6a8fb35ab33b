resource "berth_data" "a" {
  input = [for x in 3 : x]
}
