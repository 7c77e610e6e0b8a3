package main

// Browser tests: real headless Chromium (Debian's chromium, which
// smarttest.Chromium installs when it is absent), driven with chromedp,
// runs the whole flow through the local runner: the sandbox EHR's launch,
// the app's launch and callback, the sandbox's authorize, and the
// clinician's page at /calculate/. Each test has its own browser and a 60 s
// deadline; every wait is for a state of the page, never for a duration.
//
// Screenshots are kept as artifacts in $SMARTCALC_ARTIFACTS when it names a
// folder; otherwise they go to the test's own temporary directory, which
// the test removes. Their paths are logged.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/css"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/smartcalc-app/smartcalc/functions/entrypoints"
	"github.com/smartcalc-app/smartcalc/shared/calc"
	"github.com/smartcalc-app/smartcalc/shared/ehrsim"
	"github.com/smartcalc-app/smartcalc/shared/smart"
	"github.com/smartcalc-app/smartcalc/shared/smarttest"
	"github.com/smartcalc-app/smartcalc/shared/store"
)

// browserTimeout bounds each browser test: the browser dies with it.
const browserTimeout = 60 * time.Second

// waitTimeout bounds one wait for a state of the page, shorter than the
// test's deadline so that a failure can still say what the page shows.
const waitTimeout = 30 * time.Second

// sessionKey is where app.js keeps the handle (one per tab).
const sessionKey = "smartcalc.session"

// tab is one browser tab (or an iframe's target) of a test's browser.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	console  []chromedp.ConsoleMessage
	requests []*network.EventRequestWillBeSent
	since    int // the first request of the latest launch
}

// newBrowser starts a headless Chromium for t with the given extra flags
// and returns its first tab.
func newBrowser(t *testing.T, extra map[string]any) *tab {
	t.Helper()
	path := smarttest.Chromium(t)
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.WindowSize(1280, 900)}
	for k, v := range smarttest.ChromiumFlags(t) {
		opts = append(opts, chromedp.Flag(k, v))
	}
	for k, v := range extra {
		opts = append(opts, chromedp.Flag(k, v))
	}
	out := &syncBuffer{}
	opts = append(opts, chromedp.CombinedOutput(out))
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		bcancel()
		acancel()
		cancel()
		if t.Failed() && out.String() != "" {
			t.Logf("chromium output:\n%s", lastLines(out.String(), 40))
		}
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium (%s): %v\n%s", path, err, lastLines(out.String(), 40))
	}
	return watch(bctx, t)
}

// newTab opens another tab in the same browser.
func (b *tab) newTab() *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("new tab: %v", err)
	}
	return watch(ctx, b.t)
}

// attach returns a tab for an existing target, such as a cross-site
// iframe's, which chromedp does not reach from the page that embeds it.
func (b *tab) attach(id target.ID) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithTargetID(id))
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("attach to target %s: %v", id, err)
	}
	return watch(ctx, b.t)
}

// watch records the console and the requests of the tab at ctx.
func watch(ctx context.Context, t *testing.T) *tab {
	t.Helper()
	b := &tab{t: t, ctx: ctx}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("Network.enable: %v", err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		if ev, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.requests = append(b.requests, ev)
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%v\npage: %s", err, b.describe())
	}
}

func (b *tab) navigate(u string) {
	b.t.Helper()
	b.do(chromedp.Navigate(u))
}

// eval runs js in the tab and decodes its value.
func eval[T any](b *tab, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor waits until js (an expression) gives a non-empty string, and
// returns it. The deadline is the test's; on failure it says what the
// page showed. A navigation while it polls (a redirect, a form POST, the
// hand-off page replacing itself) destroys the JavaScript context the
// poll runs in; Chromium then answers "Cannot find context with specified
// id", which says nothing about the page's state, so the poll starts again
// in the new document, within the same overall wait.
func (b *tab) waitFor(what, js string) string {
	b.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		v, err := chromedp.Run(b.ctx, chromedp.Poll[string](js,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(time.Until(deadline))))
		if err == nil {
			return v
		}
		if contextLost(err) && time.Now().Before(deadline) && b.ctx.Err() == nil {
			continue
		}
		b.t.Fatalf("waiting for %s: %v\npage: %s", what, err, b.describe())
	}
}

// contextLost reports whether err is Chromium saying that the JavaScript
// context an evaluation ran in went away with a navigation.
func contextLost(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Cannot find context with specified id") ||
		strings.Contains(msg, "Execution context was destroyed") ||
		strings.Contains(msg, "Inspected target navigated or closed")
}

// stateJS reports the page's state: "ok" once #status reads want and #app
// is no longer busy, the error or relaunch text if one of those shows,
// else "" (keep waiting).
func stateJS(want string) string {
	return fmt.Sprintf(`(() => {
  const $ = (id) => document.getElementById(id);
  if (!$('status') || !$('app')) return '';
  if ($('error-panel') && !$('error-panel').hidden) return 'error panel: ' + $('error-panel').textContent.trim();
  if ($('relaunch') && !$('relaunch').hidden) return 'relaunch: ' + $('relaunch').textContent.trim();
  if ($('status').textContent === %q && !$('app').hasAttribute('aria-busy')) return 'ok';
  return '';
})()`, want)
}

// waitStatus waits until #status reads want and #app is not busy.
func (b *tab) waitStatus(want string) {
	b.t.Helper()
	if got := b.waitFor("status "+want, stateJS(want)); got != "ok" {
		b.t.Fatalf("waiting for %q, the page shows %s", want, got)
	}
}

// change runs act (which makes #app recompute) and waits for the update.
// #status is emptied first, so that an earlier "Assessment updated." does
// not count.
func (b *tab) change(act ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	eval[chromedp.Void](b, `document.getElementById('status').textContent = ''`)
	b.do(act...)
	b.waitStatus("Assessment updated.")
}

// text returns the trimmed text of the first element matching css.
func (b *tab) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.textContent.trim() : '<no %s>'; })()`, sel, sel))
}

// attr returns an attribute of the first element matching css.
func (b *tab) attr(sel, name string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? (e.getAttribute(%q) ?? '<none>') : '<no %s>'; })()`, sel, name, sel))
}

