resource "berth_assert" "healthy" {
  message = "the cluster is unhealthy"
}
