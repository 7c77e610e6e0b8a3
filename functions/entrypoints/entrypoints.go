// Package entrypoints is the one place where SMART Calc's Cloud Functions
// are registered, and the composition root that builds their handlers from
// the configuration.
//
// Every deployed function runs this package's init, so init only registers:
// a handler, its store client and its EHR registry are built on the first
// request, by whichever of the three functions the instance serves.
package entrypoints

import (
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/smartcalc-app/smartcalc/shared/config"
	"github.com/smartcalc-app/smartcalc/shared/logging"
	"github.com/smartcalc-app/smartcalc/shared/message"
	"github.com/smartcalc-app/smartcalc/shared/web"
)

// Names are the registered function names, which are also the Cloud
// Functions entry points and the paths of the local runner.
var Names = []string{"launch", "callback", "calculate"}

func init() {
	for _, name := range Names {
		functions.HTTP(name, Lazy(name, deployedEnv, func(e *Env) (http.Handler, error) { return e.Handler(name) }).ServeHTTP)
	}
}

// Handler builds the handler of the function registered as name: the one
// mapping from names to builders, used by the registrations and the local
// runner.
func (e *Env) Handler(name string) (http.Handler, error) {
	switch name {
	case "launch":
		return e.Launch()
	case "callback":
		return e.Callback()
	case "calculate":
		return e.Calculate()
	}
	return nil, fmt.Errorf("entrypoints: no function named %q", name)
}

var (
	envMu  sync.Mutex
	envVal *Env
)

// deployedEnv builds the environment from the process's variables, once;
// a failure is not cached, so a fixed variable works on the next request.
func deployedEnv() (*Env, error) {
	envMu.Lock()
	defer envMu.Unlock()
	if envVal != nil {
		return envVal, nil
	}
	log := logging.Default()
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	envVal = &Env{Config: cfg, Log: log}
	return envVal, nil
}

// Lazy returns a handler that builds the real one on first use. A build
// failure answers 500 with the error page and a log line naming the cause,
// and is retried on the next request (unlike sync.Once, which would leave the
// function broken until the instance dies).
func Lazy(name string, env func() (*Env, error), build func(*Env) (http.Handler, error)) http.Handler {
	var (
		h  atomic.Pointer[http.Handler]
		mu sync.Mutex
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := h.Load(); p != nil {
			(*p).ServeHTTP(w, r)
			return
		}
		mu.Lock()
		p := h.Load()
		if p == nil {
			e, err := env()
			var built http.Handler
			if err == nil {
				built, err = build(e)
			}
			if err != nil {
				mu.Unlock()
				logging.Default().Error("function not configured", "function", name, "cause", "configuration", "err", err.Error())
				web.ErrorPage(w, r, nil, web.Problem{
					Status: http.StatusInternalServerError,
					Title:  message.New("server.misconfigured.title", nil),
					Advice: message.New("server.misconfigured.advice", nil),
				})
				return
			}
			p = &built
			h.Store(p)
		}
		mu.Unlock()
		(*p).ServeHTTP(w, r)
	})
}