// describe summarises the page for a failure message.
func (b *tab) describe() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	// innerText falls back to all the text, hidden panels included, when
	// the document is not rendered: say which panels show, and whether
	// anything is rendered at all, before the text.
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
  const $ = (id) => document.getElementById(id);
  const nav = performance.getEntriesByType('navigation')[0];
  const shown = ['app', 'relaunch', 'error-panel'].filter((id) => $(id) && !$(id).hidden);
  const rendered = !!document.body && document.body.getClientRects().length > 0;
  return location.href + ' | ' + document.readyState + ', ' + document.visibilityState +
    ', document started ' + Math.round(performance.timeOrigin) + (nav ? ' (' + nav.type + ')' : '') +
    ' | status: ' + (($('status') || {}).textContent || '') +
    ' | shown: ' + (shown.join(', ') || 'none') + ($('relaunch') && !$('relaunch').hidden ? ' (' + ($('relaunch-reason') || {}).textContent + ')' : '') +
    ' | ' + (rendered ? 'rendered' : 'NOT RENDERED (no layout box: the text below includes hidden parts)') +
    ' | ' + (document.body ? document.body.innerText.slice(0, 600).replace(/\s+/g, ' ') : '');
})()`))
	if err != nil {
		s = "(unreadable: " + err.Error() + ")"
	}
	return s + b.documentsText() + b.consoleText()
}

// documentsText lists the documents this tab requested, in order (paths
// only: queries hold codes and states), to show a navigation the test did
// not make.
func (b *tab) documentsText() string {
	var sb strings.Builder
	for _, r := range b.requestsSeen() {
		if r.Type != network.ResourceTypeDocument {
			continue
		}
		u := r.Request.URL
		if i := strings.IndexAny(u, "?#"); i >= 0 {
			u = u[:i]
		}
		fmt.Fprintf(&sb, "\n  document %s %s", r.Request.Method, u)
	}
	return sb.String()
}

func (b *tab) consoleText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	for _, m := range b.console {
		fmt.Fprintf(&sb, "\n  console %s (%s)", m, m.URL)
	}
	return sb.String()
}

// noConsoleErrors fails the test on an uncaught exception or a console
// error, such as a Content-Security-Policy violation, except those whose
// text or URL contains one of allow.
func (b *tab) noConsoleErrors(allow ...string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
next:
	for _, m := range b.console {
		if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
			continue
		}
		for _, a := range allow {
			if strings.Contains(m.Text, a) || strings.Contains(m.URL, a) {
				continue next
			}
		}
		b.t.Errorf("console %s (source %q, %s)", m, m.Source, m.URL)
	}
}

// requestsSeen returns the requests recorded so far.
func (b *tab) requestsSeen() []*network.EventRequestWillBeSent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.requests)
}

// launchRequests returns the requests since the latest launchInto.
func (b *tab) launchRequests() []*network.EventRequestWillBeSent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.requests[b.since:])
}

// screenshot saves the whole page as a PNG artifact and logs its path and
// what it should show.
func (b *tab) screenshot(name, shows string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	return b.saveArtifact(name, png, shows)
}

// saveArtifact keeps a PNG as a test artifact (in $SMARTCALC_ARTIFACTS,
// else the test's temporary directory) and logs its path and what it
// should show.
func (b *tab) saveArtifact(name string, png []byte, shows string) string {
	b.t.Helper()
	dir := os.Getenv("SMARTCALC_ARTIFACTS")
	if dir == "" {
		dir = b.t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatalf("screenshot dir: %v", err)
	}
	file := regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(b.t.Name()+"-"+name, "_") + ".png"
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	b.t.Logf("screenshot %s: %s", path, shows)
	return path
}

// setHemoglobin types v into the PRECISE-HBR hemoglobin field as a
// clinician does (select the old value, type, Tab away) and waits for the
// server's new assessment.
func (b *tab) setHemoglobin(v string) {
	b.t.Helper()
	b.change(typeInto("phbr-in-hemoglobin", v)...)
}

// typeInto types v into the input with that id as a clinician does: focus
// it, select the old value, type, Tab away. Like a clinician, it waits
// until the field is rendered (chromedp's Click and SendKeys wait for that
// themselves, Focus does not): a document can have run all its scripts
// and still not be rendered, as in a cross-site iframe that the EHR's page
// has not laid out yet, and then its fields cannot take focus ("Element is
// not focusable").
func typeInto(id, v string) []chromedp.Action[chromedp.Void] {
	sel := "#" + id
	return []chromedp.Action[chromedp.Void]{
		chromedp.Focus(chromedp.CSS(sel), chromedp.NodeVisible),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('` + id + `').select()`),
		chromedp.SendKeys(chromedp.CSS(sel), v+"\t"),
	}
}

// launchInto runs the EHR launch for patient in the tab and waits until
// the assessment shows.
func (b *tab) launchInto(e *env, patient string) {
	b.t.Helper()
	b.mu.Lock()
	b.since = len(b.requests)
	b.mu.Unlock()
	b.navigate(e.URL + "/ehr/launch?patient=" + patient)
	b.waitStatus("Assessment loaded.")
}

// handle returns the session handle the tab holds in sessionStorage.
func (b *tab) handle() string {
	b.t.Helper()
	return eval[string](b, `sessionStorage.getItem('`+sessionKey+`') || ''`)
}

// checkScore checks PRECISE-HBR's score and category on the page.
func (b *tab) checkScore(score, category, label string) {
	b.t.Helper()
	if got := b.text("#phbr-score"); got != score {
		b.t.Errorf("#phbr-score %q, want %q", got, score)
	}
	if got := b.attr("#phbr-score", "data-category"); got != category {
		b.t.Errorf("#phbr-score data-category %q, want %q", got, category)
	}
	if label != "" {
		if got := b.text("#phbr-category"); got != label {
			b.t.Errorf("#phbr-category %q, want %q", got, label)
		}
	}
}

// noSecretsInPage checks that the page's DOM, address, history, cookies
// and storage hold none of the secrets (the handle excepted from
// sessionStorage, where app.js keeps it by design), and that no request
// carried the handle anywhere but in its Authorization header.
func (b *tab) noSecretsInPage(e *env, handle string) {
	b.t.Helper()
	if handle == "" {
		b.t.Fatal("the tab holds no session handle")
	}
	places := map[string]string{
		"DOM":          eval[string](b, `document.documentElement.outerHTML`),
		"address":      eval[string](b, `location.href`),
		"title":        eval[string](b, `document.title`),
		"cookies":      eval[string](b, `document.cookie`),
		"localStorage": eval[string](b, `JSON.stringify(Object.entries(localStorage))`),
	}
	hist, err := chromedp.Run(b.ctx, chromedp.NavigationEntries())
	if err != nil {
		b.t.Fatal(err)
	}
	for _, h := range hist.Entries {
		places["history entry"] += h.URL + " " + h.Title + "\n"
	}
	e.store.mu.Lock()
	secrets := append([]string{handle}, e.store.secrets...)
	e.store.mu.Unlock()
	for where, s := range places {
		if strings.Contains(where, "address") || where == "history entry" {
			if strings.Contains(s, "session=") || strings.Contains(s, "handoff=") {
				b.t.Errorf("%s still has session= or handoff=: %q", where, s)
			}
		}
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				b.t.Errorf("the %s holds a secret (%.8s…)", where, secret)
			}
		}
	}
	stored := eval[string](b, `JSON.stringify(Object.entries(sessionStorage))`)
	for _, secret := range secrets[1:] {
		if strings.Contains(stored, secret) {
			b.t.Errorf("sessionStorage holds a token, state or verifier (%.8s…)", secret)
		}
	}
	var api int
	for _, r := range b.launchRequests() {
		u := r.Request.URL
		if strings.Contains(u, handle) {
			b.t.Errorf("request URL carries the handle: %s", u)
		}
		for k, v := range r.Request.Headers {
			s := fmt.Sprint(v)
			if strings.EqualFold(k, "Referer") && s != "" {
				b.t.Errorf("request %s sent Referer %q; want none (Referrer-Policy no-referrer)", u, s)
			}
			if strings.Contains(s, handle) && !strings.EqualFold(k, "Authorization") {
				b.t.Errorf("request %s carries the handle in %s", u, k)
			}
		}
		if strings.Contains(u, "/calculate/api/assessment") || strings.Contains(u, "/calculate/api/context") {
			api++
			if got := fmt.Sprint(r.Request.Headers["Authorization"]); got != "Bearer "+handle {
				b.t.Errorf("%s %s: Authorization %q, want the tab's handle", r.Request.Method, u, got)
			}
		}
	}
	if api == 0 {
		b.t.Error("saw no API request from the page")
	}
}

