resource "berth_data" "web" {
  input = "web"
  lifecycle {
    create_before_destroy = true
    drain                 = "a while"
  }
}
