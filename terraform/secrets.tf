# One secret per value the functions need: the token-sealing key, the
# verifier-sealing launch key and each client secret or private key the
# registrations name. Terraform creates the
# secrets only. Their values are added with `gcloud secrets versions add`, so
# they never enter Terraform state or a variable file.
resource "google_secret_manager_secret" "secret" {
  for_each = local.secret_env

  secret_id = each.key
  labels = {
    app = "smartcalc"
  }

  replication {
    auto {}
  }

  depends_on = [google_project_service.api]
}

# secretAccessor on exactly the secrets each function reads (for launch, the
# launch key alone).
resource "google_secret_manager_secret_iam_member" "access" {
  for_each = local.secret_grants

  secret_id = google_secret_manager_secret.secret[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.value.function].email}"
}
