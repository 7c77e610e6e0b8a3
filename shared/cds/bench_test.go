package cds

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/ehrsim"
)

// BenchmarkHook measures each hook against the sandbox over loopback HTTP:
// the sandbox signs the JWT, fills the prefetch (or lends a token and the
// service reads FHIR itself), and posts the call. ns/op covers the whole
// EHR-side round; answer-ms is the service's answer time as the EHR sees it
// (request sent to response read).
func BenchmarkHook(b *testing.B) {
	e := newEnv(b)
	draft := []json.RawMessage{ehrsim.DraftMedicationRequest("d1", "ckd-severe", "32968", "clopidogrel 75 mg tablet")}
	for _, hook := range []string{HookPatientView, HookOrderSelect, HookOrderSign} {
		for _, mode := range []string{"prefetch", "fetch"} {
			b.Run(hook+"/"+mode, func(b *testing.B) {
				c := ehrsim.CDSCall{Hook: hook, Patient: "ckd-severe", NoPrefetch: mode == "fetch"}
				if hook != HookPatientView {
					c.DraftOrders = draft
				}
				var total time.Duration
				n := 0
				for b.Loop() {
					res, err := e.cli.Call(context.Background(), c)
					if err != nil || res.Status != http.StatusOK || len(res.Cards) != 1 {
						b.Fatalf("%v %+v", err, res)
					}
					total += res.Latency
					n++
				}
				b.ReportMetric(float64(total.Microseconds())/float64(n)/1000, "answer-ms")
			})
		}
	}
}
