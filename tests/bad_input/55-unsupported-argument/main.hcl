resource "berth_data" "a" {
  inptu = "x"
}
