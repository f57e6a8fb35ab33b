resource "berth_data" "a" {
  input = regex("([a-z]+", "abc")
}
