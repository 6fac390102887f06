package line_test

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/format/line"
)

// TestLines replays the sample capture: one line per exchange, each with
// the columns the package documents.
func TestLines(t *testing.T) {
	in, err := analyze.Open("../../testdata/sample.rwd")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var out bytes.Buffer
	sum, err := analyze.Replay(context.Background(), in.Source, in.Info, analyze.Options{}, line.New(&out))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != sum.Exchanges {
		t.Fatalf("%d lines for %d exchanges", len(lines), sum.Exchanges)
	}
	shape := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{6}  (server|client|unknown) \S+\[\d+\]  \S+ → \S+  [A-Z]+ \S+  (\d{3}|-)  \d+(\.\d)? (B|KiB|MiB)  (\d+\.\d{3}ms|-)(  [a-z_,]+)?$`)
	for _, l := range lines {
		if !shape.MatchString(l) {
			t.Errorf("line %q does not have the documented shape", l)
		}
	}
	if want := "03:46:29.659971  server rewind[6985]  127.0.0.1:37450 → 127.0.0.1:44767  GET 127.0.0.1:44767/api/users/759  200  41 B  0.172ms"; lines[0] != want {
		t.Errorf("first line\n %q\nwant\n %q", lines[0], want)
	}
}