// TestBrowserSamplePatients launches into sample patients from the sandbox
// EHR and checks what the clinician sees: the patient's name, the
// PRECISE-HBR score and band, the ARC-HBR verdict and where hemoglobin
// came from, the same values the API test (TestSamplePatients) asserts;
// that the handle left the address bar and history; and that no secret
// reached the DOM, storage or a request.
func TestBrowserSamplePatients(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	b := newBrowser(t, nil)
	names := patientNames(e)
	tests := []struct {
		patient, score, category, label, arc, verdict string
		shows                                         string
	}{
		{"low-risk", "10", "not-hbr", "Not HBR", "not-hbr", "not-hbr",
			"low-risk (David Kim, male, 52): PRECISE-HBR 10, Not HBR, 1.2% bleeding risk; ARC-HBR not HBR, assuming no non-deferrable surgery; warnings that Hb 15.1 and eGFR 103 were truncated"},
		{"hbr-anticoag", "34", "very-hbr", "Very HBR", "hbr", "hbr",
			"hbr-anticoag (Robert Kowalski, male, 78, apixaban): PRECISE-HBR 34, Very HBR, 11.7%; ARC-HBR high bleeding risk, 1 major and 3 minor criteria met"},
		{"ich-history", "20", "not-hbr", "Not HBR", "hbr", "hbr",
			"ich-history: PRECISE-HBR 20, Not HBR, yet ARC-HBR high bleeding risk (ICH, brain AVM); the verdict says PRECISE-HBR does not weigh them"},
		{"cirrhosis", "23", "hbr", "HBR", "hbr", "hbr",
			"cirrhosis (Maria Santos, female, 66): PRECISE-HBR 23, HBR, 4.2%; ARC-HBR high bleeding risk (liver cirrhosis)"},
	}
	for _, tt := range tests {
		t.Run(tt.patient, func(t *testing.T) {
			parent := b.t
			b.t = t // failures belong to the subtest
			defer func() { b.t = parent }()
			b.launchInto(e, tt.patient)
			if got := b.text("#patient-name"); got != names[tt.patient] || got == "" {
				t.Errorf("#patient-name %q, want %q", got, names[tt.patient])
			}
			b.checkScore(tt.score, tt.category, tt.label)
			if got := b.attr("#arc-result", "data-hbr"); got != tt.arc {
				t.Errorf("#arc-result data-hbr %q, want %q", got, tt.arc)
			}
			// The answer is at the top: in the first screen at 1280×800.
			if bottom := eval[float64](b, `document.querySelector('[data-testid="verdict-why"]').getBoundingClientRect().bottom`); bottom <= 0 || bottom > 800 {
				t.Errorf("the verdict ends at %v px, want within the first 800", bottom)
			}
			if got, want := b.attr("#verdict", "data-hbr"), tt.verdict; got != want {
				t.Errorf("#verdict data-hbr %q, want %q", got, want)
			}
			if why := b.text(`[data-testid="verdict-why"]`); tt.patient == "ich-history" && (!strings.Contains(why, "does not weigh") || !strings.Contains(why, "ICH")) {
				t.Errorf("ich-history verdict %q: want why ARC-HBR and PRECISE-HBR disagree", why)
			}
			// The plan the API gives is the plan the page shows, each
			// citation marked verified or not.
			a := e.assessment(t, b.handle())
			if n := eval[int](b, `document.querySelectorAll('[data-testid="plan-item"]').length`); n != len(a.Summary.Plan) || n == 0 {
				t.Errorf("the page shows %d plan items, the API gives %d", n, len(a.Summary.Plan))
			}
			cites := 0
			for _, it := range a.Summary.Plan {
				cites += len(it.Citations)
			}
			if n := eval[int](b, `document.querySelectorAll('[data-testid="plan-citation"][data-verified="true"], [data-testid="plan-citation"][data-verified="false"]').length`); n != cites {
				t.Errorf("the page marks %d citations, the API gives %d", n, cites)
			}
			if tt.patient == "hbr-anticoag" {
				// Each drug with its date, and the record it was read from
				// (the FHIR reference on hover, not in the text).
				for _, drug := range []string{"regimen-aspirin", "regimen-p2y12", "regimen-oac"} {
					sel := `[data-testid="` + drug + `"]`
					if got, ref := b.text(sel), b.attr(sel, "title"); !regexp.MustCompile(`\(\d{1,2} [A-Z][a-z]{2} \d{4}\)`).MatchString(got) || strings.Contains(got, "MedicationRequest/") || !strings.HasPrefix(ref, "MedicationRequest/") {
						t.Errorf("%s %q (title %q): want the drug with its date, its source as the title", drug, got, ref)
					}
				}
			}
			// No record shows planned surgery: the page states the
			// assumption the ARC-HBR verdict rests on.
			if got := b.text(`[data-testid="arc-assumption"][data-input="nondeferrable_major_surgery"]`); !strings.Contains(got, "non-deferrable major surgery") {
				t.Errorf("ARC-HBR assumption %q, want the non-deferrable surgery statement", got)
			}
			if got := b.attr(`#phbr-table tr[data-input="hemoglobin"]`, "data-origin"); got != "record" {
				t.Errorf("hemoglobin row origin %q, want record", got)
			}
			handle := b.handle()
			if _, err := e.store.GetSession(context.Background(), smart.SessionID(handle)); err != nil {
				t.Fatalf("the tab's handle names no session: %v", err)
			}
			if got := eval[string](b, `location.href`); got != e.URL+"/calculate/" {
				t.Errorf("address %q, want %s/calculate/ (handle removed)", got, e.URL)
			}
			b.noSecretsInPage(e, handle)
			b.noConsoleErrors()
			b.screenshot("assessment", tt.shows)
		})
	}
	t.Run("referrer", func(t *testing.T) {
		// The callback's URL holds the code and state: every hop answers
		// Referrer-Policy: no-referrer, and no request sent a Referer.
		var seen int
		for _, r := range b.requestsSeen() {
			if r.RedirectResponse == nil {
				continue
			}
			path := strings.TrimPrefix(r.RedirectResponse.URL, e.URL)
			if !strings.HasPrefix(path, "/launch") && !strings.HasPrefix(path, "/callback") {
				continue
			}
			seen++
			if got := header(r.RedirectResponse.Headers, "Referrer-Policy"); got != "no-referrer" {
				t.Errorf("%s: Referrer-Policy %q, want no-referrer", path, got)
			}
		}
		if seen == 0 {
			t.Error("saw no redirect from /launch or /callback")
		}
	})
}

// TestBrowserEditHemoglobin edits low-risk's hemoglobin (15.1 g/dL, 0
// points) down to 9 g/dL: PRECISE-HBR adds (15 − 9) × 2.5 = 15 points, so
// 10 becomes 25 (HBR). The value is marked entered; switching the unit to
// mmol/L shows the same value converted (9 / 1.611) and keeps the score;
// a value typed in mmol/L is converted by the server; and "Return to
// record values" restores 10.
func TestBrowserEditHemoglobin(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	b := newBrowser(t, nil)
	b.launchInto(e, "low-risk")
	b.checkScore("10", "not-hbr", "Not HBR")
	if got := eval[string](b, `document.getElementById('phbr-in-hemoglobin').value`); got != "15.1" {
		t.Errorf("hemoglobin field %q, want the record's 15.1", got)
	}
	before := len(b.requestsSeen())

	b.setHemoglobin("9")
	b.checkScore("25", "hbr", "HBR")
	if got := b.attr(`#phbr-table tr[data-input="hemoglobin"]`, "data-origin"); got != "entered" {
		t.Errorf("hemoglobin row origin %q, want entered", got)
	}
	var posted bool
	for _, r := range b.requestsSeen()[before:] {
		if r.Request.Method == "POST" && strings.HasSuffix(r.Request.URL, "/calculate/api/assessment") {
			posted = true
		}
	}
	if !posted {
		t.Error("the edit sent no POST api/assessment")
	}
	// The summary says the verdict includes the entered value.
	if got := b.text(`[data-testid="verdict-entered"]`); !strings.Contains(got, "Hemoglobin") {
		t.Errorf("verdict entered-values line %q, want it to name Hemoglobin", got)
	}
	if got := b.attr("#verdict", "data-hbr"); got != "hbr" {
		t.Errorf("#verdict data-hbr %q after Hb 9, want hbr", got)
	}
	b.screenshot("hb-9", "low-risk with hemoglobin entered as 9 g/dL: PRECISE-HBR 25, HBR, the hemoglobin row marked Entered")

	// The unit is a display choice: the score stays, the field converts.
	b.do(chromedp.Click(chromedp.CSS(`label[for="unit-hemoglobin-mmolL"]`)))
	b.waitFor("hemoglobin in mmol/L", `document.getElementById('phbr-in-hemoglobin')?.dataset.unit === 'mmol/L' ? 'ok' : ''`)
	// To the precision of the unit (mmol/L: one decimal), never the float
	// the conversion gives.
	if got := eval[string](b, `document.getElementById('phbr-in-hemoglobin').value`); got != "5.6" {
		t.Errorf("9 g/dL shown as %q mmol/L, want 5.6 (9 / 1.611, one decimal)", got)
	}
	b.checkScore("25", "hbr", "")
	// 6.2 mmol/L = 9.9882 g/dL: (15 − 9.9882) × 2.5 = 12.53, 9.98 + 12.53 → 23.
	b.setHemoglobin("6.2")
	b.checkScore("23", "hbr", "HBR")

	b.change(chromedp.Click(chromedp.CSS("#reset-btn")))
	b.checkScore("10", "not-hbr", "Not HBR")
	if got := b.attr(`#phbr-table tr[data-input="hemoglobin"]`, "data-origin"); got != "record" {
		t.Errorf("after reset, hemoglobin row origin %q, want record", got)
	}
	b.noConsoleErrors()
}

