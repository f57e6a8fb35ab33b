resource "berth_data" "a" {
  input = "x"
}

notify "webhook" {
  url    = "https://hooks.example/berth"
  events = ["heal_succeeded", "heal_faild"]
}
