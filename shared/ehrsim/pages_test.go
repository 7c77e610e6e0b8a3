package ehrsim

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestEHRPages(t *testing.T) {
	e := newEnv(t)
	res := e.get(e.ts.URL + "/ehr/")
	home := readBody(t, res)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("home: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{"Robert Kowalski", "James O&#39;Brien", "Launch SMART Calc", "open embedded (iframe)",
		"/ehr/launch?patient=hbr-anticoag", "/ehr/embed?patient=recent-bleed", "scope-downgrade", "fhir-403", "token-expired",
		e.s.FHIRBase(), "MRN", "Oral anticoagulant"} {
		if !strings.Contains(home, want) {
			t.Errorf("home page lacks %q", want)
		}
	}
	if strings.Contains(home, testSecret) {
		t.Error("home page shows a client secret")
	}
	res = e.get(e.ts.URL + "/ehr/embed?patient=recent-bleed&fault=fhir-slow")
	embed := readBody(t, res)
	if res.StatusCode != 200 || !strings.Contains(embed, "<iframe") || !strings.Contains(embed, "James O&#39;Brien") {
		t.Fatalf("embed: %d %s", res.StatusCode, embed)
	}
	src := strings.ReplaceAll(between(embed, `<iframe title="SMART Calc" src="`, `"`), "&amp;", "&")
	u, err := url.Parse(src)
	if err != nil || u.Path != "/ehr/launch" || u.Query().Get("patient") != "recent-bleed" ||
		u.Query().Get("need_patient_banner") != "false" || u.Query().Get("fault") != "fhir-slow" {
		t.Fatalf("iframe src %q", src)
	}
	if res := e.get(src); res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), appLaunch+"?") {
		t.Errorf("iframe launch: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	for path, want := range map[string]int{
		"/ehr/launch?patient=nobody": 404,
		"/ehr/launch":                400,
		"/ehr/embed?patient=nobody":  404,
		"/ehr/nowhere":               404,
		"/ehr/launch?patient=low-risk&encounter=recent-bleed-enc-1": 400,
	} {
		if res := e.get(e.ts.URL + path); res.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, res.StatusCode, want)
		}
	}
	style := getJSON(t, e, e.ts.URL+"/ehr/smart-style.json")
	if style["color_background"] == nil {
		t.Errorf("style %v", style)
	}
}

// TestMounting checks the three ways the handler is mounted: under a mux
// prefix, through http.StripPrefix, and at the root of an httptest server.
func TestMounting(t *testing.T) {
	testKeys(t)
	var s *Server
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.ServeHTTP(w, r) })
	for _, tt := range []struct {
		name    string
		handler func(string) http.Handler
		path    string
	}{
		{"root", func(string) http.Handler { return h }, ""},
		{"strip prefix", func(string) http.Handler { return http.StripPrefix("/sandbox", h) }, "/sandbox"},
	} {
		ts := httptest.NewServer(tt.handler(tt.path))
		var err error
		s, err = New(Config{BaseURL: ts.URL + tt.path, AppLaunchURL: appLaunch, SigningKey: serverKey})
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.Get(s.FHIRBase() + "/.well-known/smart-configuration")
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, res)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(body, `"token_endpoint":"`+ts.URL+tt.path+`/token"`) {
			t.Errorf("%s: %d %s", tt.name, res.StatusCode, body)
		}
		ts.Close()
	}
}
