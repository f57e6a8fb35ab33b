resource "berth_data" "a" {
  count    = -1
  for_each = 3
  input    = [var.nope, local.nope, module.nope.x, data.x.y.z, self.id, each.key, count.index]
  inptu    = upper(1, 2)
}
resource "berth_data" "a" {}
resource "nope_thing" "b" {}
output "o" { value = berth_data.a[5].output }
