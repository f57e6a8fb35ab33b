resource "berth_data" "a" {
  input = "x"
}

notify "slack" {
  url = "hooks.slack.com/services/T/B/X"
}
