package ehrsim

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
)

// pageTemplates are the sandbox's HTML pages. html/template escapes every
// value, so patient names such as O'Brien and data from DataDir are safe.
var pageTemplates = template.Must(template.New("layout").Parse(`{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · Sandbox EHR</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2733;background:#f4f6f8}
header{background:#1f4e79;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1rem;align-items:baseline}
header a{color:#fff}
main{padding:1rem 1.2rem;max-width:1200px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #d0d7de;padding:.4rem .5rem;text-align:left;vertical-align:top;font-size:.92rem}
th{background:#e8eef4}
code{background:#eef1f4;padding:0 .2rem}
.banner{background:#fff;border:1px solid #d0d7de;padding:.5rem 1rem;margin-bottom:.5rem;display:flex;gap:2rem}
.actions a{display:inline-block;margin:.1rem 0}
.error{background:#fff;border-left:4px solid #9e2d2d;padding:1rem}
button{padding:.3rem .7rem;margin:.1rem}
iframe{width:100%;height:80vh;border:1px solid #8c959f;background:#fff}
</style></head><body>{{end}}

{{define "home"}}{{template "head" "Patients"}}
<header><strong>Sandbox EHR</strong><span>SMART App Launch 2.x · FHIR R4</span></header>
<main>
<p>FHIR base (iss): <code>{{.FHIRBase}}</code> ·
<a href="{{.FHIRBase}}/.well-known/smart-configuration">smart-configuration</a> ·
<a href="{{.FHIRBase}}/metadata">CapabilityStatement</a>.
App launch URL: <code>{{if .AppLaunchURL}}{{.AppLaunchURL}}{{else}}(none configured){{end}}</code>.
The sandbox approves every authorization at once as {{.User}}; there is no login page.</p>
<h2>Patients</h2>
<table><thead><tr><th>Name</th><th>Birth date</th><th>Sex</th><th>MRN</th><th>What it exercises</th><th>Launch</th></tr></thead><tbody>
{{range .Patients}}<tr><td>{{.Name}}<br><small><code>{{.ID}}</code></small></td><td>{{.BirthDate}}</td><td>{{.Gender}}</td><td>{{.MRN}}</td>
<td>{{if .Description}}{{.Description}}{{else}}<em>Loaded from {{.Source}}</em>{{end}}</td>
<td class="actions"><a href="{{.LaunchURL}}">Launch SMART Calc</a><br><a href="{{.EmbedURL}}">open embedded (iframe)</a></td></tr>
{{end}}</tbody></table>
<h2>Launch with faults</h2>
<form method="get" action="{{.LaunchAction}}">
<label>Patient <select name="patient">{{range .Patients}}<option value="{{.ID}}">{{.Name}} ({{.ID}})</option>{{end}}</select></label>
<label>Profile <select name="profile">{{range .Profiles}}<option value="{{.Name}}">{{.Name}}</option>{{end}}</select></label>
<label>Faults <input name="fault" size="50" placeholder="e.g. scope-downgrade,fhir-403:Condition"></label>
<label>need_patient_banner <select name="need_patient_banner"><option>true</option><option>false</option></select></label>
<button type="submit">Launch</button>
<button type="submit" formaction="{{.EmbedAction}}">Launch embedded</button>
</form>
<p>A launch's faults are stored with its launch token and carried into the code and tokens issued from it.
Combine them with commas; <code>name:arg</code> gives the optional argument.</p>
<table><thead><tr><th>Fault</th><th>Argument</th><th>Effect</th></tr></thead><tbody>
{{range .Faults}}<tr><td><code>{{.Name}}</code></td><td>{{.Arg}}</td><td>{{.Description}}</td></tr>
{{end}}</tbody></table>
<h2>Profiles</h2>
<p>A launch's profile (<code>/launch?patient=ID&amp;profile=NAME</code>) picks the EHR it behaves like. Each profile is its
own SMART server on the same patients, with its own FHIR base (the <code>iss</code>), endpoints and id_token issuer,
so an app registers with each as it would with that vendor; faults combine with any profile.</p>
<table><thead><tr><th>Profile</th><th>FHIR base (iss)</th><th>id_token issuer</th><th>Behaviour</th></tr></thead><tbody>
{{range .ProfileRows}}<tr><td><code>{{.Name}}</code><br>{{.Title}}</td><td><code>{{.FHIRBase}}</code></td><td><code>{{.Issuer}}</code></td>
<td><ul>{{range .Quirks}}<li>{{.}}</li>{{end}}</ul></td></tr>
{{end}}</tbody></table>
<h2>Other ways in</h2>
<p>Standalone launch: the app sends the browser to <code>{{.AuthorizeURL}}</code> without <code>launch</code> and with the
<code>launch/patient</code> scope; the sandbox then shows a patient picker.
<code>/launch?patient=ID&amp;encounter=ID</code> picks the encounter (default: the patient's in-progress one).
The embedded view launches with <code>need_patient_banner=false</code>, because the EHR shows its own banner.</p>
<p>Registered apps: {{range .Clients}}<code>{{.ID}}</code> ({{.Type}}, profile {{.Profile}}{{if .SMARTVersion}}, SMART {{.SMARTVersion}}{{end}}) {{else}}none{{end}}</p>
</main></body></html>{{end}}

{{define "embed"}}{{template "head" .Patient.Name}}
<header><strong>Sandbox EHR</strong><a href="{{.HomeURL}}">Patient list</a></header>
<main>
<div class="banner" aria-label="Patient banner"><strong>{{.Patient.Name}}</strong><span>Born {{.Patient.BirthDate}}</span>
<span>{{.Patient.Gender}}</span><span>MRN {{.Patient.MRN}}</span></div>
<iframe title="SMART Calc" src="{{.IframeURL}}"></iframe>
</main></body></html>{{end}}

{{define "picker"}}{{template "head" "Select a patient"}}
<header><strong>Sandbox EHR</strong><span>Standalone launch</span></header>
<main><h1>Select a patient</h1>
<p>The app asked for a patient context (<code>launch/patient</code>). Choose the patient to share.</p>
<form method="post" action="{{.Action}}"><input type="hidden" name="request" value="{{.RequestID}}">
<table><thead><tr><th>Name</th><th>Birth date</th><th>Sex</th><th>MRN</th><th></th></tr></thead><tbody>
{{range .Patients}}<tr><td>{{.Name}}</td><td>{{.BirthDate}}</td><td>{{.Gender}}</td><td>{{.MRN}}</td>
<td><button type="submit" name="patient" value="{{.ID}}">Select</button></td></tr>
{{end}}</tbody></table>
<p><button type="submit" name="cancel" value="1">Cancel</button></p></form>
</main></body></html>{{end}}

{{define "error"}}{{template "head" .Title}}
<header><strong>Sandbox EHR</strong><a href="{{.HomeURL}}">Patient list</a></header>
<main><div class="error" role="alert"><h1>{{.Title}}</h1><p>{{.Message}}</p></div></main></body></html>{{end}}
`))

