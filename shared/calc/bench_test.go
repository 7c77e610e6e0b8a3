package calc

import "testing"

// BenchmarkEvaluate measures evaluations per second for each calculator on
// a complete set of inputs, with eGFR and creatinine clearance derived from
// creatinine (the most work each calculator can do).
func BenchmarkEvaluate(b *testing.B) {
	e := testEngine(b)
	in := with(fullInputs(), "egfr", nil, "crcl", nil, "hemoglobin", Number(118, "g/L"), "age", 77, "platelets", 120)
	for _, c := range e.Calculators() {
		b.Run(c.ID, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Evaluate(c.ID, in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "evals/s")
		})
	}
	b.Run("all", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.EvaluateAll(in); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "evals/s")
	})
}

// BenchmarkLoadConfig measures start-up: parsing and validating the
// embedded configuration.
func BenchmarkLoadConfig(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadConfig(); err != nil {
			b.Fatal(err)
		}
	}
}
