locals {
  braces = "${ {a = 1}["a"] }"
  nested = "${join(",", ["}", "{"])} and ${ lookup({k="v"}, "k") }"
  directive = "%{ if var.x }yes%{ else }no%{ endif }"
  loop = "%{ for s in var.list }${s},%{ endfor }"
  escapes = "quote \" brace { dollar $${not_interp} percent %%{x}"
  spaces = "  keep   these   spaces  "
  hash = "# not a comment // nor this /* or this */"
  label_like = "resource \"x\" {"
}
block "with $${not_interp} label" "and {braces}" {
  k = "v"
}
