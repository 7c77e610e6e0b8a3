package web

import (
	"net/http"
	"time"
)

// Binding cookies tie a launch to the browser that started it, against login
// CSRF (README Design §1). Each launch has its own cookie, named by its
// correlation id, so two launches in two tabs never overwrite each other. The
// cookie is __Host-, Secure, HttpOnly, SameSite=None and Partitioned (CHIPS),
// so it can survive inside an EHR's iframe; where the browser drops it anyway,
// the callback goes on without it and logs that no binding was possible.
const bindingPrefix = "__Host-smartcalc-"

// BindingCookieName is the cookie name for the launch with that correlation id.
func BindingCookieName(correlation string) string { return bindingPrefix + correlation }

// BindingCookie carries the launch's binding nonce for ttl.
func BindingCookie(correlation, nonce string, ttl time.Duration) *http.Cookie {
	return &http.Cookie{
		Name:        BindingCookieName(correlation),
		Value:       nonce,
		Path:        "/",
		MaxAge:      int(ttl / time.Second),
		Secure:      true,
		HttpOnly:    true,
		SameSite:    http.SameSiteNoneMode,
		Partitioned: true,
	}
}

// ClearBindingCookie deletes the launch's binding cookie.
func ClearBindingCookie(correlation string) *http.Cookie {
	c := BindingCookie(correlation, "", 0)
	c.MaxAge = -1
	return c
}

// HandoffCookieName is the cookie that binds the hand-off with that
// correlation id (Correlation of the code) to the browser.
func HandoffCookieName(correlation string) string { return bindingPrefix + "h-" + correlation }

// HandoffCookie carries a hand-off's binding nonce for ttl.
func HandoffCookie(correlation, nonce string, ttl time.Duration) *http.Cookie {
	c := BindingCookie("h-"+correlation, nonce, ttl)
	return c
}

// ClearHandoffCookie deletes a hand-off's binding cookie.
func ClearHandoffCookie(correlation string) *http.Cookie {
	c := HandoffCookie(correlation, "", 0)
	c.MaxAge = -1
	return c
}
