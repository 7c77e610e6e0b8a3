package web

import (
	"net/http/httptest"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	const app = "https://app.example"
	for _, tc := range []struct {
		origin, site string
		want         bool
	}{
		{app, "", true},
		{"https://evil.example", "same-origin", false},
		{"null", "same-origin", true}, // Chromium's form POST from a no-referrer page
		{"null", "cross-site", false},
		{"", "same-origin", true},
		{"", "", false},
		{"", "same-site", false},
	} {
		r := httptest.NewRequest("POST", "/callback", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if tc.site != "" {
			r.Header.Set("Sec-Fetch-Site", tc.site)
		}
		if got := SameOrigin(r, app); got != tc.want {
			t.Errorf("Origin %q Sec-Fetch-Site %q: %v, want %v", tc.origin, tc.site, got, tc.want)
		}
	}
}
