# comment
// another
/* block
   comment */
resource "berth_data" "a" { # trailing
  input = "x" // trailing
}
