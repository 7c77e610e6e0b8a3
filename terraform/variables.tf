variable "project_id" {
  description = "Google Cloud project to deploy into. Its id is part of the public URLs (https://REGION-PROJECT.cloudfunctions.net), so the EHR registrations depend on it."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id (6 to 30 lower-case letters, digits and hyphens), not a project number or a domain-scoped id."
  }
}

variable "region" {
  description = "Region of the functions, the source bucket and the image repository, e.g. asia-east1. Part of the public URLs."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Cloud Functions region such as asia-east1 or europe-west1."
  }
}

variable "firestore_location" {
  description = "Location of the Firestore database: a region (asia-east1) or a multi-region (nam5, eur3). Defaults to the functions' region. Cannot be changed once the database exists."
  type        = string
  default     = null

  validation {
    condition     = var.firestore_location == null || can(regex("^[a-z]+(-[a-z]+)?[0-9]+$", var.firestore_location))
    error_message = "firestore_location must be a Firestore location such as asia-east1, nam5 or eur3."
  }
}

variable "firestore_database" {
  description = "Firestore database id. (default) gets Firestore's free tier; use a named database if the project's (default) database is already in Datastore mode or used by something else."
  type        = string
  default     = "(default)"

  validation {
    condition     = var.firestore_database == "(default)" || can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.firestore_database))
    error_message = "firestore_database must be (default) or 4 to 63 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "ehrs" {
  description = <<-EOT
    The EHRs (tenants) the app is registered with, passed to the functions as SMARTCALC_EHRS.
    client_auth.secret (client_secret_basic) and client_auth.key (private_key_jwt) are the NAMES of
    Secret Manager secrets: Terraform creates the secrets, their values are added out of band.
  EOT
  type = list(object({
    id          = string
    iss         = optional(string)
    iss_pattern = optional(string)
    client_id   = string
    client_auth = object({
      type   = string
      secret = optional(string)
      key    = optional(string)
      kid    = optional(string)
      alg    = optional(string)
    })
    scope                     = string
    launch                    = optional(list(string), ["ehr"])
    allowed_hosts             = list(string)
    id_token_issuer           = optional(string)
    pkce                      = optional(string)
    browser_binding           = optional(string)
    redirect_per_registration = optional(bool)
    max_concurrent_fhir       = optional(number)
  }))

  validation {
    condition     = length(var.ehrs) > 0
    error_message = "ehrs must list at least one EHR registration: a deployment with none refuses every launch."
  }
  validation {
    condition     = alltrue([for e in var.ehrs : can(regex("^[a-z0-9][a-z0-9-]{0,62}$", e.id))]) && length(distinct([for e in var.ehrs : e.id])) == length(var.ehrs)
    error_message = "Each registration needs a unique id of lower-case letters, digits and hyphens."
  }
  validation {
    condition     = alltrue([for e in var.ehrs : (e.iss == null) != (e.iss_pattern == null)])
    error_message = "Each registration needs exactly one of iss (the exact FHIR base) or iss_pattern."
  }
  validation {
    condition     = alltrue([for e in var.ehrs : e.iss == null || can(regex("^https://[^/?#@\\s]+(/[^?#\\s]*)?$", e.iss))])
    error_message = "iss must be an https URL without a query or fragment: the FHIR base the EHR sends as iss."
  }
  validation {
    condition     = alltrue([for e in var.ehrs : e.iss_pattern == null || (can(regex("^\\^https://.*\\$$", e.iss_pattern)) && can(regexall(e.iss_pattern, "")))])
    error_message = "iss_pattern must be a valid regular expression anchored with ^https:// and $."
  }
  validation {
    condition     = alltrue([for e in var.ehrs : length(trimspace(e.client_id)) > 0 && length(trimspace(e.scope)) > 0])
    error_message = "Each registration needs a client_id and a scope."
  }
  validation {
    condition     = alltrue([for e in var.ehrs : contains(["public", "client_secret_basic", "private_key_jwt"], e.client_auth.type)])
    error_message = "client_auth.type must be public, client_secret_basic or private_key_jwt."
  }
  validation {
    condition = alltrue([for e in var.ehrs : (
      (e.client_auth.type == "client_secret_basic") == (e.client_auth.secret != null) &&
      (e.client_auth.type == "private_key_jwt") == (e.client_auth.key != null) &&
      (e.client_auth.type == "private_key_jwt") == (e.client_auth.kid != null) &&
      (e.client_auth.type == "private_key_jwt") == (e.client_auth.alg != null)
    )])
    error_message = "client_secret_basic takes secret (and only that); private_key_jwt takes key, kid and alg; public takes none of them."
  }
  validation {
    condition     = alltrue([for e in var.ehrs : e.client_auth.alg == null || contains(["ES384", "RS384"], coalesce(e.client_auth.alg, "none"))])
    error_message = "client_auth.alg must be ES384 or RS384, the algorithms SMART App Launch requires clients to support."
  }
  validation {
    condition = alltrue([for n in flatten([for e in var.ehrs : [e.client_auth.secret, e.client_auth.key]]) :
      n == null || (can(regex("^[A-Za-z0-9_-]{1,200}$", n)) && !contains(["smartcalc-token-key", "smartcalc-launch-key", "smartcalc-admin-token"], n))
    ])
    error_message = "Secret names (client_auth.secret and client_auth.key) are Secret Manager ids: letters, digits, _ and -; smartcalc-token-key (the token-sealing key), smartcalc-launch-key (the launch key that seals PKCE verifiers) and smartcalc-admin-token (the admin path's token) are reserved."
  }
  validation {
    condition = length(distinct([for n in flatten([for e in var.ehrs : [e.client_auth.secret, e.client_auth.key]]) : n if n != null])) == length(distinct([
      for n in flatten([for e in var.ehrs : [e.client_auth.secret, e.client_auth.key]]) : upper(replace(n, "-", "_")) if n != null
    ]))
    error_message = "Two secret names map to the same environment variable (SMARTCALC_SECRET_ + the name upper-cased with - as _): rename one."
  }
  validation {
    condition     = alltrue([for e in var.ehrs : length(e.launch) > 0 && length(distinct(e.launch)) == length(e.launch) && alltrue([for l in e.launch : contains(["ehr", "standalone"], l)])])
    error_message = "launch must list ehr, standalone or both, once each."
  }
  validation {
    condition     = alltrue([for e in var.ehrs : !contains(e.launch, "ehr") || contains(split(" ", e.scope), "launch")])
    error_message = "A registration that allows EHR launch needs the launch scope, or the EHR cannot pass the patient context."
  }
  validation {
    condition     = alltrue([for e in var.ehrs : length(e.allowed_hosts) > 0 && alltrue([for h in e.allowed_hosts : can(regex("^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]+)?$", h))])])
    error_message = "allowed_hosts must list the hosts of the EHR's authorize and token endpoints (host names, optionally with :port, without a scheme or path)."
  }
  validation {
    condition     = alltrue([for e in var.ehrs : e.browser_binding == null || e.browser_binding == "off"])
    error_message = "browser_binding is either unset (every callback must come from the browser that began the launch) or \"off\" (turn that login-CSRF defence off for this EHR, logged at start)."
  }
  validation {
    condition     = alltrue([for e in var.ehrs : e.pkce == null || e.pkce == "force"])
    error_message = "pkce is either unset (S256 is used when the EHR advertises it, and the launch fails otherwise) or \"force\" (send S256 to an EHR that supports it without advertising it)."
  }
  validation {
    condition     = alltrue([for e in var.ehrs : e.id_token_issuer == null || can(regex("^https://[^?#\\s]+$", e.id_token_issuer))])
    error_message = "id_token_issuer must be an https URL."
  }
}

