# launches/{sha256(state)}, sessions/{sha256(handle)} and activity/{session
# id} live here. All carry an expiresAt timestamp; the functions treat a
# document past it as absent, and the TTL policies below delete it
# (typically within a day).
resource "google_firestore_database" "main" {
  name        = var.firestore_database
  location_id = coalesce(var.firestore_location, var.region)
  type        = "FIRESTORE_NATIVE"
  # Only short-lived documents live here, but the (default) database may be
  # shared with other uses of the project: destroying this configuration
  # leaves it in place.
  deletion_policy = "ABANDON"

  depends_on = [google_project_service.api]
}

# One TTL policy per collection on expiresAt (launches, sessions, each
# session's last activity, and the CDS Hooks JWT ids of the shared replay
# check). The empty index_config turns
# off the automatic single-field indexes on expiresAt: nothing queries it,
# and a monotonically increasing indexed timestamp limits write throughput.
resource "google_firestore_field" "ttl" {
  for_each = toset(["launches", "sessions", "activity", "jtis"])

  database   = google_firestore_database.main.name
  collection = each.key
  field      = "expiresAt"

  ttl_config {}
  index_config {}
}
