resource "berth_data" "a" {
  input = "host-${count.index}"
}
