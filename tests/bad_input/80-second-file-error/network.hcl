resource "berth_data" "vpc" {
  input = berth_data.a.output
}

resource "berth_data" "subnet" {
  input = berth_data.vpc.output + 1
}
