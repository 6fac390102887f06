package parquet_test

import (
	"path/filepath"
	"slices"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"github.com/rewind-tools/rewind/format/internal/fixture"
	"github.com/rewind-tools/rewind/format/parquet"
)

// TestTreeDays: exchanges of a capture that crosses midnight UTC, in an
// order that goes back and forth between the days, each go to their own
// day's file (the writer remembers the previous exchange's part).
func TestTreeDays(t *testing.T) {
	dir := t.TempDir() + "/"
	w, err := parquet.New(dir, parquet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	info := fixture.Info() // fixture.Base is 12:00 UTC on 2024-05-01
	if err := w.Begin(info); err != nil {
		t.Fatal(err)
	}
	const hour = 3600_000_000_000
	offsets := []uint64{11 * hour, 13 * hour, 11*hour + 1, 13*hour + 1, 13*hour + 2}
	exs := fixture.Exchanges()
	for i, off := range offsets {
		ex := exs[i]
		ex.Request.Start = fixture.Base + off
		if err := w.Exchange(ex); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.End(fixture.Summary()); err != nil {
		t.Fatal(err)
	}
	type seqRow struct {
		Seq int64 `parquet:"seq"`
	}
	want := map[string][]int64{"2024-05-01": {1, 3}, "2024-05-02": {2, 4, 5}}
	for day, seqs := range want {
		files, _ := filepath.Glob(filepath.Join(dir, "host=web1", "date="+day, "part-*.parquet"))
		if len(files) != 1 {
			t.Fatalf("date=%s: %d files, want 1", day, len(files))
		}
		rows, err := pq.ReadFile[seqRow](files[0])
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, r := range rows {
			got = append(got, r.Seq)
		}
		if !slices.Equal(got, seqs) {
			t.Errorf("date=%s: seq %v, want %v", day, got, seqs)
		}
	}
}
