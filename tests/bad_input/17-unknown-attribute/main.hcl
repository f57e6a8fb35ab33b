resource "berth_data" "search" {
  input = "x"
}

resource "berth_data" "b" {
  input = berth_data.search.outptu
}
