locals {
  a = (1 + 
}