// TestBrowserEmbeddedLaunch runs the launch inside the sandbox EHR's page,
// in an iframe from another site: the EHR page is at http://localhost:PORT
// and the app at http://127.0.0.1:PORT. Chromium runs the iframe in its
// own process, so the test attaches to the iframe's target to read it.
//
// Third-party cookies are blocked: Chromium 156 already blocks unpartitioned
// ones in a fresh profile, and the test makes sure of it with the flag
// --test-third-party-cookie-phaseout and CDP Network.setCookieControls
// (enableThirdPartyCookieRestriction). A SameSite=None probe cookie that a
// first-party page can set is refused inside the iframe, which shows the
// blocking is in force. (Partitioned cookies, CHIPS, stay allowed, as in
// Chrome; the app's session never depends on a cookie: the handle travels
// in the Authorization header.)
func TestBrowserEmbeddedLaunch(t *testing.T) {
	ehrOrigin := ""
	e := start(t, memoryStore, nil, &Tune{Env: func(en *entrypoints.Env) {
		// The EHR's page is served from another origin than its FHIR base,
		// as in real EHRs: the deployer lists it in
		// SMARTCALC_FRAME_ANCESTORS.
		ehrOrigin = "http://localhost:" + en.Config.BaseURL.Port()
		en.Config.FrameAncestors = append(en.Config.FrameAncestors, ehrOrigin)
	}}, nil)
	b := newBrowser(t, map[string]any{"test-third-party-cookie-phaseout": true})
	if _, err := chromedp.Call(b.ctx, network.SetCookieControls, network.SetCookieControlsParams{EnableThirdPartyCookieRestriction: true}); err != nil {
		t.Fatalf("Network.setCookieControls: %v", err)
	}

	// A first-party page can set a SameSite=None cookie: the probe works.
	b.navigate(e.URL + "/calculate/evaluate.html")
	if !eval[bool](b, cookieProbeJS) {
		t.Fatal("a first-party page could not set the probe cookie: the third-party check below would prove nothing")
	}
	eval[chromedp.Void](b, `document.cookie = 'smartcalc_probe=; Max-Age=0; SameSite=None; Secure; Path=/'`)

	// A tall window, so that the screenshot shows more of the iframe (80vh).
	b.do(chromedp.EmulateViewport(1280, 1400))
	b.navigate(ehrOrigin + "/ehr/embed?patient=hbr-anticoag")
	names := patientNames(e)
	if got := b.text(".banner strong"); got != names["hbr-anticoag"] {
		t.Errorf("EHR banner %q, want %q", got, names["hbr-anticoag"])
	}
	id := waitTarget(t, b, func(i *target.Info) bool {
		return i.Type == "iframe" && strings.HasPrefix(i.URL, e.URL+"/calculate/")
	})
	f := b.attach(id)
	f.waitStatus("Assessment loaded.")
	f.checkScore("34", "very-hbr", "Very HBR")
	if got := f.attr("#patient-banner", "hidden"); got == "<none>" {
		t.Error("the app shows its own patient banner inside the EHR (need_patient_banner=false)")
	}
	if got := eval[string](f, `location.href`); got != e.URL+"/calculate/" {
		t.Errorf("iframe address %q, want %s/calculate/", got, e.URL)
	}
	if eval[bool](f, cookieProbeJS) {
		t.Error("the iframe could set a third-party cookie: cookies are not blocked, so this test proves nothing")
	}
	if eval[bool](f, `window.top === window`) {
		t.Error("the app is not framed")
	}
	storage := eval[string](f, `(() => { try { return sessionStorage.getItem('`+sessionKey+`') ? 'partitioned sessionStorage' : 'memory (storage empty)'; } catch (e) { return 'memory (storage blocked: ' + e.name + ')'; } })()`)
	t.Logf("in the iframe the handle is kept in %s", storage)

	// A what-if works inside the iframe: Hb 11.8 → 9 adds (11.8 − 9) × 2.5 =
	// 7 points: 33.855 + 7 = 40.855 → 41.
	f.setHemoglobin("9")
	f.checkScore("41", "very-hbr", "Very HBR")
	f.noConsoleErrors()
	eval[chromedp.Void](f, `document.activeElement.blur(); window.scrollTo(0, 0)`)
	// The sandbox EHR's own page has no icon, so Chromium's automatic
	// favicon request gets a 404: not the app's doing.
	b.noConsoleErrors("/favicon.ico")
	b.screenshot("embedded", "the sandbox EHR page (its header and patient banner for hbr-anticoag) with SMART Calc in an iframe from 127.0.0.1, hemoglobin entered as 9: PRECISE-HBR 41, Very HBR")

	// The callback is bound to this frame: by the partitioned (CHIPS)
	// cookie, or else by the nonce the launch page kept in sessionStorage.
	switch logs := e.logs.String(); {
	case strings.Contains(logs, `"binding_from":"cookie"`):
		t.Log("the callback got its partitioned (CHIPS) browser-binding cookie")
	case strings.Contains(logs, `"binding_from":"session_storage"`):
		t.Log("the callback got no cookie and was bound through sessionStorage")
	default:
		t.Errorf("the session was not bound to the browser:\n%s", lastLines(logs, 20))
	}
}

