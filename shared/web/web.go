// Package web holds what SMART Calc's handlers share on the HTTP side: the
// one HTML error page a clinician sees, the one JSON error shape the API
// answers with, and the security headers every response carries.
//
// Pages render inside an EHR's iframe, so frame-ancestors lists the EHRs'
// origins instead of X-Frame-Options: DENY.
package web

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/smartcalc-app/smartcalc/shared/message"
)

// Problem is what went wrong, told twice: to the clinician on the page, and
// to the deployer in the log line the handler writes with the same fields.
// Every sentence is written in the reader's language (the log's are in
// English); in Causes and Sent the technical tokens (parameter names,
// URLs, client ids) stay as they are.
type Problem struct {
	Status      int           // HTTP status
	Title       message.Msg   // what happened, in a sentence
	Advice      message.Msg   // what to do, usually "Relaunch SMART Calc from the EHR."
	Causes      []message.Msg // likely causes, most likely first
	Sent        []message.Msg // what the app sent (never a secret value)
	EHRError    string        // the EHR's error code and description, if any
	Correlation string        // the launch's correlation id, for support
	RetryAfter  int           // seconds; > 0 sends Retry-After (a transient failure)
}

// Headers sets the security headers for a SMART Calc page or API response.
// frameAncestors are the origins allowed to embed it (the EHRs); with none,
// only the app itself may.
func Headers(h http.Header, frameAncestors []string, styleHashes ...string) {
	fa := "'self'"
	if len(frameAncestors) > 0 {
		fa += " " + strings.Join(frameAncestors, " ")
	}
	style := "'self'"
	for _, s := range styleHashes {
		style += " '" + s + "'"
	}
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src "+style+
		"; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors "+fa)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Strict-Transport-Security", "max-age=31536000")
	h.Del("X-Frame-Options")
}

// NoStore marks a response as never to be cached: every page and API answer
// that carries patient data or a launch outcome.
func NoStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

const pageStyle = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans TC",sans-serif;margin:0;padding:1.5rem;color:#1b1b1b;background:#fff;line-height:1.5;max-width:46rem}
h1{font-size:1.35rem;color:#8a1c1c;margin:0 0 .75rem}
h2{font-size:1rem;margin:1.25rem 0 .25rem}
.advice{font-size:1.1rem;font-weight:600;background:#fff4e5;border-left:4px solid #b35c00;padding:.6rem .8rem}
code{background:#f2f2f2;padding:0 .2rem;word-break:break-all}
.meta{color:#444;font-size:.85rem;margin-top:1.5rem}`

var styleHash = func() string {
	sum := sha256.Sum256([]byte(pageStyle))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}()

// page is the error page's template, parsed on first use: most instances
// never write one.
var page = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("error").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.HeadTitle}}</title><style>` + pageStyle + `</style></head>
<body><main role="alert" aria-live="assertive">
<h1>{{.Title}}</h1>
<p class="advice">{{.Advice}}</p>
{{if .EHRError}}<h2>{{.EHRSaid}}</h2><p><code>{{.EHRError}}</code></p>{{end}}
{{if .Causes}}<h2>{{.CausesTitle}}</h2><ol>{{range .Causes}}<li>{{.}}</li>{{end}}</ol>{{end}}
{{if .Sent}}<h2>{{.SentTitle}}</h2><ul>{{range .Sent}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p class="meta">{{.StatusText}}{{if .Correlation}} · {{.Reference}} <code>{{.Correlation}}</code>{{end}}</p>
</main></body></html>
`))
})

// pageData is a Problem written in one language.
type pageData struct {
	Lang, HeadTitle, Title, Advice, EHRSaid, CausesTitle, SentTitle, StatusText, Reference string
	EHRError, Correlation                                                                  string
	Causes, Sent                                                                           []string
}

// ErrorPage writes p as the one HTML error page, with its status, no-store
// and the security headers, in the language r asks for (Accept-Language;
// English when r is nil).
func ErrorPage(w http.ResponseWriter, r *http.Request, frameAncestors []string, p Problem) {
	if p.Status == 0 {
		p.Status = http.StatusInternalServerError
	}
	lang := message.English
	if r != nil {
		lang = message.Negotiate(r.Header.Get("Accept-Language"))
	}
	say := message.Default().Printer(lang)
	title := say.Sprint(p.Title)
	if p.Title.IsZero() {
		title = http.StatusText(p.Status)
	}
	advice := say.Sprint(p.Advice)
	if p.Advice.IsZero() {
		advice = say.Text("signin.advice.relaunch", nil)
	}
	d := pageData{Lang: string(say.Lang()), HeadTitle: say.Text("errorpage.title", message.Args{"title": title}), Title: title, Advice: advice,
		EHRSaid: say.Text("errorpage.ehr-said", nil), CausesTitle: say.Text("errorpage.causes", nil), SentTitle: say.Text("errorpage.sent", nil),
		StatusText: say.Text("errorpage.status", message.Args{"status": p.Status}), Reference: say.Text("errorpage.reference", nil),
		EHRError: p.EHRError, Correlation: p.Correlation, Causes: say.SprintAll(p.Causes), Sent: say.SprintAll(p.Sent)}
	h := w.Header()
	h.Set("Content-Language", string(say.Lang()))
	h.Add("Vary", "Accept-Language")
	Headers(h, frameAncestors, styleHash)
	NoStore(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	w.WriteHeader(p.Status)
	_ = page().Execute(w, d)
}

// JSON writes v as a JSON response with status.
func JSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		NoStore(h)
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// APIError is the API's one error shape (README Design §5).
type APIError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// JSONError writes {"error": code, "message": message} with status.
func JSONError(w http.ResponseWriter, status int, code, message string) {
	JSON(w, status, APIError{Error: code, Message: message})
}

// Redirect sends the browser to url with status and no body. Unlike
// http.Redirect it writes no HTML link: the URLs here (authorize requests,
// the app with its session fragment) are already absolute, and an escaped
// copy in a body is work on the hot path for no reader.
func Redirect(w http.ResponseWriter, url string, status int) {
	w.Header().Set("Location", url)
	w.WriteHeader(status)
}
