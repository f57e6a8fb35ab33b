resource "berth_data" "a" {
  input = search
}
