resource "berth_data" "a" {
  input = berth_data.b.output
}

resource "berth_data" "b" {
  input = berth_data.a.output
}
