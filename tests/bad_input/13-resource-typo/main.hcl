resource "berth_data" "search" {
  input = "x"
}

resource "berth_data" "core" {
  input = berth_data.serch.output
}
