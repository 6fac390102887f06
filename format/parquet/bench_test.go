package parquet

import (
	"path/filepath"
	"testing"

	"github.com/rewind-tools/rewind/format/internal/fixture"
)

// BenchmarkWriter writes the fixture's exchanges, row groups and footer
// included, and reports the cost per exchange.
func BenchmarkWriter(b *testing.B) {
	exs := fixture.Exchanges()
	dir := b.TempDir()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		w, err := New(filepath.Join(dir, "b.parquet"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		w.Begin(fixture.Info())
		for range 1000 {
			for _, ex := range exs {
				if err := w.Exchange(ex); err != nil {
					b.Fatal(err)
				}
				n++
			}
		}
		if err := w.End(fixture.Summary()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/exchange")
}
