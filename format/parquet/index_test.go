package parquet_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"github.com/rewind-tools/rewind/format/internal/fixture"
	"github.com/rewind-tools/rewind/format/parquet"
)

// TestPageIndexHoldsEveryValue reads back every page of every column of a
// file of many pages and checks the page index, which engines such as
// Spark, Trino and DataFusion skip pages by: a page marked null holds
// only nulls, and every value of another lies within its min and max. An
// index that says less than the truth makes those engines skip pages that
// match a filter and answer wrongly (parquet-go's SkipPageBounds writes ""
// for both bounds of pages that hold values).
func TestPageIndexHoldsEveryValue(t *testing.T) {
	out := filepath.Join(t.TempDir(), "index.parquet")
	w, err := parquet.New(out, parquet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Begin(fixture.Info()); err != nil {
		t.Fatal(err)
	}
	exs := fixture.Exchanges()
	for range 2000 {
		for _, ex := range exs {
			if err := w.Exchange(ex); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.End(fixture.Summary()); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := pq.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	pages := 0
	for _, rg := range pf.RowGroups() {
		for _, cc := range rg.ColumnChunks() {
			col := pf.Schema().Columns()[cc.Column()]
			ci, err := cc.ColumnIndex()
			if err != nil {
				t.Fatalf("column %v: no page index: %v", col, err)
			}
			typ := cc.Type()
			pr := cc.Pages()
			for i := 0; ; i++ {
				p, err := pr.ReadPage()
				if errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("column %v page %d: %v", col, i, err)
				}
				if i >= ci.NumPages() {
					t.Fatalf("column %v: page %d has no entry in an index of %d pages", col, i, ci.NumPages())
				}
				vals := make([]pq.Value, p.NumValues())
				n, err := p.Values().ReadValues(vals)
				if err != nil && !errors.Is(err, io.EOF) {
					t.Fatalf("column %v page %d: %v", col, i, err)
				}
				min, max := ci.MinValue(i), ci.MaxValue(i)
				for _, v := range vals[:n] {
					if v.IsNull() {
						continue
					}
					if ci.NullPage(i) {
						t.Fatalf("column %v page %d: marked null in the index, holds %v", col, i, v)
					}
					if typ.Compare(v, min) < 0 || typ.Compare(v, max) > 0 {
						t.Fatalf("column %v page %d: holds %v, outside the index's bounds [%v, %v]", col, i, v, min, max)
					}
				}
				pq.Release(p)
				pages++
			}
			pr.Close()
		}
	}
	if cols := len(pf.Schema().Columns()); pages < 3*cols {
		t.Fatalf("%d pages in %d columns: the file should have several pages per column", pages, cols)
	}
	t.Logf("%d pages checked", pages)
}
