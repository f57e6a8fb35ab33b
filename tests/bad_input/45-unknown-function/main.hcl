resource "berth_data" "a" {
  input = lenght("abc")
}
