resource "berth_data" "a" {
  input = "x"
  tags {
    role = "web"
  }
}
