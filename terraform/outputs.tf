output "launch_uri" {
  description = "Launch URI to register with the EHR (Oracle Health Code Console, Epic)."
  value       = "${local.base_url}/launch"
}

output "redirect_uri" {
  description = "Redirect URI to register with the EHR, exactly as shown."
  value       = "${local.base_url}/callback"
}

output "calculate_url" {
  description = "URL of the calculate function: the app (after a launch) and its API."
  value       = "${local.base_url}/calculate/"
}

output "cds_services_url" {
  description = "CDS Hooks discovery endpoint, for EHRs that call the app's CDS services."
  value       = "${local.base_url}/calculate/cds-services"
}

output "secrets" {
  description = "Secret Manager secrets whose values must be added with `gcloud secrets versions add` before the functions can start."
  value       = sort(keys(local.secret_env))
}

output "function_service_accounts" {
  description = "Runtime service account of each function."
  value       = { for k, sa in google_service_account.function : k => sa.email }
}
