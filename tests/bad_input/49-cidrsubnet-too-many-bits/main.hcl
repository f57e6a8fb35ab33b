resource "berth_data" "a" {
  input = cidrsubnet("10.0.0.0/16", 20, 1)
}
