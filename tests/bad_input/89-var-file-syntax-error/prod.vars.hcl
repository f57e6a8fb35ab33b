zone     = "a"
replicas = 
