resource "berth_data" "a" {
  input = { (["a"]) = 1 }
}
