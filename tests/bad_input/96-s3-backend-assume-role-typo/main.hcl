berth {
  backend "s3" {
    bucket = "berth-state"
    key    = "app/state.json"
    region = "eu-west-1"

    assume_role {
      rol_arn = "arn:aws:iam::123456789012:role/state"
    }
  }
}

resource "berth_data" "a" {
  input = "x"
}
