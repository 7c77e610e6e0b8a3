package fhir

import (
	"context"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkFetchRecordHugePages runs FetchRecord against an EHR whose every
// search answers 15 MB pages with a next link, and reports the peak heap in
// use (sampled every millisecond) and the process's peak RSS (VmHWM). The
// per-response cap refuses each page unread past 4 MiB, so the record says
// plainly which searches were not read.
//
//	go test ./shared/fhir/ -run '^$' -bench FetchRecordHugePages -benchtime 5x
func BenchmarkFetchRecordHugePages(b *testing.B) {
	obs := labObs("o", "718-7", 12, "2025-03-01")
	n := 15<<20/len(obs) + 1
	rs := make([]string, n)
	for i := range rs {
		rs[i] = obs
	}
	page := []byte(bundle("/fhir/Observation?page=2", rs...))
	srv, _ := newServer(b, ehrHandler(map[string]http.HandlerFunc{}))
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/fhir/Patient/") {
			writeJSON(w, 200, testPatient)
			return
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Write(page) // chunked: no Content-Length to refuse it early
	})
	c := newClient(srv)
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
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	var rec *Record
	for b.Loop() {
		rec = c.FetchRecord(context.Background(), fullQuery())
	}
	b.StopTimer()
	close(stop)
	if rec.Patient == nil || len(rec.Errors) == 0 {
		b.Fatalf("patient %v errors %v", rec.Patient, rec.Errors)
	}
	for typ, err := range rec.Errors {
		if e, ok := err.(*Error); !ok || !e.TooLarge {
			b.Fatalf("%s: %v, want TooLarge", typ, err)
		}
	}
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(vmHWM()/(1<<10), "peak-RSS-MiB")
	b.ReportMetric(float64(len(page))/(1<<20), "page-MiB")
}

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
