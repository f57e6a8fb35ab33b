provider "dns" {
  update {
    server   = "127.0.0.1"
    key_nmae = "berth-key."
  }
}

resource "berth_data" "a" {
  input = "x"
}
