package ehrsim

import (
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// cdsDrugs are the drugs the hook page can put in draft orders: RxNorm
// codes from the reference's medication lists (shared/calc/SOURCES.md §7d) and a
// statin as a drug that should raise no card.
var cdsDrugs = map[string]struct{ Code, Display string }{
	"aspirin":      {"1191", "aspirin 81 mg tablet"},
	"clopidogrel":  {"32968", "clopidogrel 75 mg tablet"},
	"prasugrel":    {"613391", "prasugrel 10 mg tablet"},
	"ticagrelor":   {"1116632", "ticagrelor 90 mg tablet"},
	"apixaban":     {"1364430", "apixaban 5 mg tablet"},
	"rivaroxaban":  {"1114195", "rivaroxaban 20 mg tablet"},
	"warfarin":     {"11289", "warfarin 5 mg tablet"},
	"atorvastatin": {"83367", "atorvastatin 40 mg tablet"},
}

var cdsTemplates = template.Must(template.Must(pageTemplates.Clone()).Parse(`{{define "cds"}}{{template "head" "CDS Hooks"}}
<header><strong>Sandbox EHR</strong><span>CDS Hooks client</span><a href="{{.HomeURL}}">Patient list</a></header>
<main>
<p>The sandbox calls <code>{{.ServiceBase}}/cds-services</code> as an EHR would: a signed JWT (iss <code>{{.Issuer}}</code>,
keys at <a href="{{.JWKSURL}}">{{.JWKSURL}}</a>), the hook context, the prefetch and a patient-scoped access token.</p>
<form method="get" action="{{.Action}}">
<label>Patient <select name="patient">{{range .Patients}}<option value="{{.ID}}"{{if eq .ID $.Patient}} selected{{end}}>{{.Name}} ({{.ID}})</option>{{end}}</select></label>
<label>Hook <select name="hook">{{range .Hooks}}<option{{if eq . $.Hook}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>Prefetch <select name="prefetch">{{range .Modes}}<option{{if eq . $.Prefetch}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>FHIR access <select name="access"><option{{if eq "on" $.Access}} selected{{end}}>on</option><option{{if eq "off" $.Access}} selected{{end}}>off</option></select></label>
<label>Draft orders <input name="drafts" size="30" value="{{.Drafts}}" placeholder="e.g. clopidogrel,aspirin"></label>
<label>Faults <input name="fault" size="20" value="{{.Fault}}" placeholder="e.g. fhir-slow:5s"></label>
<button type="submit">Run hook</button>
</form>
<p>Drugs for draft orders: {{range .Drugs}}<code>{{.}}</code> {{end}}. Faults apply to the service's own FHIR reads.</p>
{{if .Error}}<div class="error" role="alert"><p>{{.Error}}</p></div>{{end}}
{{if .Ran}}<h2>Answer: HTTP {{.Status}} in {{.Latency}}</h2>
<p>Prefetch keys sent: {{range .Keys}}<code>{{.}}</code> {{else}}none{{end}}</p>
{{range .Cards}}<section class="banner" style="display:block;border-left:6px solid {{.Color}}">
<p><strong>[{{.Indicator}}] {{.Summary}}</strong></p>
<pre style="white-space:pre-wrap;font-family:inherit">{{.Detail}}</pre>
<p><small>Source: {{if .SourceURL}}<a href="{{.SourceURL}}">{{.Source}}</a>{{else}}{{.Source}}{{end}}</small></p>
{{range .Links}}<p>{{if .Href}}<a href="{{.Href}}">{{.Label}}</a>{{else}}{{.Label}} <small>({{.Note}})</small>{{end}}</p>{{end}}
</section>
{{else}}<p>No cards.</p>{{end}}
{{if not .Cards}}{{if ne .Status 200}}<pre>{{.Body}}</pre>{{end}}{{end}}
{{end}}
</main></body></html>{{end}}`))

type cdsLink struct{ Label, Href, Note string }

type cdsCardView struct {
	Indicator, Summary, Detail, Source, SourceURL, Color string
	Links                                                []cdsLink
}

// servePage runs a hook for a patient and shows the cards, as an EHR's
// CDS panel would. A smart link opens the app through the sandbox's own
// EHR launch.
func (c *CDSClient) servePage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		c.s.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Use GET.")
		return
	}
	q := r.URL.Query()
	data := map[string]any{
		"HomeURL": c.s.baseURL + "/", "Action": c.PageURL(), "ServiceBase": c.cfg.ServiceBase,
		"Issuer": c.Issuer(), "JWKSURL": c.JWKSURL(), "Patients": c.s.Patients(),
		"Hooks": []string{"patient-view", "order-select", "order-sign"}, "Modes": []string{"all", "none", "patient,observations"},
		"Patient": q.Get("patient"), "Hook": orDefault(q.Get("hook"), "patient-view"),
		"Prefetch": orDefault(q.Get("prefetch"), "all"), "Access": orDefault(q.Get("access"), "on"),
		"Drafts": q.Get("drafts"), "Fault": q.Get("fault"),
	}
	var drugs []string
	for k := range cdsDrugs {
		drugs = append(drugs, k)
	}
	sort.Strings(drugs)
	data["Drugs"] = drugs
	if q.Get("patient") != "" {
		c.run(r, q, data)
	}
	w.Header().Set("Cache-Control", "no-store")
	var buf strings.Builder
	if err := cdsTemplates.ExecuteTemplate(&buf, "cds", data); err != nil {
		http.Error(w, "page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write([]byte(buf.String()))
}

func (c *CDSClient) run(r *http.Request, q url.Values, data map[string]any) {
	pid := q.Get("patient")
	call := CDSCall{Hook: data["Hook"].(string), Patient: pid, NoFHIRAccess: q.Get("access") == "off"}
	if f := q.Get("fault"); f != "" {
		call.Faults = []string{f}
	}
	switch p := data["Prefetch"].(string); p {
	case "all":
	case "none":
		call.NoPrefetch = true
	default:
		call.PrefetchKeys = strings.Split(p, ",")
	}
	for i, name := range strings.Split(q.Get("drafts"), ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		d, ok := cdsDrugs[name]
		if !ok {
			data["Error"] = "Unknown drug " + name + "."
			return
		}
		call.DraftOrders = append(call.DraftOrders, DraftMedicationRequest("draft-"+name+"-"+string(rune('a'+i)), pid, d.Code, d.Display))
	}
	res, err := c.Call(r.Context(), call)
	if err != nil {
		data["Error"] = err.Error()
		return
	}
	data["Ran"], data["Status"], data["Latency"], data["Keys"], data["Body"] = true, res.Status, res.Latency.Round(100_000).String(), res.PrefetchKeys, string(res.Body)
	var cards []cdsCardView
	for _, cd := range res.Cards {
		v := cdsCardView{Indicator: cd.Indicator, Summary: cd.Summary, Detail: cd.Detail, Source: cd.Source.Label, SourceURL: cd.Source.URL,
			Color: map[string]string{"critical": "#9e2d2d", "warning": "#b35c00"}[cd.Indicator]}
		if v.Color == "" {
			v.Color = "#1f4e79"
		}
		if u, err := url.Parse(cd.Source.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			v.SourceURL = ""
		}
		for _, l := range cd.Links {
			cl := cdsLink{Label: l.Label}
			switch {
			case l.Type == "smart" && l.URL == c.s.cfg.AppLaunchURL:
				cl.Href = c.s.LaunchURL(pid)
			case l.Type == "smart":
				cl.Note = "a SMART app this sandbox has no registration for"
			default:
				if u, err := url.Parse(l.URL); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
					cl.Href = l.URL
				} else {
					cl.Note = "not an http(s) link"
				}
			}
			v.Links = append(v.Links, cl)
		}
		cards = append(cards, v)
	}
	data["Cards"] = cards
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