// TestBrowserEmbeddedShownLater: the EHR page keeps SMART Calc's iframe
// hidden (display: none, as an EHR does with an app in a background tab)
// until after the app has loaded in it. A cross-site frame that its
// embedder has not laid out is not rendered: scripts run, nothing has a
// layout box, nothing can take focus. This is also what a busy EHR page
// does for a moment, and what made TestBrowserEmbeddedLaunch fail under
// load ("Element is not focusable"). Once shown, the app is whole: the
// scores are right and a what-if works.
func TestBrowserEmbeddedShownLater(t *testing.T) {
	ehrOrigin := ""
	e := start(t, memoryStore, nil, &Tune{Env: func(en *entrypoints.Env) {
		ehrOrigin = "http://localhost:" + en.Config.BaseURL.Port()
		en.Config.FrameAncestors = append(en.Config.FrameAncestors, ehrOrigin)
	}}, nil)
	b := newBrowser(t, nil)
	hide := `new MutationObserver((ms, o) => { for (const m of ms) for (const n of m.addedNodes) if (n.tagName === 'IFRAME') { n.style.display = 'none'; o.disconnect(); } }).observe(document, {childList: true, subtree: true});`
	if _, err := chromedp.Call(b.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: hide}); err != nil {
		t.Fatalf("Page.addScriptToEvaluateOnNewDocument: %v", err)
	}
	b.navigate(ehrOrigin + "/ehr/embed?patient=hbr-anticoag")
	id := waitTarget(t, b, func(i *target.Info) bool {
		return i.Type == "iframe" && strings.HasPrefix(i.URL, e.URL+"/calculate/")
	})
	f := b.attach(id)
	f.waitStatus("Assessment loaded.")
	if eval[bool](f, `document.body.getClientRects().length > 0`) {
		t.Fatal("the hidden iframe's document is rendered: this test proves nothing")
	}
	// While hidden, the field exists but cannot take focus, and typeInto
	// waits for it to be rendered instead of failing.
	if _, err := chromedp.Run(f.ctx, chromedp.Focus(chromedp.CSS("#phbr-in-hemoglobin"))); err == nil || !strings.Contains(err.Error(), "not focusable") {
		t.Errorf("focusing a field of the unrendered frame: %v, want Chromium's 'Element is not focusable'", err)
	}
	ctx, cancel := context.WithTimeout(f.ctx, 500*time.Millisecond)
	err := chromedp.Do(ctx, typeInto("phbr-in-hemoglobin", "9")...)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("typeInto on the unrendered frame: %v, want it still waiting for the field to be rendered", err)
	}
	eval[chromedp.Void](b, `document.querySelector('iframe').style.display = ''`)
	f.setHemoglobin("9")
	f.checkScore("41", "very-hbr", "Very HBR")
	f.noConsoleErrors()
}

// cookieProbeJS sets a SameSite=None cookie and reports whether it stuck.
const cookieProbeJS = `(() => {
  document.cookie = 'smartcalc_probe=1; SameSite=None; Secure; Path=/';
  return document.cookie.includes('smartcalc_probe=1');
})()`

