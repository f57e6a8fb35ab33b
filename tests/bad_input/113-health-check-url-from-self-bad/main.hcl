resource "berth_data" "web" {
  input = "web.internal"
  health_check {
    url = "http://${self.input}:99999/up"
  }
}
