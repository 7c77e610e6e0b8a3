package fhir

import (
	"context"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkFetchRecordHugePages runs FetchRecord against an EHR whose every
// search answers a 15 MB page with a next link (written in chunks, with no
// Content-Length to refuse it early), and reports the peak heap in use
// (sampled every millisecond; the test server's own copy of the page
// included) and the process's peak RSS (VmHWM, reset before each case).
//
//   - small-entries: 1 KB Observations. Decoding entry by entry, each search
//     stops reading at the 1,000-entry cap and keeps those entries, marked
//     truncated.
//
//   - large-entries: 64 KB Observations (a long note). The 4 MiB
//     per-response cap is reached first, each page is dropped, and the
//     record says plainly which searches were not read.
//
//     go test ./shared/fhir/ -run '^$' -bench FetchRecordHugePages -benchtime 5x
func BenchmarkFetchRecordHugePages(b *testing.B) {
	for _, tt := range []struct {
		name    string
		padding int
	}{
		{"small-entries", 700},
		{"large-entries", 64 << 10},
	} {
		b.Run(tt.name, func(b *testing.B) {
			obs := paddedObs("o", tt.padding)
			n := 15<<20/len(obs) + 1
			var page strings.Builder
			page.WriteString(`{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":"/fhir/Observation?page=2"}],"entry":[`)
			for i := range n {
				if i > 0 {
					page.WriteByte(',')
				}
				page.WriteString(`{"resource":` + obs + `,"search":{"mode":"match"}}`)
			}
			page.WriteString(`]}`)
			body := []byte(page.String())
			srv, _ := newServer(b, ehrHandler(map[string]http.HandlerFunc{}))
			srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/fhir/Patient/") {
					writeJSON(w, 200, testPatient)
					return
				}
				w.Header().Set("Content-Type", "application/fhir+json")
				for rest := body; len(rest) > 0; {
					k := min(len(rest), 64<<10)
					if _, err := w.Write(rest[:k]); err != nil {
						return
					}
					rest = rest[k:]
				}
			})
			c := newClient(srv)
			page.Reset()
			debug.FreeOSMemory() // the page's construction is not the assessment's
			resetHWM()
			var peak atomic.Uint64
			stop := make(chan struct{})
			go func() {
				var ms runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
					runtime.ReadMemStats(&ms)
					if v := ms.HeapInuse; v > peak.Load() {
						peak.Store(v)
					}
				}
			}()
			b.ReportAllocs()
			b.ResetTimer()
			var rec *Record
			for b.Loop() {
				rec = c.FetchRecord(context.Background(), fullQuery())
			}
			b.StopTimer()
			close(stop)
			if rec.Patient == nil {
				b.Fatalf("no patient: errors %v", rec.Errors)
			}
			if tt.padding < 1<<10 {
				if len(rec.Errors) != 0 || len(rec.Observations) != DefaultMaxEntries || !rec.Truncated["Observation"] {
					b.Fatalf("%d observations, truncated %v, errors %v", len(rec.Observations), rec.Truncated, rec.Errors)
				}
			} else {
				if len(rec.Errors) != 6 {
					b.Fatalf("errors %v, want every search too large", rec.Errors)
				}
				for typ, err := range rec.Errors {
					if e, ok := err.(*Error); !ok || !e.TooLarge {
						b.Fatalf("%s: %v, want TooLarge", typ, err)
					}
				}
			}
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
			b.ReportMetric(vmHWM()/(1<<10), "peak-RSS-MiB")
			b.ReportMetric(float64(len(body))/(1<<20), "page-MiB")
		})
	}
}

// paddedObs is an Observation with a note of about padding bytes: the
// narrative weight real EHR resources carry.
func paddedObs(id string, padding int) string {
	o := labObs(id, "718-7", 12, "2025-03-01")
	return strings.TrimSuffix(o, "}") + `,"note":[{"text":"` + strings.Repeat("x", padding) + `"}]}`
}

// resetHWM resets the process's peak RSS (Linux clear_refs 5), so each case
// reports its own peak; elsewhere it does nothing.
func resetHWM() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// vmHWM returns the process's peak resident set in KiB (Linux), or 0.
func vmHWM() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return f
		}
	}
	return 0
}