// waitTarget waits until the browser has a target matching match.
func waitTarget(t *testing.T, b *tab, match func(*target.Info) bool) target.ID {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	var last []string
	for {
		infos, err := chromedp.Targets(b.ctx)
		if err != nil {
			t.Fatalf("targets: %v", err)
		}
		last = last[:0]
		for _, i := range infos {
			if match(i) {
				return i.TargetID
			}
			last = append(last, string(i.Type)+" "+i.URL)
		}
		select {
		case <-deadline.C:
			t.Fatalf("no matching target; targets: %q\npage: %s", last, b.describe())
		case <-b.ctx.Done():
			t.Fatalf("no matching target: %v; targets: %q", b.ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// TestBrowserZhTW switches the page to Traditional Chinese: the fixed text,
// the band label and the input names are translated, the score stays, the
// CJK text is drawn with a CJK font (Noto Sans CJK, not boxes), and the
// choice and the session survive a reload.
func TestBrowserZhTW(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	b := newBrowser(t, nil)
	b.launchInto(e, "hbr-anticoag")
	b.do(
		chromedp.SetValue(chromedp.CSS("#lang-select"), "zh-TW"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('lang-select').dispatchEvent(new Event('change', {bubbles: true}))`),
	)
	b.waitFor("zh-TW", `document.documentElement.lang === 'zh-TW' ? 'ok' : ''`)
	b.waitStatus("評估已載入。")
	checks := map[string]string{
		".app-title":         "SMART Calc：PCI 後出血風險評估",
		"#phbr-category":     "極高出血風險",
		"#arc-result":        "高出血風險",
		"#precise-hbr-title": "PRECISE-HBR",
	}
	for sel, want := range checks {
		if got := b.text(sel); got != want {
			t.Errorf("%s %q, want %q", sel, got, want)
		}
	}
	b.checkScore("34", "very-hbr", "")
	if got := b.text(`#phbr-table tr[data-input="hemoglobin"] th`); !regexp.MustCompile(`\p{Han}`).MatchString(got) {
		t.Errorf("hemoglobin row label %q is not translated", got)
	}
	fonts := platformFonts(t, b, ".app-title")
	if !strings.Contains(fonts, "CJK") {
		t.Errorf("the zh-TW title is drawn with %s, want a CJK font (install fonts-noto-cjk)", fonts)
	}
	t.Logf("zh-TW title drawn with %s", fonts)
	b.noConsoleErrors()
	b.screenshot("zh-TW", "hbr-anticoag in Traditional Chinese: title, labels and band (極高出血風險) translated, PRECISE-HBR 34")

	b.do(chromedp.Reload())
	b.waitStatus("評估已載入。")
	b.checkScore("34", "very-hbr", "極高出血風險")
}

// platformFonts lists the fonts Chromium used to draw the text of the
// first element matching css, with glyph counts.
func platformFonts(t *testing.T, b *tab, sel string) string {
	t.Helper()
	var out string
	err := chromedp.Do(b.ctx, chromedp.QueryAfter(chromedp.CSS(sel), func(ctx context.Context, tg *chromedp.Target, nodes []*chromedp.Node) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, tg, css.Enable, cdp.Empty{}); err != nil {
			return chromedp.Void{}, err
		}
		res, err := cdp.Call(ctx, tg, css.GetPlatformFontsForNode, css.GetPlatformFontsForNodeParams{NodeID: nodes[0].NodeID})
		if err != nil {
			return chromedp.Void{}, err
		}
		var parts []string
		for _, f := range res.Fonts {
			parts = append(parts, fmt.Sprintf("%s (%d glyphs)", f.FamilyName, int(f.GlyphCount)))
		}
		out = strings.Join(parts, ", ")
		return chromedp.Void{}, nil
	}))
	if err != nil {
		t.Fatalf("platform fonts of %s: %v", sel, err)
	}
	return out
}

// TestBrowserRelaunch checks the message that asks the clinician to
// relaunch from the EHR: for a page opened without a session, for a
// damaged session link, and for a session that expired while the page was
// open (the next what-if gets 401).
func TestBrowserRelaunch(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	e := start(t, memoryStore, nil, nil, now)
	b := newBrowser(t, nil)
	relaunch := func(reason string) {
		t.Helper()
		b.waitFor("the relaunch message", `(() => { const r = document.getElementById('relaunch'); return r && !r.hidden ? 'ok' : ''; })()`)
		if got := b.text("#relaunch-reason"); got != reason {
			t.Errorf("#relaunch-reason %q, want %q", got, reason)
		}
		if got := b.text("#relaunch-title"); got != "Your SMART Calc session has ended or is missing" {
			t.Errorf("#relaunch-title %q", got)
		}
		if got := b.attr("#app", "hidden"); got == "<none>" {
			t.Error("the assessment still shows")
		}
	}

	b.navigate(e.URL + "/calculate/")
	relaunch("This page was opened without a SMART Calc session.")
	b.noConsoleErrors()
	b.screenshot("missing", "the page opened without a session: 'Your SMART Calc session has ended or is missing', relaunch advice and a link to the standalone calculator")

	b.navigate(e.URL + "/calculate/#handoff=not*a*handle")
	relaunch("The session link was damaged.")
	if got := eval[string](b, `location.href`); strings.Contains(got, "handoff") {
		t.Errorf("the damaged link stays in the address bar: %q", got)
	}

	// Fixation through a link: an attacker's own valid handle, or a hand-off
	// code issued to the attacker's browser, opens no session here.
	attacker := e.launch(t, "cirrhosis")
	b.navigate("about:blank") // a fresh page load, not a fragment change
	b.navigate(e.URL + "/calculate/#session=" + attacker)
	relaunch("This page was opened without a SMART Calc session.")
	seen, _, _ := e.redirects(t, e.URL+"/ehr/launch?patient=cirrhosis")
	_, code, _ := strings.Cut(seen[len(seen)-1], "#handoff=")
	b.navigate("about:blank")
	b.navigate(e.URL + "/calculate/#handoff=" + code)
	relaunch("This sign-in link was already used, has expired or was opened in another browser. Links to SMART Calc cannot be reused or shared.")
	if b.handle() != "" {
		t.Error("the tab holds a session from the attacker's link")
	}

	b.launchInto(e, "low-risk")
	offset.Store(int64(9 * time.Hour)) // past the 8 h session TTL
	b.do(typeInto("phbr-in-hemoglobin", "9")...)
	relaunch("The session reached its time limit of 8 hours.")
	if h := b.handle(); h != "" {
		t.Error("the expired handle is still in sessionStorage")
	}
	b.noConsoleErrors("401")
	b.screenshot("expired", "a session that reached its 8-hour lifetime while the page was open: the relaunch message with 'The session reached its time limit of 8 hours.'")
	if !strings.Contains(e.logs.String(), `"status":401`) {
		t.Error("no log line for the refused session")
	}

	// Sign out: the server ends the session, the tab forgets the handle.
	offset.Store(0)
	b.launchInto(e, "low-risk")
	h := b.handle()
	// A duplicated tab holds a copy of the handle (Chromium copies
	// sessionStorage with the tab): this one is given it the same way.
	dup := b.newTab()
	dup.navigate(e.URL + "/calculate/evaluate.html")
	eval[chromedp.Void](dup, fmt.Sprintf(`sessionStorage.setItem(%q, %q)`, sessionKey, h))
	dup.navigate(e.URL + "/calculate/")
	dup.waitStatus("Assessment loaded.")
	b.do(chromedp.Click(chromedp.CSS("#signout-btn")))
	relaunch("You signed out; this tab no longer holds a session.")
	if b.handle() != "" {
		t.Error("the handle is still in sessionStorage after sign-out")
	}
	if _, err := e.store.GetSession(context.Background(), smart.SessionID(h)); !errors.Is(err, store.ErrSignedOut) {
		t.Errorf("the store gives %v after sign-out, want ErrSignedOut", err)
	}
	// The duplicate's next what-if says why its session ended.
	dup.do(typeInto("phbr-in-hemoglobin", "9")...)
	dup.waitFor("the duplicate's relaunch message", `(() => { const r = document.getElementById('relaunch'); return r && !r.hidden ? 'ok' : ''; })()`)
	if got, want := dup.text("#relaunch-reason"), "This session was signed out in another tab or window that shared it (a duplicated tab shares its session)."; got != want {
		t.Errorf("duplicate tab's #relaunch-reason %q, want %q", got, want)
	}
	if dup.handle() != "" {
		t.Error("the duplicate tab still holds the signed-out handle")
	}
	dup.noConsoleErrors("401")

	// Idle: the page was left open, unused, for longer than the idle
	// timeout; the next action says so, in either language.
	b.launchInto(e, "low-risk")
	offset.Store(int64(31 * time.Minute))
	b.do(typeInto("phbr-in-hemoglobin", "9")...)
	relaunch("The session ended after 30 minutes without use.")
	if b.handle() != "" {
		t.Error("the idle handle is still in sessionStorage")
	}
	b.screenshot("idle", "a session left unused for 31 minutes: the relaunch message with 'The session ended after 30 minutes without use.'")
	b.do(
		chromedp.SetValue(chromedp.CSS("#lang-select"), "zh-TW"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('lang-select').dispatchEvent(new Event('change', {bubbles: true}))`),
	)
	b.waitFor("zh-TW", `document.documentElement.lang === 'zh-TW' ? 'ok' : ''`)
	if got := b.text("#relaunch-reason"); got != "工作階段因 30 分鐘未使用而結束。" {
		t.Errorf("zh-TW #relaunch-reason %q", got)
	}
	if !strings.Contains(e.logs.String(), `"cause":"session_idle"`) {
		t.Error("no log line for the idle session")
	}
}

// TestBrowserTwoTabs launches two patients in two tabs of one browser: each
// tab keeps its own session (sessionStorage is per tab), so reloading
// either shows its own patient, and a what-if in one leaves the other
// alone.
func TestBrowserTwoTabs(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	a := newBrowser(t, nil)
	b := a.newTab()
	a.launchInto(e, "low-risk")
	b.launchInto(e, "hbr-anticoag")
	ha, hb := a.handle(), b.handle()
	if ha == "" || hb == "" || ha == hb {
		t.Fatalf("tab handles %q and %q, want two different ones", ha, hb)
	}
	a.setHemoglobin("9")
	for _, x := range []*tab{a, b} {
		x.do(chromedp.Reload())
		x.waitStatus("Assessment loaded.")
	}
	a.checkScore("10", "not-hbr", "Not HBR") // a reload reads the record again
	b.checkScore("34", "very-hbr", "Very HBR")
	names := patientNames(e)
	if got := a.text("#patient-name"); got != names["low-risk"] {
		t.Errorf("tab 1 shows %q, want %q", got, names["low-risk"])
	}
	if got := b.text("#patient-name"); got != names["hbr-anticoag"] {
		t.Errorf("tab 2 shows %q, want %q", got, names["hbr-anticoag"])
	}
	if a.handle() != ha || b.handle() != hb {
		t.Error("a reload changed a tab's handle")
	}
	a.noConsoleErrors()
	b.noConsoleErrors()
}

// TestBrowserSecurityHeaders checks the headers of the page as Chromium
// received them: a Content-Security-Policy with no inline or eval script,
// frame-ancestors naming the EHR, Referrer-Policy no-referrer and no
// X-Frame-Options; and that the page runs under that policy without a
// single violation.
func TestBrowserSecurityHeaders(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	b := newBrowser(t, nil)
	for _, page := range []string{"/calculate/", "/calculate/evaluate.html"} {
		resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(e.URL+page))
		if err != nil {
			t.Fatal(err)
		}
		csp := header(resp.Headers, "Content-Security-Policy")
		dirs := map[string][]string{}
		for _, d := range strings.Split(csp, ";") {
			f := strings.Fields(d)
			if len(f) > 0 {
				dirs[f[0]] = f[1:]
			}
		}
		script := dirs["script-src"]
		if script == nil {
			script = dirs["default-src"]
		}
		if len(script) == 0 || slices.Contains(script, "'unsafe-inline'") || slices.Contains(script, "'unsafe-eval'") || slices.Contains(script, "*") {
			t.Errorf("%s: script-src %q", page, script)
		}
		fa := dirs["frame-ancestors"]
		if !slices.Contains(fa, e.URL) || slices.Contains(fa, "*") {
			t.Errorf("%s: frame-ancestors %q, want the sandbox EHR's origin %s and no wildcard", page, fa, e.URL)
		}
		if got := header(resp.Headers, "Referrer-Policy"); got != "no-referrer" {
			t.Errorf("%s: Referrer-Policy %q", page, got)
		}
		if got := header(resp.Headers, "X-Frame-Options"); got != "" {
			t.Errorf("%s: X-Frame-Options %q; it would stop the EHR from embedding the app", page, got)
		}
	}
	b.launchInto(e, "cirrhosis")
	b.noConsoleErrors()
}

// TestBrowserStandaloneCalculator fills in the standalone calculator with
// low-risk's values (male, 52, Hb 15.1, eGFR 103, WBC 6.1, no bleeding,
// no OAC, no other criterion) and gets the score the EHR page shows for
// that patient, 10.
func TestBrowserStandaloneCalculator(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	b := newBrowser(t, nil)
	b.navigate(e.URL + "/calculate/evaluate.html")
	b.waitFor("the form", `document.getElementById('ev-in-hemoglobin') ? 'ok' : ''`)
	if got := eval[string](b, `document.getElementById('calculator-select').value`); got != "precise-hbr" {
		t.Fatalf("calculator %q, want precise-hbr first", got)
	}
	// Yes/no inputs are one click each, never drop-downs; nothing to submit.
	if n := eval[int](b, `document.querySelectorAll('#inputs select[data-input]').length`); n != 0 {
		t.Errorf("%d drop-downs for inputs, want yes/no toggles", n)
	}
	if n := eval[int](b, `document.querySelectorAll('#evaluate-form button[type=submit]').length`); n != 0 {
		t.Errorf("%d submit buttons: the result should follow the inputs", n)
	}
	result := func(want string) {
		t.Helper()
		got := b.waitFor("score "+want, fmt.Sprintf(`(() => {
  const ep = document.getElementById('error-panel');
  if (ep && !ep.hidden) return 'error: ' + ep.textContent.trim();
  const s = document.getElementById('ev-score');
  return s && s.textContent.trim() === %q ? 'ok' : '';
})()`, want))
		if got != "ok" {
			t.Fatalf("the calculator shows %s", got)
		}
	}
	for name, v := range map[string]string{"age": "52", "hemoglobin": "15.1", "egfr": "103", "wbc": "6.1"} {
		b.do(chromedp.SendKeys(chromedp.CSS("#ev-in-"+name), v))
	}
	for _, name := range []string{"prior_bleeding", "oral_anticoagulation", "arc_hbr_other"} {
		b.do(chromedp.Click(chromedp.CSS(`label[for="ev-in-` + name + `-no"]`)))
	}
	result("10")
	if got := b.attr("#ev-score", "data-category"); got != "not-hbr" {
		t.Errorf("#ev-score data-category %q, want not-hbr", got)
	}
	// The result says how many of the score's parameters are unverified,
	// as the configuration marks them.
	cfg, err := calc.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	ph, _ := cfg.Calculator("precise-hbr")
	if n := len(ph.Unverified()); n > 0 {
		if got, want := b.attr("#ev-unverified", "data-unverified")+"/"+b.attr("#ev-unverified", "data-parameters"), fmt.Sprintf("%d/%d", n, len(ph.Parameters())); got != want {
			t.Errorf("standalone PRECISE-HBR says %s parameters unverified, the configuration %s", got, want)
		}
	} else if b.shown("#ev-unverified") {
		t.Error("standalone PRECISE-HBR says its parameters are unverified; the configuration verifies them all")
	}
	// Hb 15.1 is counted as 15, shown in its row, not as a warning.
	if got := b.text(`#ev-table tr[data-input="hemoglobin"] [data-testid="counted"]`); !strings.Contains(got, "15") || !strings.Contains(got, "upper limit") {
		t.Errorf("hemoglobin row %q: want the value the score counts", got)
	}
	b.screenshot("precise-hbr", "the standalone calculator with low-risk's values: PRECISE-HBR 10, Not HBR, updated live, Hb 15.1 counted as 15 in its row")
	// One click changes the result: no Calculate button.
	b.do(chromedp.Click(chromedp.CSS(`label[for="ev-in-oral_anticoagulation-yes"]`)))
	result("15")
	// So does a number, a moment after typing.
	b.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('ev-in-hemoglobin').select()`), chromedp.SendKeys(chromedp.CSS("#ev-in-hemoglobin"), "9"))
	result("30")
	b.noConsoleErrors()

	// The trade-off model's percentages say they come from another model
	// with unverified parameters.
	b.do(
		chromedp.SetValue(chromedp.CSS("#calculator-select"), "arc-hbr-tradeoff"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('calculator-select').dispatchEvent(new Event('change', {bubbles: true}))`),
	)
	b.waitFor("the trade-off inputs", `document.getElementById('ev-in-copd') ? 'ok' : ''`)
	for _, name := range []string{"liver_cancer_surgery", "copd", "current_smoker", "complex_pci", "oral_anticoagulation", "diabetes", "prior_mi", "nstemi_stemi", "bare_metal_stent"} {
		b.do(chromedp.Click(chromedp.CSS(`label[for="ev-in-` + name + `-no"]`)))
	}
	b.waitFor("the trade-off result", `(() => { const v = document.querySelector('[data-testid="ev-tradeoff-values"]'); return v && v.textContent.includes('%') ? 'ok' : ''; })()`)
	if got := b.text(`[data-testid="ev-tradeoff-values"]`); !strings.Contains(got, "%") || !strings.Contains(got, "not PRECISE-HBR") || !strings.Contains(got, "unverified") {
		t.Errorf("standalone trade-off figures %q: want the percentages labelled as another, unverified model", got)
	}
	b.noConsoleErrors()
}

// patientNames maps the sandbox's patient ids to their names.
func patientNames(e *env) map[string]string {
	names := map[string]string{}
	for _, p := range e.Sandbox.Patients() {
		names[p.ID] = p.Name
	}
	return names
}

// header reads a response header case-insensitively.
func header(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// lastLines returns the last n lines of Chromium's output, without its
// complaints that this machine has no D-Bus.
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if !strings.Contains(l, "dbus") {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestBrowserTradeoffChart: the chart shows something on load (the box the
// unknown predictors could span), and one click per answer places the
// patient: each unknown factor answered "no" turns the box into a point.
func TestBrowserTradeoffChart(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	b := newBrowser(t, nil)
	b.launchInto(e, "low-risk")
	if n := eval[int](b, `document.querySelectorAll('[data-testid="tradeoff-range"] rect, [data-testid="tradeoff-point"] circle').length`); n != 1 {
		t.Fatalf("the chart shows %d marks on load, want the range box or the point", n)
	}
	if got := b.text(`[data-testid="tradeoff-range-text"]`); !strings.Contains(got, "unknown") {
		t.Errorf("range statement %q", got)
	}
	b.screenshot("range", "low-risk on load: the trade-off chart shows the box the unknown predictors span")
	for i := 0; i < 10; i++ {
		id := eval[string](b, `(() => { const li = document.querySelector('#tradeoff-factor-list li[data-present="unknown"] input[data-answer="no"]:not([disabled])'); return li ? li.id : ''; })()`)
		if id == "" {
			break
		}
		b.change(chromedp.Click(chromedp.CSS("#" + id)))
		if !eval[bool](b, fmt.Sprintf(`!!(document.getElementById(%q) || {}).checked`, id)) {
			t.Fatalf("after one click, %s is not the answer", id)
		}
	}
	b.waitFor("the patient's point", `document.querySelector('[data-testid="tradeoff-point"] circle') && !document.querySelector('[data-testid="tradeoff-range"]') ? 'ok' : ''`)
	if got := b.text(`[data-testid="tradeoff-numbers"]`); !strings.Contains(got, "bleeding") {
		t.Errorf("numbers %q after every factor is answered", got)
	}
	b.screenshot("point", "low-risk with every unknown factor answered no: the point")
}

// TestBrowserHistoryHoldsNoBearer reads Chromium's own History database
// (the file that kept /calculate/#session=<handle> before hand-off codes)
// after two launches: it holds no session handle, and every hand-off code
// it holds is spent: exchanging it again, from this browser's cookies or
// another's, gets 401. A link to the app with someone's code (fixation)
// opens no session.
func TestBrowserHistoryHoldsNoBearer(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	dir := t.TempDir()
	b := newBrowser(t, map[string]any{"user-data-dir": dir})
	var handles []string
	for _, p := range []string{"low-risk", "hbr-anticoag"} {
		b.launchInto(e, p)
		handles = append(handles, b.handle())
	}
	// A graceful close writes the History database out.
	if err := chromedp.Cancel(b.ctx); err != nil {
		t.Fatalf("close chromium: %v", err)
	}
	var history []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		history = nil
		files, _ := filepath.Glob(filepath.Join(dir, "Default", "History*"))
		for _, f := range files {
			if raw, err := os.ReadFile(f); err == nil {
				history = append(history, raw...)
			}
		}
		if bytes.Contains(history, []byte("/calculate/")) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !bytes.Contains(history, []byte("/calculate/")) {
		t.Fatalf("the History database (%d bytes) lists no visit to the app: this test would prove nothing", len(history))
	}
	for _, h := range handles {
		if h == "" || bytes.Contains(history, []byte(h)) {
			t.Errorf("the History database holds a session handle (%.8s…)", h)
		}
	}
	codes := regexp.MustCompile(`#handoff=([A-Za-z0-9_-]{43})`).FindAllSubmatch(history, -1)
	if len(codes) == 0 {
		t.Fatal("the History database holds no #handoff= URL: the replay below would prove nothing")
	}
	for _, c := range codes {
		for name, client := range map[string]*http.Client{"this browser's cookies": e.client, "another browser": {}} {
			resp, err := client.Post(e.URL+"/calculate/api/session", "application/json", strings.NewReader(`{"handoff":"`+string(c[1])+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("hand-off code from history, %s: status %d, want 401", name, resp.StatusCode)
			}
		}
	}
}

// TestBrowserSessionStorageFallback runs the callback's cookie-less path in
// a real browser: the tab holds the launch's binding nonce only in
// sessionStorage (as the launch page leaves it in an EHR iframe that
// refuses even partitioned cookies) and no cookie. The fallback page POSTs
// the nonce back, the hand-off nonce waits in sessionStorage for the app
// page, and the assessment loads. The same callback URL in a tab without
// the nonce (login CSRF) ends on the 403 page.
func TestBrowserSessionStorageFallback(t *testing.T) {
	e := start(t, memoryStore, nil, nil, nil)
	for _, withNonce := range []bool{true, false} {
		// A scripted browser launches and stops at the callback; its
		// binding cookie is the nonce the launch page would have stored.
		cb := e.stopAt(t, e.URL+"/ehr/launch?patient=low-risk", "/callback")
		var name, nonce string
		for _, c := range e.client.Jar.Cookies(cb) {
			if strings.HasPrefix(c.Name, "__Host-smartcalc-") && !strings.HasPrefix(c.Name, "__Host-smartcalc-h-") {
				name, nonce = c.Name, c.Value
			}
		}
		if nonce == "" {
			t.Fatal("no binding cookie after the launch")
		}
		b := newBrowser(t, nil)
		b.navigate(e.URL + "/calculate/evaluate.html")
		if withNonce {
			key := "smartcalc.binding." + strings.TrimPrefix(name, "__Host-smartcalc-")
			eval[chromedp.Void](b, `sessionStorage.setItem('`+key+`', '`+nonce+`')`)
		}
		b.navigate(cb.String())
		if !withNonce {
			for deadline := time.Now().Add(waitTimeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if title, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.title`)); err == nil && strings.Contains(title, "Open SMART Calc") {
					break
				}
			}
			b.waitFor("the refusal", `document.title.includes('Open SMART Calc from the EHR again') ? 'ok' : ''`)
			if b.handle() != "" {
				t.Error("login CSRF: the tab holds a session")
			}
			continue
		}
		// The pages navigate by script: wait until the app page stands.
		for deadline := time.Now().Add(waitTimeout); ; {
			ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`location.pathname === '/calculate/' && document.readyState === 'complete'`))
			if err == nil && ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the app page never loaded: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		b.waitStatus("Assessment loaded.")
		if b.handle() == "" {
			t.Error("the tab holds no session handle")
		}
		if got := eval[string](b, `JSON.stringify(Object.keys(sessionStorage))`); strings.Contains(got, "binding") {
			t.Errorf("binding nonces left in sessionStorage: %s", got)
		}
		logs := e.logs.String()
		if !strings.Contains(logs, `"binding_from":"session_storage"`) || !strings.Contains(logs, `"message":"session handed off"`) {
			t.Errorf("the fallback was not used:\n%s", lastLines(logs, 12))
		}
	}
}

// TestBrowserImpossibleBirthDate: a birth date in the future, or more than
// 130 years ago, gives no age; the banner says why instead, in English and
// in Traditional Chinese, and shows the date as the record gives it.
func TestBrowserImpossibleBirthDate(t *testing.T) {
	dir := t.TempDir()
	bundle := `{"resourceType": "Bundle", "type": "collection", "entry": [` +
		`{"resource": {"resourceType": "Patient", "id": "birth-future", "name": [{"text": "Future Birth"}], "gender": "female", "birthDate": "2100-01-01"}},` +
		`{"resource": {"resourceType": "Patient", "id": "birth-too-old", "name": [{"text": "Old Birth"}], "gender": "male", "birthDate": "1850-03-04"}}]}`
	if err := os.WriteFile(filepath.Join(dir, "birth-dates.json"), []byte(bundle), 0o644); err != nil {
		t.Fatal(err)
	}
	e := start(t, memoryStore, nil, &Tune{Sandbox: func(c *ehrsim.Config) { c.DataDir = dir }}, nil)
	b := newBrowser(t, nil)
	for _, tt := range []struct {
		patient, date, en, zh string
	}{
		{"birth-future", "2100-01-01",
			"No age: the birth date 2100-01-01 is after today, so it cannot be right. Correct it in the EHR, or enter the age.",
			"無法計算年齡：出生日期 2100-01-01 晚於今天，不可能正確。請於電子病歷系統更正，或自行輸入年齡。"},
		{"birth-too-old", "1850-03-04",
			"No age: the birth date 1850-03-04 is more than 130 years ago, so it cannot be right. Correct it in the EHR, or enter the age.",
			"無法計算年齡：出生日期 1850-03-04 距今超過 130 年，不可能正確。請於電子病歷系統更正，或自行輸入年齡。"},
	} {
		b.launchInto(e, tt.patient)
		if got := b.text("#patient-age"); got != tt.en {
			t.Errorf("%s: age cell %q, want %q", tt.patient, got, tt.en)
		}
		if got := b.attr("#patient-age", "class"); !strings.Contains(got, "birth-problem") {
			t.Errorf("%s: age cell class %q, not marked as a problem", tt.patient, got)
		}
		if got := b.text("#patient-birth-date"); got != tt.date {
			t.Errorf("%s: birth date cell %q, want %q", tt.patient, got, tt.date)
		}
		// The banner's sentence is the server's: it comes with the
		// answers the page asks for again in the new language.
		b.switchLang("zh-TW", "評估已載入。")
		if got := b.text("#patient-age"); got != tt.zh {
			t.Errorf("%s: zh-TW age cell %q, want %q", tt.patient, got, tt.zh)
		}
		b.noConsoleErrors()
		if tt.patient == "birth-too-old" {
			b.screenshot("birth-date-zh-TW", "birth-too-old in Traditional Chinese: the banner says why no age is shown")
		}
		b.switchLang("en", "Assessment loaded.") // the choice is remembered: the next launch waits for English
	}
	b.launchInto(e, "low-risk")
	if got := b.text("#patient-age"); !strings.HasSuffix(got, " years") || strings.Contains(b.attr("#patient-age", "class"), "birth-problem") {
		t.Errorf("a plausible birth date: age cell %q class %q", got, b.attr("#patient-age", "class"))
	}
}
