terraform {
  # optional() object attributes with defaults need 1.3; the configuration is
  # written for, and its docs assume, Terraform 1.6+ or OpenTofu 1.6+.
  required_version = ">= 1.6"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 7.x: google_project_service's disable_on_destroy default, the
      # cloudfunctions2 build service account and the Artifact Registry
      # cleanup policies used here are all in this major.
      version = "~> 7.0"
    }
    archive = {
      source = "hashicorp/archive"
      # 2.4+ matches excludes as globs (doublestar), so "**/*_test.go" works,
      # and writes every zip entry with a fixed time, so the content hash
      # only changes when the source does.
      version = "~> 2.7"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