variable "secret_versions" {
  description = "Secret Manager version number each function reads, by secret name (the token-sealing key smartcalc-token-key, the launch key smartcalc-launch-key, the admin token smartcalc-admin-token and every client secret or key the registrations name). A secret not listed reads version 1. Rotate by adding a version, raising its number here and applying."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for v in values(var.secret_versions) : can(regex("^[1-9][0-9]*$", v))])
    error_message = "secret_versions values must be version numbers such as \"2\"; \"latest\" is not accepted, so that every instance of a revision reads the same value."
  }
}

variable "max_instances" {
  description = "Upper bound on instances of each function. With one request per instance it is also the number of requests each function serves at once, and it caps the bill."
  type        = number
  default     = 10

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 100 && floor(var.max_instances) == var.max_instances
    error_message = "max_instances must be a whole number from 1 to 100."
  }
}

variable "memory" {
  description = "Memory of each function's instances (M, Mi, G or Gi). CPU follows memory: 256M gives about 1/6 vCPU."
  type = object({
    launch    = optional(string, "256M")
    callback  = optional(string, "256M")
    calculate = optional(string, "256M")
  })
  default = {}

  validation {
    condition     = alltrue([for m in values(var.memory) : can(regex("^[0-9]+(M|Mi|G|Gi)$", m))])
    error_message = "memory values must be sizes such as 256M, 512Mi or 1G."
  }
}

