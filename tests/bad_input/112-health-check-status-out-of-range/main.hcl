resource "berth_data" "web" {
  input = "web"
  health_check {
    url           = "http://web.internal/up"
    expect_status = 700
  }
}
