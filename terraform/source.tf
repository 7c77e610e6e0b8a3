# The repository root is the function source: go.mod, go.sum, smartcalc.go
# (the one root package the Cloud Functions Go build compiles) and the
# packages below it. Tests, test data, this folder (which holds provider
# binaries and state) and the docs are left out.
data "archive_file" "source" {
  type        = "zip"
  source_dir  = "${path.module}/.."
  output_path = "${path.module}/.build/source.zip"
  excludes = [
    ".git/**",
    ".ci/**",
    "terraform",
    "terraform/**",
    "**/*_test.go",
    "**/testdata/**",
    "README.md",
  ]
}

resource "google_storage_bucket" "source" {
  name     = "${var.project_id}-smartcalc-source"
  location = var.region

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Holds nothing but the current source zip, which Terraform re-uploads.
  force_destroy = true

  depends_on = [google_project_service.api]
}

# Named by the zip's content hash: a source change gives a new object name,
# which makes the functions rebuild; an unchanged source changes nothing.
resource "google_storage_bucket_object" "source" {
  name   = "smartcalc-${data.archive_file.source.output_sha256}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

# The functions' container images. A repository of our own, rather than the
# gcf-artifacts one Cloud Functions would create, lets the build service
# account write to this repository only, and keeps image storage (billed per
# GB-month) bounded by the cleanup policies.
resource "google_artifact_registry_repository" "functions" {
  location      = var.region
  repository_id = "smartcalc-functions"
  description   = "Container images of the SMART Calc functions, built by Cloud Build"
  format        = "DOCKER"

  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "delete-older-than-30-days"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }
  # KEEP wins over DELETE: the images the running revisions use stay.
  cleanup_policies {
    id     = "keep-recent-versions"
    action = "KEEP"
    most_recent_versions {
      keep_count = 3
    }
  }

  depends_on = [google_project_service.api]
}
