resource "berth_data" "1st" {
  input = "x"
}
