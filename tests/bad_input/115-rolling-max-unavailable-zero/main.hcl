resource "berth_data" "web" {
  count = 3
  input = "web-${count.index}"
  lifecycle {
    rolling {
      max_unavailable = 0
    }
  }
}
