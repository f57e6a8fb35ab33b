resource "berth_data" "web" {
  input = "web"
  health_check {
    url = "http://exa mple.internal/up"
  }
}
