package message

import "testing"

// BenchmarkParse measures what the first request that writes a sentence
// pays: parsing and checking the embedded catalogue.
func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(catalogJSON); err != nil {
			b.Fatal(err)
		}
	}
}
