provider "dns" {
  update {
    server = "127.0.0.1"
  }
}

resource "dns_a_record_set" "search" {
  zone      = "internal."
  name      = "micro..search"
  addresses = ["10.0.1.5"]
  ttl       = 60
}