type patientRow struct {
	PatientSummary
	LaunchURL, EmbedURL string
}

func (s *Server) serveHome(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Use GET.")
		return
	}
	var rows []patientRow
	for _, p := range s.Patients() {
		rows = append(rows, patientRow{p, s.LaunchURL(p.ID), s.baseURL + "/embed?" + url.Values{"patient": {p.ID}}.Encode()})
	}
	type clientRow struct{ ID, Type, Profile, SMARTVersion string }
	var clients []clientRow
	for _, c := range s.cfg.Clients {
		prof := c.Profile
		if prof == "" {
			prof = ProfileDefault
		}
		clients = append(clients, clientRow{c.ID, c.Type, prof, c.SMARTVersion})
	}
	type profileRow struct {
		ProfileInfo
		FHIRBase, Issuer string
	}
	var profiles []profileRow
	for _, pi := range Profiles {
		ep, _ := s.Endpoints(pi.Name)
		profiles = append(profiles, profileRow{pi, ep.FHIRBase, ep.IDTokenIssuer})
	}
	s.render(w, http.StatusOK, "home", map[string]any{
		"FHIRBase":     s.fhirBase,
		"AppLaunchURL": s.cfg.AppLaunchURL,
		"AuthorizeURL": s.AuthorizeURL(),
		"User":         "Practitioner/" + UserID,
		"Patients":     rows,
		"Faults":       Faults,
		"Profiles":     Profiles,
		"ProfileRows":  profiles,
		"Clients":      clients,
		"LaunchAction": s.baseURL + "/launch",
		"EmbedAction":  s.baseURL + "/embed",
	})
}

// serveEmbed shows an EHR-like page whose iframe runs the launch, with
// need_patient_banner=false since the page shows the patient banner.
func (s *Server) serveEmbed(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if _, msg, status := s.newLaunch(q); msg != "" {
		s.errorPage(w, status, "Cannot launch", msg)
		return
	}
	q.Set("need_patient_banner", "false")
	for k, v := range q {
		if len(v) == 1 && v[0] == "" {
			delete(q, k)
		}
	}
	p := summarize(s.data.get("Patient", q.Get("patient")))
	s.render(w, http.StatusOK, "embed", map[string]any{
		"Patient":   p,
		"IframeURL": s.baseURL + "/launch?" + q.Encode(),
		"HomeURL":   s.baseURL + "/",
	})
}

func (s *Server) pickerPage(w http.ResponseWriter, requestID string) {
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, http.StatusOK, "picker", map[string]any{
		"Patients":  s.Patients(),
		"RequestID": requestID,
		"Action":    s.baseURL + "/authorize/pick",
	})
}

// errorPage answers with the sandbox's HTML error page.
func (s *Server) errorPage(w http.ResponseWriter, status int, title, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, status, "error", map[string]any{"Title": title, "Message": msg, "HomeURL": s.baseURL + "/"})
}

func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
