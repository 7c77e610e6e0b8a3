package web

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/smartcalc-app/smartcalc/shared/message"
)

func TestErrorPage(t *testing.T) {
	rec := httptest.NewRecorder()
	ErrorPage(rec, nil, []string{"https://ehr.example"}, Problem{
		Status:      409,
		Title:       message.New("signin.replayed_state.title", nil),
		Advice:      message.New("signin.advice.relaunch", nil),
		Causes:      []message.Msg{message.Verbatim("the page was reloaded"), message.Verbatim("<script>alert(1)</script>")},
		Sent:        []message.Msg{message.Verbatim("redirect_uri https://app/callback")},
		Correlation: "abc123",
	})
	if rec.Code != 409 {
		t.Errorf("status %d, want 409", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{"This launch was already used", "Relaunch SMART Calc from the EHR.",
		"the page was reloaded", "redirect_uri https://app/callback", "abc123", "&lt;script&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Error("page did not escape a cause")
	}
	h := rec.Header()
	if got := h.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'self' https://ehr.example") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if !strings.Contains(csp, styleHash) {
		t.Errorf("CSP %q lacks the inline style's hash", csp)
	}
	if h.Get("X-Frame-Options") != "" {
		t.Error("X-Frame-Options set: would block the EHR iframe")
	}
	if h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("Referrer-Policy %q", h.Get("Referrer-Policy"))
	}
}

// TestErrorPageFollowsAcceptLanguage: the page a clinician sees is in the
// language the browser asks for, with Chinese punctuation, its lang
// attribute set; the likely causes and what was sent too, in the same
// catalogue.
func TestErrorPageFollowsAcceptLanguage(t *testing.T) {
	req := httptest.NewRequest("GET", "/callback", nil)
	req.Header.Set("Accept-Language", "zh-TW,zh;q=0.9,en;q=0.8")
	rec := httptest.NewRecorder()
	ErrorPage(rec, req, nil, Problem{Status: 409, Title: message.New("signin.replayed_state.title", nil),
		Advice: message.New("signin.advice.replayed", nil), Causes: []message.Msg{message.New("cause.code-reused", nil), message.New("cause.client-unknown", message.Args{"client_id": "calc-1"})},
		Sent: []message.Msg{message.Verbatim("POST https://ehr.example/token"), message.New("sent.code", nil)}, Correlation: "abc123"})
	body := rec.Body.String()
	// Every sentence in the language asked for, the causes and what was
	// sent too; technical tokens (a URL, client_id, code) stay as they are.
	for _, want := range []string{`<html lang="zh-TW">`, "此次啟動已被使用過", "請從電子病歷系統重新啟動 SMART Calc", "支援參考編號",
		"授權碼重複使用或已過期", "client_id「calc-1」", "POST https://ehr.example/token", "code：電子病歷系統重新導向帶回的授權碼"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `lang="en"`) || strings.Contains(body, "code reused or expired") || strings.Contains(body, "the code from the EHR's redirect") {
		t.Errorf("the details stay English in a zh-TW page:\n%s", body)
	}
	if strings.Contains(body, "This launch was already used") || rec.Header().Get("Content-Language") != "zh-TW" {
		t.Errorf("page in English or without Content-Language: %q\n%s", rec.Header().Get("Content-Language"), body)
	}
}

func TestJSONError(t *testing.T) {
	rec := httptest.NewRecorder()
	JSONError(rec, 400, "unknown_calculator", "No calculator named \"x\".")
	if rec.Code != 400 {
		t.Errorf("status %d", rec.Code)
	}
	var got APIError
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Error != "unknown_calculator" || got.Message == "" {
		t.Errorf("got %+v", got)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestRedirect(t *testing.T) {
	rec := httptest.NewRecorder()
	Redirect(rec, "https://ehr.example/authorize?state=x&aud=https%3A%2F%2Fehr", 302)
	if rec.Code != 302 || rec.Header().Get("Location") != "https://ehr.example/authorize?state=x&aud=https%3A%2F%2Fehr" || rec.Body.Len() != 0 {
		t.Errorf("got %d %q body %q", rec.Code, rec.Header().Get("Location"), rec.Body.String())
	}
}
