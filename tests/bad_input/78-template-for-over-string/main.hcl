resource "berth_data" "a" {
  input = "%{ for h in "abc" }${h}%{ endfor }"
}
