package jsonl

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/format/internal/fixture"
	"github.com/rewind-tools/rewind/internal/golden"
)

func write(t *testing.T, exs []*analyze.Exchange) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := New(&buf)
	fixture.Drive(t, w, exs)
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	got := write(t, fixture.Exchanges())
	golden.Check(t, "testdata/exchanges.jsonl", got)
	if again := write(t, fixture.Exchanges()); !bytes.Equal(got, again) {
		t.Error("two runs over the same input differ")
	}
}

// TestLines checks each line is a JSON object with the documented fields and
// that ts equals CaptureInfo.Wall of the exchange's start.
func TestLines(t *testing.T) {
	info := fixture.Info()
	exs := fixture.Exchanges()
	lines := bytes.Split(bytes.TrimSuffix(write(t, exs), []byte("\n")), []byte("\n"))
	if len(lines) != len(exs) {
		t.Fatalf("%d lines for %d exchanges", len(lines), len(exs))
	}
	for i, line := range lines {
		var obj map[string]any
		if err := json.Unmarshal(line, &obj); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		for _, k := range []string{"ts", "conn", "pid", "comm", "role", "tls", "proto", "method", "host", "path", "timings", "flags"} {
			if _, ok := obj[k]; !ok {
				t.Errorf("line %d: no %q", i+1, k)
			}
		}
		ts, err := time.Parse(time.RFC3339Nano, obj["ts"].(string))
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		want := info.Wall(exs[i].Start())
		if !ts.Equal(want) || ts.Format(time.RFC3339Nano) != want.Format(time.RFC3339Nano) {
			t.Errorf("line %d: ts %v, want %v", i+1, ts, want)
		}
	}
	var incomplete map[string]any
	_ = json.Unmarshal(lines[4], &incomplete)
	if _, ok := incomplete["status"]; ok {
		t.Error("exchange without response has a status")
	}
	if tm := incomplete["timings"].(map[string]any); len(tm) != 0 {
		t.Errorf("unknown timings written: %v", tm)
	}
}

func BenchmarkWriter(b *testing.B) {
	w := New(io.Discard)
	_ = w.Begin(fixture.Info())
	ex := fixture.Small()
	b.ReportAllocs()
	for b.Loop() {
		_ = w.Exchange(ex)
	}
}

// TestTimestamps checks the cached formatting against CaptureInfo.Wall
// across seconds and zones.
func TestTimestamps(t *testing.T) {
	for _, zone := range []int{0, 7200, -16200} {
		info := fixture.Info()
		info.Header.Clock.ZoneOffset = zone
		ts := timestamps{base: info.Wall(0)}
		for _, mono := range []uint64{fixture.Base, fixture.Base + 999_999_999, fixture.Base + 1_000_000_000, fixture.Base + 1, fixture.Base + 86_400_000_000_123} {
			got := string(ts.append(nil, mono))
			if want := info.Wall(mono).Format(tsLayout); got != want {
				t.Errorf("zone %d, mono %d: %s, want %s", zone, mono, got, want)
			}
		}
	}
}

// TestRequestPartReuse: a line whose request (method, host, path, route,
// query) is the previous line's reuses its formatted part; each line must
// still be what a writer that saw only that exchange writes.
func TestRequestPartReuse(t *testing.T) {
	var exs []*analyze.Exchange
	for i, c := range []struct{ method, host, path, query string }{
		{"GET", "a.example", "/users/1", ""},
		{"GET", "a.example", "/users/1", ""},
		{"GET", "a.example", "/users/2", ""}, // same route, other path
		{"POST", "a.example", "/users/2", ""},
		{"POST", "b.example", "/users/2", ""},
		{"POST", "b.example", "/users/2", "x=1"},
		{"POST", "b.example", "/users/2", "x=2"},
		{"POST", "b.example", "/users/2", ""},
		{"GET", "a.example", "/users/1", ""},
	} {
		ex := *fixture.Small()
		ex.Seq = i + 1
		ex.Request.Method, ex.Request.Host, ex.Request.Path, ex.Request.Query = c.method, c.host, c.path, c.query
		exs = append(exs, &ex)
	}
	got := bytes.SplitAfter(write(t, exs), []byte("\n"))
	for i, ex := range exs {
		if want := write(t, []*analyze.Exchange{ex}); !bytes.Equal(got[i], want) {
			t.Errorf("line %d:\n%s\nwant\n%s", i+1, got[i], want)
		}
	}
}
