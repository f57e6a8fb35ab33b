locals {
  list = [
    1,
    2,
    [
      3,
      4,
    ],
  ]
  objs = [{
    name = "a"
    }, {
    name = "b"
  }]
  map = {
    a = {
      b = {
        c = 1
      }
    }
  }
  call = merge(
    local.a,
    {
      x = 1
    },
  )
  empty_list = []
  empty_map  = {}
  inline     = [1, 2, 3]
  inline_obj = { a = 1, b = 2 }
}
