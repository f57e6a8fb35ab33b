resource "berth_data" "a" {
  input = "x"
}

notify "webhook" {
  url    = "https://hooks.example/berth"
  format = "slak"
}
