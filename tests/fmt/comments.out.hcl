# File header comment
// another style

/* block
   comment spanning lines
*/
resource "a" "b" /* between label and brace */ {
  # leading comment
  x   = 1  # trailing
  yy  = 22 // trailing slashes
  zzz = /* inline */ 333
  list = [
    1,  # one
    22, # twenty-two
    # dangling inside list
  ]
  /* before nested */ nested {
  }
  # comment before closing brace
}

variable "v" {  # after brace
  default = "x" # where
}
# comment at end of file
