package web

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
	"sync"
)

// The sessionStorage fallback of the browser binding (architecture §1). An
// EHR browser that refuses even a partitioned cookie in its iframe still
// keeps sessionStorage for the frame's origin. There the launch answers
// with a page that puts the binding nonce in sessionStorage and goes on to
// the authorize endpoint, and a callback that got no cookie answers with a
// page that reads the nonce back and POSTs the EHR's answer with it to the
// callback. The server decides: a POST whose nonce does not match creates
// no session. Nonces, codes and states ride in page bodies and a POST body,
// never in a URL.

// BindingStorageKey is the sessionStorage key of the launch with that
// correlation id.
func BindingStorageKey(correlation string) string { return "smartcalc.binding." + correlation }

// HandoffStorageKey is the sessionStorage key where the callback leaves
// the hand-off's binding nonce for the app page when no cookie carries it.
const HandoffStorageKey = "smartcalc.handoff-binding"

// The scripts are constants so that the pages' CSP can allow them by hash;
// their data comes in a JSON block that is not executed.
const (
	// storeAndGoScript stores d.nonce under d.key (when set) and replaces
	// the page with d.next.
	storeAndGoScript = `(function(){var d=JSON.parse(document.getElementById('d').textContent);try{if(d.key){sessionStorage.setItem(d.key,d.nonce)}}catch(e){}location.replace(d.next)})();`
	// postBackScript reads the nonce under d.key, removes it, and POSTs
	// d.fields with it as "binding" to d.action.
	postBackScript = `(function(){var d=JSON.parse(document.getElementById('d').textContent);var n='';try{n=sessionStorage.getItem(d.key)||'';sessionStorage.removeItem(d.key)}catch(e){}var f=document.createElement('form');f.method='POST';f.action=d.action;function add(k,v){var i=document.createElement('input');i.type='hidden';i.name=k;i.value=v;f.appendChild(i)}for(var k in d.fields){add(k,d.fields[k])}add('binding',n);document.body.appendChild(f);f.submit()})();`
)

func scriptHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// scriptPage is parsed on first use.
var scriptPage = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("script").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>SMART Calc</title><style>` + pageStyle + `</style></head>
<body><main aria-live="polite"><p>{{.Text}}</p>
<noscript><p class="advice">SMART Calc needs JavaScript to sign in here. Open SMART Calc from the EHR again with JavaScript enabled.</p></noscript></main>
<script type="application/json" id="d">{{.Data}}</script>
<script>{{.Script}}</script>
</body></html>
`))
})

// scriptPageOut writes a no-store page that runs script with data.
func scriptPageOut(w http.ResponseWriter, frameAncestors []string, text, script string, data any) {
	raw, err := json.Marshal(data)
	if err != nil {
		http.Error(w, "web: page data", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	Headers(h, frameAncestors, styleHash)
	// Only this page's own script runs.
	h.Set("Content-Security-Policy", strings.Replace(h.Get("Content-Security-Policy"),
		"script-src 'self'", "script-src "+scriptHash(script), 1))
	NoStore(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_ = scriptPage().Execute(w, struct {
		Text   string
		Data   template.JS
		Script template.JS
	}{text, template.JS(jsonForScript(raw)), template.JS(script)})
}

// jsonForScript makes JSON safe inside a <script> element.
func jsonForScript(raw []byte) string {
	return strings.NewReplacer("<", `\u003c`, ">", `\u003e`, "&", `\u0026`, "\u2028", `\u2028`, "\u2029", `\u2029`).Replace(string(raw))
}

// StoreAndGo answers with a page that keeps nonce in sessionStorage under
// key (none when key is "") and then replaces itself with next.
func StoreAndGo(w http.ResponseWriter, frameAncestors []string, key, nonce, next string) {
	scriptPageOut(w, frameAncestors, "Connecting to the EHR…", storeAndGoScript,
		map[string]string{"key": key, "nonce": nonce, "next": next})
}

// PostBack answers with a page that POSTs fields, plus the nonce kept under
// key as "binding", to action (a same-origin path).
func PostBack(w http.ResponseWriter, frameAncestors []string, key, action string, fields map[string]string) {
	scriptPageOut(w, frameAncestors, "Signing in…", postBackScript,
		map[string]any{"key": key, "action": action, "fields": fields})
}

// SameOrigin reports whether a state-changing request r comes from a page
// of origin (scheme://host): its Origin header, or where a browser sends
// none or "null" (as Chromium does for a form POST from a no-referrer
// page), Sec-Fetch-Site. A request with neither is refused.
func SameOrigin(r *http.Request, origin string) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		return o == origin
	}
	return r.Header.Get("Sec-Fetch-Site") == "same-origin"
}
