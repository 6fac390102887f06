package report

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rewind-tools/rewind/analyze/sli"
	"github.com/rewind-tools/rewind/format/internal/fixture"
	"github.com/rewind-tools/rewind/internal/golden"
)

func render(t *testing.T, f Format) []byte {
	t.Helper()
	var buf bytes.Buffer
	objs, err := sli.ParseObjectives("availability>=99.9%,p99<300ms,GET /index.html:p50<=10ms,apdex>=0.5")
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(&buf, f, sli.Options{Objectives: objs})
	fixture.Drive(t, w, fixture.Exchanges())
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	for _, c := range []struct {
		f    Format
		file string
	}{{Text, "testdata/report.txt"}, {JSON, "testdata/report.json"}, {Markdown, "testdata/report.md"}, {HTML, "testdata/report.html"}} {
		t.Run(string(c.f), func(t *testing.T) {
			got := render(t, c.f)
			golden.Check(t, c.file, got)
			if again := render(t, c.f); !bytes.Equal(got, again) {
				t.Error("two renderings of the same input differ")
			}
		})
	}
}

func TestJSONSchema(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(render(t, JSON), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["schema_version"] != float64(SchemaVersion) {
		t.Errorf("schema_version %v", doc["schema_version"])
	}
	svcs := doc["services"].([]any)
	first := svcs[0].(map[string]any)
	for _, k := range []string{"name", "role", "pid", "comm", "count", "rate_per_s", "availability", "status", "incomplete", "req_body_bytes", "resp_body_bytes", "latency", "endpoints"} {
		if _, ok := first[k]; !ok {
			t.Errorf("service has no %q", k)
		}
	}
}

func TestParseFormat(t *testing.T) {
	if f, err := ParseFormat("json"); err != nil || f != JSON {
		t.Errorf("json: %v %v", f, err)
	}
	if f, err := ParseFormat("html"); err != nil || f != HTML {
		t.Errorf("html: %v %v", f, err)
	}
	for _, s := range []string{"yaml", "xml"} {
		if _, err := ParseFormat(s); err == nil {
			t.Errorf("%s: no error", s)
		}
	}
}

func TestUnits(t *testing.T) {
	for ns, want := range map[int64]string{42_000: "0.042ms", 1_480_000: "1.48ms", 12_345_000: "12.3ms", 250_000_000: "250ms", 12_000_000_000: "12.0s"} {
		if got := Duration(ns); got != want {
			t.Errorf("Duration(%d) = %s, want %s", ns, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 48213: "47.1 KiB", 1 << 30: "1.0 GiB", 300 << 20: "300 MiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %s, want %s", n, got, want)
		}
	}
}

func BenchmarkWriter(b *testing.B) {
	w := NewWriter(io.Discard, JSON, sli.Options{})
	_ = w.Begin(fixture.Info())
	ex := fixture.Small()
	b.ReportAllocs()
	for b.Loop() {
		_ = w.Exchange(ex)
	}
}

func TestWide(t *testing.T) {
	var narrow, wide bytes.Buffer
	for _, c := range []struct {
		buf  *bytes.Buffer
		wide bool
	}{{&narrow, false}, {&wide, true}} {
		w := NewWriter(c.buf, Text, sli.Options{})
		w.Render.Wide = c.wide
		fixture.Drive(t, w, fixture.Exchanges())
	}
	maxWidth := func(b []byte) int {
		m := 0
		for _, l := range bytes.Split(b, []byte("\n")) {
			m = max(m, len([]rune(string(l))))
		}
		return m
	}
	if n := maxWidth(narrow.Bytes()); n > TextWidth {
		t.Errorf("default text report is %d columns wide:\n%s", n, narrow.Bytes())
	}
	if !bytes.Contains(wide.Bytes(), []byte("p999")) || maxWidth(wide.Bytes()) <= TextWidth {
		t.Errorf("wide report lacks columns:\n%s", wide.Bytes())
	}
}

// TestTextFits120Columns: the default text report keeps every line but
// the warnings within TextWidth, as the README says, for the fixture, for
// the goldens of the recorded testdata, and with the widest values a
// summary line can take (#20 item 11: it was 124 columns).
func TestTextFits120Columns(t *testing.T) {
	texts := map[string]string{"fixture": string(render(t, Text))}
	for _, name := range []string{"sample", "curl-nginx", "pipelining-nginx"} {
		b, err := os.ReadFile("../../testdata/golden/" + name + "/report.txt")
		if err != nil {
			t.Fatal(err)
		}
		texts[name] = string(b)
	}
	// The widest summary line: every duration and size at its widest.
	var buf bytes.Buffer
	st := &sli.Stats{ReqBodyBytes: 1023<<30 + 1, RespBodyBytes: 1023<<30 + 1}
	st.Transfer = sli.Latency{Count: 1, P50: 99_999e9, P99: 99_999e9, Max: 99_999e9}
	st.Network = st.Transfer
	writeServiceLine(&buf, st)
	texts["widest"] = buf.String()
	for name, text := range texts {
		for l := range strings.SplitSeq(text, "\n") {
			if n := utf8.RuneCountInString(l); n > TextWidth && !strings.HasPrefix(l, "warning") {
				t.Errorf("%s: %d columns: %q", name, n, l)
			}
		}
	}
}

// TestSeriesAxisFromFirstBucket checks that the time axis of a series
// chart tells the time since the capture's start under each bar, when the
// first bucket starts later than the capture (the first exchange came
// 140 ms in): the tick under the first bar says 140ms, not 0.
func TestSeriesAxisFromFirstBucket(t *testing.T) {
	const ms = int64(1_000_000)
	var pts []sli.Point
	for i := int64(0); i < 10; i++ {
		pts = append(pts, sli.Point{OffsetNS: 140*ms + i*10*ms, Count: 1})
	}
	svg := string(seriesSVG(pts, 10*ms, 240*ms, 1320, 270, "test"))
	// Tick labels sit 18 px under the axis (H 270, bottom margin 44).
	labels := map[string]string{}
	for _, part := range strings.Split(svg, "<text ")[1:] {
		if !strings.Contains(part, `y="244.0"`) {
			continue
		}
		x := part[strings.Index(part, `x="`)+3:]
		x = x[:strings.IndexByte(x, '"')]
		text := part[strings.IndexByte(part, '>')+1 : strings.Index(part, "</text>")]
		labels[text] = x
	}
	// The plot runs from x 62 to 1250: 1188 px for 100 ms.
	for text, x := range map[string]string{"140ms": "62.0", "160ms": "299.6", "200ms": "774.8"} {
		if labels[text] != x {
			t.Errorf("tick %s at x %q, want %s (ticks: %v)", text, labels[text], x, labels)
		}
	}
	if _, ok := labels["0"]; ok {
		t.Errorf("a tick says 0 though the first bucket starts at 140ms: %v", labels)
	}
}
