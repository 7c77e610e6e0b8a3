package cds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/assess"
	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

// printer writes the cards in the service's language.
func (s *Service) printer() message.Printer { return message.Default().Printer(s.Language) }

// Defaults for the Service's zero-valued fields.
const (
	DefaultBudget           = 2 * time.Second
	DefaultClockSkew        = time.Minute
	DefaultMaxTokenLifetime = 5 * time.Minute
	DefaultMaxRequestBytes  = 8 << 20
)

// Service serves the CDS Hooks discovery, hook and feedback endpoints. Set
// its fields, call Validate once at start-up, then use it from any number
// of goroutines. Optional fields take defaults on first use.
type Service struct {
	// Assess maps a record and runs every calculator: the app's own
	// assessment (its Engine, Scoring and LabLookback are used; its
	// session fields are not).
	Assess *assess.Service
	// Clients are the CDS clients (EHRs) allowed to call.
	Clients []Client
	// BaseURL is the public URL the services are mounted under, without a
	// trailing slash: discovery is BaseURL+"/cds-services" and each service
	// BaseURL+"/cds-services/{id}", the aud a client's JWT must carry. For
	// the calculate function: <SMARTCALC_BASE_URL>/calculate.
	BaseURL string
	// AppLaunchURL is SMART Calc's launch URI, the url of the cards' smart
	// link: the EHR launches the app into the patient with it.
	AppLaunchURL string
	// SourceURL is the cards' source.url; default BaseURL+"/api/scoring-config",
	// the versioned scoring configuration the cards are computed with.
	SourceURL string
	// Budget bounds each hook answer (SMARTCALC_CDS_BUDGET); default 2 s.
	Budget time.Duration
	// HTTPClient fetches the clients' JWK Sets and reads FHIR; default a
	// client with a 10 s timeout (each call is bounded by Budget anyway).
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Replay remembers JWT ids; default a MemoryReplayCache (per instance).
	Replay ReplayCache
	// Feedback records card feedback; default a line in the log.
	Feedback FeedbackRecorder
	// Log is the fallback logger when the request's context carries none.
	Log *slog.Logger
	// ClockSkew is the leeway for exp, iat and nbf; default 1 min.
	ClockSkew time.Duration
	// MaxTokenLifetime refuses JWTs whose exp is further ahead of now or of
	// their iat, which also bounds how long a jti must be remembered;
	// default and upper bound 5 min (a longer value is capped).
	MaxTokenLifetime time.Duration
	// KeyTTL is how long a fetched JWK Set is used; default 1 h.
	KeyTTL time.Duration
	// AllowLoopbackHTTP accepts http:// JWK Set URLs and fhirServer URLs
	// on loopback hosts (local runs and tests). Deployments leave it off.
	AllowLoopbackHTTP bool
	// MaxRequestBytes bounds a hook request body; default 8 MiB.
	MaxRequestBytes int64
	// Language is the language of the cards (SMARTCALC_CDS_LANGUAGE): a
	// CDS client sends no reader's language, so the deployment chooses
	// one; empty means English.
	Language message.Lang

	// beforeMap, when set, runs just before the mapping with its context
	// and the end of the hook's budget: tests use it to make the mapping
	// start after its deadline.
	beforeMap func(mapCtx context.Context, budgetEnd time.Time)

	once     sync.Once
	initErr  error
	issuers  map[string]*Client
	mux      *http.ServeMux
	keys     keyCache
	replayMu sync.Mutex
	replayC  ReplayCache
}

// Validate checks the configuration: call it when building the handler so
// that a bad client list or URL stops start-up with a message naming it.
func (s *Service) Validate() error {
	s.once.Do(s.init)
	return s.initErr
}

func (s *Service) init() {
	var errs []error
	if s.Assess == nil || s.Assess.Engine == nil || s.Assess.Scoring == nil {
		errs = append(errs, errors.New("cds: Assess with its Engine and Scoring is required"))
	}
	if err := checkURL(s.BaseURL, s.AllowLoopbackHTTP); err != nil || strings.HasSuffix(s.BaseURL, "/") {
		errs = append(errs, fmt.Errorf("cds: BaseURL %q must be an absolute https URL without a trailing slash", s.BaseURL))
	}
	if u, err := url.Parse(s.AppLaunchURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		errs = append(errs, fmt.Errorf("cds: AppLaunchURL %q must be an absolute URL", s.AppLaunchURL))
	}
	if err := validateClients(s.Clients, s.AllowLoopbackHTTP); err != nil {
		errs = append(errs, err)
	}
	s.issuers = map[string]*Client{}
	for i := range s.Clients {
		s.issuers[s.Clients[i].Issuer] = &s.Clients[i]
	}
	s.keys.TTL = s.KeyTTL
	s.initErr = errors.Join(errs...)
	s.mux = s.routes()
}

func (s *Service) client(iss string) *Client {
	if iss == "" {
		return nil
	}
	return s.issuers[iss]
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) budget() time.Duration {
	if s.Budget > 0 {
		return s.Budget
	}
	return DefaultBudget
}

func (s *Service) clockSkew() time.Duration {
	if s.ClockSkew > 0 {
		return s.ClockSkew
	}
	return DefaultClockSkew
}

func (s *Service) maxTokenLifetime() time.Duration {
	if s.MaxTokenLifetime > 0 && s.MaxTokenLifetime < DefaultMaxTokenLifetime {
		return s.MaxTokenLifetime
	}
	return DefaultMaxTokenLifetime
}

func (s *Service) maxRequestBytes() int64 {
	if s.MaxRequestBytes > 0 {
		return s.MaxRequestBytes
	}
	return DefaultMaxRequestBytes
}

var defaultHTTPClient = &http.Client{Timeout: 10 * time.Second}

func (s *Service) httpClient() *http.Client {
	if s.HTTPClient != nil {
		return s.HTTPClient
	}
	return defaultHTTPClient
}

func (s *Service) replay() ReplayCache {
	if s.Replay != nil {
		return s.Replay
	}
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	if s.replayC == nil {
		s.replayC = &MemoryReplayCache{}
	}
	return s.replayC
}

func (s *Service) log(r *http.Request) *slog.Logger {
	fallback := s.Log
	if fallback == nil {
		fallback = slog.Default()
	}
	return logging.FromContext(r.Context(), fallback)
}

// ServiceURL returns the URL of service id: the aud its JWTs must carry.
func (s *Service) ServiceURL(id string) string { return s.BaseURL + "/cds-services/" + id }

// DiscoveryURL returns the discovery endpoint's URL.
func (s *Service) DiscoveryURL() string { return s.BaseURL + "/cds-services" }

func (s *Service) sourceURL() string {
	if s.SourceURL != "" {
		return s.SourceURL
	}
	return s.BaseURL + "/api/scoring-config"
}
