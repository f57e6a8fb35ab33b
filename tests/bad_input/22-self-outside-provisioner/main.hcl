resource "berth_data" "a" {
  input = self.id
}
