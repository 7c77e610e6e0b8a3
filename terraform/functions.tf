# The three functions, built from one source zip and differing only in entry
# point, environment, secrets and service account.
resource "google_cloudfunctions2_function" "function" {
  for_each = local.functions

  # The name is the URL's last segment (local.base_url/NAME) and equals the
  # entry point, the name registered with functions.HTTP.
  name        = each.key
  location    = var.region
  description = each.value.description
  labels = {
    app = "smartcalc"
  }

  build_config {
    runtime               = "go126"
    entry_point           = each.key
    service_account       = google_service_account.build.id
    docker_repository     = google_artifact_registry_repository.functions.id
    environment_variables = local.build_env

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    # Zero idle instances: nothing runs, and nothing is billed for compute,
    # while nobody uses the app. The first request after idling pays a cold
    # start instead.
    min_instance_count               = 0
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = 1
    available_memory                 = each.value.memory
    timeout_seconds                  = each.value.timeout
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.function[each.key].email
    environment_variables            = each.value.env

    # Secret values reach the instance as environment variables, resolved by
    # the platform when an instance starts. Numeric versions (never "latest"):
    # every instance of a revision reads the same value, and a rotation is a
    # reviewed change to var.secret_versions that rolls out a new revision.
    dynamic "secret_environment_variables" {
      for_each = each.value.secrets
      content {
        key        = secret_environment_variables.value
        project_id = var.project_id
        secret     = google_secret_manager_secret.secret[secret_environment_variables.key].secret_id
        version    = lookup(var.secret_versions, secret_environment_variables.key, "1")
      }
    }
  }

  lifecycle {
    postcondition {
      condition     = self.url == "${local.base_url}/${each.key}"
      error_message = "The function's URL is not ${local.base_url}/${each.key}, which the EHR registrations and SMARTCALC_BASE_URL assume."
    }
  }

  depends_on = [
    google_project_service.api,
    google_project_iam_member.build,
    google_artifact_registry_repository_iam_member.build,
    google_project_iam_member.firestore,
    google_secret_manager_secret_iam_member.access,
    google_firestore_field.ttl,
  ]
}

# Anyone may invoke the functions: the EHR opens the launch URI in the
# clinician's browser, and the browser follows the redirects. Gen2 functions
# are Cloud Run services of the same name, and invocation is Cloud Run's
# roles/run.invoker (the cloudfunctions2 IAM resources reject that role).
resource "google_cloud_run_v2_service_iam_member" "public" {
  for_each = local.functions

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.function[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
