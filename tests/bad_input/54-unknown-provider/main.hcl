resource "google_compute_instance" "a" {
  name = "x"
}
