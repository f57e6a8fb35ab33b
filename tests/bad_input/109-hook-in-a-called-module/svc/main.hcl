resource "berth_data" "host" { input = "x" }

hook "on_replace" {
  command = "kamal setup"
}
