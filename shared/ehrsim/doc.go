// Package ehrsim is the sandbox EHR: a SMART App Launch 2.x authorization
// server and a FHIR R4 server in one http.Handler, for local runs, demos and
// tests of SMART Calc.
//
// Nothing in it mocks SMART Calc's own code. It behaves like a strict real
// EHR so that the app's mistakes show up: it requires S256 PKCE, an exactly
// registered redirect_uri, an aud equal to its FHIR base, single-use codes
// that expire after 60 seconds, client authentication of the registered kind
// (public, client_secret_basic or private_key_jwt with ES384/RS384), and
// rotates refresh tokens. Its FHIR server requires a bearer token it issued,
// honours SMART v1 and v2 scopes and the patient compartment, and answers
// every error with an OperationOutcome.
//
// A Server serves these routes under Config.BaseURL (for example /ehr/ in the
// local runner):
//
//	/                     the EHR page: patients, launch links, faults, profiles
//	/launch?patient=ID    EHR launch: 302 to AppLaunchURL?iss=<FHIR base>&launch=<token>
//	                      (&profile=oracle or epic: through that profile's server)
//	/embed?patient=ID     an EHR-like page that runs that launch in an iframe
//	/authorize            authorization endpoint (GET, or POST form)
//	/authorize/pick       the standalone patient picker's form target
//	/token                token endpoint (authorization_code, refresh_token)
//	/jwks                 the id_token signing keys
//	/smart-style.json     the smart_style_url document
//	/fhir/...             FHIR R4: .well-known/smart-configuration,
//	                      .well-known/openid-configuration, metadata,
//	                      read and search
//	/oracle/..., /epic/...  the same for the Oracle Health and Epic
//	                      profiles, at their vendors' URL shapes (see
//	                      Server.Endpoints)
//
// Launches can misbehave on request (see Faults), so tests can prove that the
// app says the right thing when an EHR trims scopes, refuses a client, is slow
// or fails. Profiles (see Profiles) reproduce the published behaviour of
// Oracle Health's and Epic's SMART servers, each quirk cited from the
// vendor's documentation where it is defined.
//
// Sample patients ship with the package (patients/*.json) and more can be
// loaded from a folder of FHIR Bundles, such as Synthea's output. The shipped
// bundles are valid FHIR transaction Bundles written against a fixed date,
// their Bundle.timestamp, and carry the meta.tag
// https://smartcalc.app/fhir/ehrsim|relative-dates: at load time every date,
// dateTime and instant in them moves by the calendar days (UTC) between that
// timestamp and Config.Now, keeping its time of day. A lab "1 day old" stays
// one day old whenever the sandbox runs, intervals between events are kept,
// and ages do not change. A bundle in Config.DataDir may opt in with the same
// tag; other bundles (Synthea's) are loaded unchanged. Each shipped Patient
// carries a description of what it exercises in the extension
// https://smartcalc.app/fhir/StructureDefinition/ehrsim-sample-description,
// shown on the EHR page.
//
// Loaded bundles may be collection, transaction, batch or searchset Bundles.
// References to an entry's fullUrl (urn:uuid:...) become Type/id, resources
// without an id get one (from a PUT url, the urn:uuid, or a stable hash), and
// Synthea's conditional references (Organization?identifier=system|value)
// are resolved against every loaded resource. A resource loaded twice with
// the same type and id replaces the earlier one, as a PUT would.
//
// The sandbox never logs: the app side does that.
package ehrsim
