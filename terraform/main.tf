locals {
  # The public origin of all three functions. Cloud Functions gives every
  # function https://REGION-PROJECT.cloudfunctions.net/NAME, so the URLs are
  # known before anything exists: the functions get their own and each other's
  # URLs without a dependency cycle, and all three share one origin
  # (README Design §1). The functions' postconditions check the assumption.
  base_url = "https://${var.region}-${var.project_id}.cloudfunctions.net"

  # Secret Manager id of the AES-256 key that seals tokens at rest.
  token_key_secret = "smartcalc-token-key"

  # Secret Manager id of the key under which launch seals each PKCE verifier
  # (with a key derived from it and the state) and callback opens it.
  launch_key_secret = "smartcalc-launch-key"

  # Secret Manager id of the bearer token of calculate's admin path
  # (/admin/doctor, the readiness check of an EHR registration).
  admin_token_secret = "smartcalc-admin-token"

  # The names of the client secrets and private keys the registrations refer to.
  client_secret_names = distinct(concat(
    [for e in var.ehrs : e.client_auth.secret if e.client_auth.type == "client_secret_basic"],
    [for e in var.ehrs : e.client_auth.key if e.client_auth.type == "private_key_jwt"],
  ))

  # Every secret Terraform creates (id => the environment variable that
  # carries its value). A client secret's variable is SMARTCALC_SECRET_ plus
  # its name upper-cased with - as _, as config.SecretVariable computes it;
  # names are restricted to [A-Za-z0-9_-], so replacing - is the whole mapping.
  token_secret_env  = { (local.token_key_secret) = "SMARTCALC_TOKEN_KEY" }
  launch_secret_env = { (local.launch_key_secret) = "SMARTCALC_LAUNCH_KEY" }
  admin_secret_env  = { (local.admin_token_secret) = "SMARTCALC_ADMIN_TOKEN" }
  client_secret_env = { for n in local.client_secret_names : n => "SMARTCALC_SECRET_${upper(replace(n, "-", "_"))}" }
  secret_env        = merge(local.token_secret_env, local.launch_secret_env, local.admin_secret_env, local.client_secret_env)

  # The secrets each function reads (least privilege): launch the launch key
  # alone; callback the launch key, the token key and the client secrets;
  # calculate the token key, the client secrets and the admin token, which
  # only its admin path uses.
  callback_secret_env  = merge(local.token_secret_env, local.launch_secret_env, local.client_secret_env)
  calculate_secret_env = merge(local.token_secret_env, local.admin_secret_env, local.client_secret_env)

  # The registrations as the Go loader reads them: unset optional fields are
  # left out rather than sent as null.
  ehrs_json = jsonencode([
    for e in var.ehrs : merge(
      { for k, v in e : k => v if v != null && k != "client_auth" },
      { client_auth = { for k, v in e.client_auth : k => v if v != null } },
    )
  ])

  # Environment of each function, least privilege: launch never sees a token,
  # so its one secret is the launch key that seals verifiers; callback opens
  # verifiers, exchanges codes and seals tokens, so it reads the launch key,
  # the token key and every client secret; calculate refreshes tokens, so it
  # reads the token key and every client secret, not the launch key, and the
  # admin token. Only calculate checks the idle timeout.
  launch_env = {
    SMARTCALC_BASE_URL           = local.base_url
    SMARTCALC_EHRS               = local.ehrs_json
    SMARTCALC_FIRESTORE_PROJECT  = var.project_id
    SMARTCALC_FIRESTORE_DATABASE = var.firestore_database
    SMARTCALC_LAUNCH_TTL         = var.launch_ttl
    SMARTCALC_DISCOVERY_TTL      = var.discovery_ttl
    SMARTCALC_FRAME_ANCESTORS    = join(" ", var.frame_ancestors)
    LOG_LEVEL                    = var.log_level
  }
  callback_env = merge(local.launch_env, {
    SMARTCALC_SESSION_TTL = var.session_ttl
  })
  calculate_env = merge(local.callback_env, {
    SMARTCALC_IDLE_TIMEOUT = var.idle_timeout
    SMARTCALC_CDS_CLIENTS  = jsonencode([for c in var.cds_clients : { for k, v in c : k => v if v != null }])
    SMARTCALC_CDS_BUDGET   = var.cds_budget
    SMARTCALC_CDS_LANGUAGE = var.cds_language
    SMARTCALC_LAB_LOOKBACK = var.lab_lookback
  })

  # The environment of the functions' build (go build): CGO_ENABLED=0 links
  # the binary statically, with the net package's pure-Go resolver and no C
  # library, so an instance maps no libc or dynamic loader: 1.7 MiB less
  # resident memory and about 2 ms less cold start per instance (README
  # Performance). terraform/build_test.go builds with this same environment.
  build_env = { CGO_ENABLED = "0" }

  # The three functions. The keys are the names registered with
  # functions.HTTP in functions/entrypoints, the entry points, the function
  # names and the last segment of their URLs.
  #
  # Memory: 256M, from measurement. The local runner (all three functions and
  # the sandbox EHR in one process, Firestore client against the emulator)
  # peaked at 36 MiB resident after 170 launch, callback and assessment
  # rounds over the sandbox's 18 patients (VmHWM; Go 1.26, Nov 2026). One
  # function alone needs less, so 256M leaves about 7x headroom for large
  # FHIR bundles; 128M would also fit but gets 1/12 vCPU, which slows cold
  # starts. Timeouts: launch and callback make one or two outbound calls with
  # 10 s client timeouts; calculate pages through FHIR searches, so it gets a
  # minute.
  functions = {
    launch = {
      description = "SMART Calc: EHR launch URI (checks iss, discovers endpoints, starts PKCE)"
      memory      = var.memory.launch
      timeout     = 30
      env         = local.launch_env
      secrets     = local.launch_secret_env
    }
    callback = {
      description = "SMART Calc: redirect URI (consumes the launch state, exchanges the code)"
      memory      = var.memory.callback
      timeout     = 30
      env         = local.callback_env
      secrets     = local.callback_secret_env
    }
    calculate = {
      description = "SMART Calc: the app UI, its JSON API and the CDS Hooks services"
      memory      = var.memory.calculate
      timeout     = 60
      env         = local.calculate_env
      secrets     = local.calculate_secret_env
    }
  }

  # One accessor grant per (function, secret) that the function reads.
  secret_grants = merge([
    for f, fn in local.functions : {
      for s in keys(fn.secrets) : "${f}/${s}" => { function = f, secret = s }
    }
  ]...)

  apis = [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]
}

resource "google_project_service" "api" {
  for_each = toset(local.apis)

  service = each.key
  # Destroying this configuration must not switch APIs off for anything else
  # in the project.
  disable_on_destroy = false
}