variable "launch_ttl" {
  description = "SMARTCALC_LAUNCH_TTL: how long a clinician may take from launch to callback (Go duration, 1m to 1h)."
  type        = string
  default     = "10m"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.launch_ttl))
    error_message = "launch_ttl must be a Go duration such as 10m."
  }
}

variable "session_ttl" {
  description = "SMARTCALC_SESSION_TTL: lifetime of an app session after the callback (Go duration, 5m to 24h)."
  type        = string
  default     = "8h"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.session_ttl))
    error_message = "session_ttl must be a Go duration such as 8h."
  }
}

variable "idle_timeout" {
  description = "SMARTCALC_IDLE_TIMEOUT: an app session ends after this long without a request, beside session_ttl (Go duration, 5m to 24h)."
  type        = string
  default     = "30m"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.idle_timeout))
    error_message = "idle_timeout must be a Go duration such as 30m."
  }
}

variable "discovery_ttl" {
  description = "SMARTCALC_DISCOVERY_TTL: how long an instance caches an EHR's SMART configuration (Go duration, up to 24h)."
  type        = string
  default     = "1h"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.discovery_ttl))
    error_message = "discovery_ttl must be a Go duration such as 1h."
  }
}

variable "cds_clients" {
  description = "SMARTCALC_CDS_CLIENTS: the EHRs' CDS Hooks clients allowed to call the CDS services: the iss of their JWTs, the JWK Set URL of their keys, and the only FHIR hosts (host or host:port) their fhirServer may name (required). Empty: every hook call is refused with 401."
  type = list(object({
    id         = string
    iss        = string
    jwks_url   = string
    fhir_hosts = list(string)
  }))
  default = []

  validation {
    condition     = alltrue([for c in var.cds_clients : can(regex("^https://", c.iss)) && can(regex("^https://", c.jwks_url))])
    error_message = "Every CDS client's iss and jwks_url must be https URLs."
  }

  validation {
    condition     = alltrue([for c in var.cds_clients : length(c.fhir_hosts) > 0])
    error_message = "Every CDS client needs fhir_hosts: SMART Calc sends the token a client lends only to those hosts."
  }

  validation {
    condition     = length(distinct([for c in var.cds_clients : c.id])) == length(var.cds_clients)
    error_message = "CDS client ids must be unique."
  }
}

variable "cds_budget" {
  description = "SMARTCALC_CDS_BUDGET: time a CDS Hooks answer may take before a degraded card is returned (Go duration, 100ms to 30s)."
  type        = string
  default     = "2s"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.cds_budget))
    error_message = "cds_budget must be a Go duration such as 2s."
  }
}

variable "cds_language" {
  description = "SMARTCALC_CDS_LANGUAGE: the language of the CDS Hooks cards, en or zh-TW. A CDS client sends no reader's language, so the deployment sets it; the app itself follows each browser's."
  type        = string
  default     = "en"

  validation {
    condition     = contains(["en", "zh-TW"], var.cds_language)
    error_message = "cds_language must be en or zh-TW."
  }
}

variable "lab_lookback" {
  description = "SMARTCALC_LAB_LOOKBACK: the oldest lab value an assessment uses (Go duration, 24h to 20 years)."
  type        = string
  default     = "8760h"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.lab_lookback))
    error_message = "lab_lookback must be a Go duration such as 8760h."
  }
}

variable "frame_ancestors" {
  description = "SMARTCALC_FRAME_ANCESTORS: extra https origins allowed to embed the app, besides the registered EHRs' hosts."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.frame_ancestors : can(regex("^https://[^/?#\\s]+$", o))])
    error_message = "frame_ancestors must be https origins such as https://ehr.example.org, without a path."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of the functions: debug, info, warn or error."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "log_level must be debug, info, warn or error."
  }
}
