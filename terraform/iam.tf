# One runtime service account per function, holding only what that function
# does: all three read and write Firestore (launch creates launches, callback
# consumes them and creates sessions, calculate reads sessions and stores
# refreshed tokens); secrets are granted one by one in secrets.tf.
resource "google_service_account" "function" {
  for_each = local.functions

  account_id   = "smartcalc-${each.key}"
  display_name = "SMART Calc ${each.key} function"
  description  = "Runtime identity of the ${each.key} function"

  depends_on = [google_project_service.api]
}

resource "google_project_iam_member" "firestore" {
  for_each = local.functions

  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.function[each.key].email}"
}

# Cloud Build runs the Go buildpack as this account instead of a default
# account that, in projects made since mid-2024, lacks these roles.
resource "google_service_account" "build" {
  account_id   = "smartcalc-build"
  display_name = "SMART Calc function builds"
  description  = "Builds the SMART Calc functions' images with Cloud Build"

  depends_on = [google_project_service.api]
}

# Project-wide: build logs, and reading the source, which Cloud Functions
# copies into a bucket of its own that this configuration does not manage.
resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/storage.objectViewer",
  ])

  project = var.project_id
  role    = each.key
  member  = "serviceAccount:${google_service_account.build.email}"
}

# Pushing images: to the functions' repository only.
resource "google_artifact_registry_repository_iam_member" "build" {
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.build.email}"
}
