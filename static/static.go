// Package static holds SMART Calc's browser UI: the page an interventional
// cardiologist sees inside the EHR (index.html) and the standalone
// calculator (evaluate.html), as plain HTML, CSS and JavaScript modules.
//
// The files are embedded so that the calculate function serves them from
// its own binary. They follow the Content-Security-Policy that
// shared/web sets (script-src 'self'; style-src 'self'): no inline script,
// no style attribute or <style> element, no event-handler attribute. Every
// URL they use is relative, so the UI works at /calculate/ in the local
// runner and at the root of the deployed calculate function.
package static

import "embed"

// MessagesPath is where, beside these files, the calculate function serves
// the message catalogue (shared/message) that i18n.js loads.
const MessagesPath = "messages.json"

// FS holds the UI files at its root: index.html, evaluate.html, the
// JavaScript modules and app.css. The pages' text comes from the message
// catalogue (shared/message), which the calculate function serves beside
// them as messages.json. Serve FS with
// http.FileServerFS; the page's URL must end in a slash so that its
// relative URLs (api/..., app.js) resolve under it.
//
//go:embed *.html *.js *.css
var FS embed.FS
