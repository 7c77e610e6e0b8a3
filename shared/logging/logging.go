// Package logging is SMART Calc's one logger: log/slog writing JSON lines in
// the shape Cloud Logging parses from a function's output, so that severity,
// message and trace land in the right LogEntry fields.
//
// Secrets never go through it: callers log a correlation id (a hash of the
// OAuth state), never the state, codes, verifiers, tokens or headers.
package logging

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
)

// Keys that Cloud Logging lifts out of a JSON log line.
const (
	// TraceKey links a line to the request's Cloud Trace span.
	TraceKey = "logging.googleapis.com/trace"
	// CorrelationKey carries the per-launch correlation id (a hash of the
	// state) that ties the launch and callback lines of one launch together.
	CorrelationKey = "correlation"
)

// New returns a JSON logger writing to w, at level and above, with Cloud
// Logging's field names: "severity" (DEBUG, INFO, WARNING, ERROR), "message"
// and "time".
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: replace,
	}))
}

// Default returns the logger the functions use: JSON on standard output at
// the level named by LOG_LEVEL (debug, info, warn, error; default info).
func Default() *slog.Logger {
	return New(os.Stdout, ParseLevel(os.Getenv("LOG_LEVEL")))
}

// ParseLevel maps a level name to a slog level; unknown names mean info.
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func replace(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.MessageKey:
		a.Key = "message"
	case slog.LevelKey:
		a.Key = "severity"
		switch lvl, _ := a.Value.Any().(slog.Level); {
		case lvl >= slog.LevelError:
			a.Value = slog.StringValue("ERROR")
		case lvl >= slog.LevelWarn:
			a.Value = slog.StringValue("WARNING")
		case lvl >= slog.LevelInfo:
			a.Value = slog.StringValue("INFO")
		default:
			a.Value = slog.StringValue("DEBUG")
		}
	}
	return a
}

// ForRequest returns base with the request's trace attached, when the
// platform sent an X-Cloud-Trace-Context header and project is known, and the
// function's name.
func ForRequest(base *slog.Logger, r *http.Request, project, function string) *slog.Logger {
	l := base.With("function", function)
	if project == "" {
		return l
	}
	if h := r.Header.Get("X-Cloud-Trace-Context"); h != "" {
		trace, _, _ := strings.Cut(h, "/")
		if trace != "" && isHex(trace) {
			l = l.With(TraceKey, "projects/"+project+"/traces/"+trace)
		}
	}
	return l
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

type ctxKey struct{}

// WithContext returns ctx carrying l.
func WithContext(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// FromContext returns the logger carried by ctx, or fallback.
func FromContext(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok {
		return l
	}
	return fallback
}
