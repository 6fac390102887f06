package analyze_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/format/jsonl"
)

// waitingSource says it is waiting before every event, as a followed
// capture whose recorder writes an event at a time would.
type waitingSource struct {
	src  analyze.EventSource
	wait bool
}

func (w *waitingSource) Next() (capture.Event, error) {
	if w.wait = !w.wait; w.wait {
		return nil, analyze.ErrWaiting
	}
	return w.src.Next()
}

func (w *waitingSource) InSnapshot() bool {
	s, ok := w.src.(interface{ InSnapshot() bool })
	return ok && s.InSnapshot()
}

func (w *waitingSource) Stats() *capture.Stats { return w.src.(*capture.Reader).Stats() }

// TestWaitingKeepsExchanges: a replay told to wait (and so to release its
// reorder window and flush its outputs) between every two events gives
// the exchanges of one that read the file at once — what --follow relies
// on while a recording grows.
func TestWaitingKeepsExchanges(t *testing.T) {
	for _, name := range []string{"sample.rwd", "curl-nginx.rwd", "pipelining-nginx.rwd"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile("../testdata/" + name)
			if err != nil {
				t.Fatal(err)
			}
			run := func(wait bool) string {
				in, err := analyze.OpenReader(bytes.NewReader(b), name)
				if err != nil {
					t.Fatal(err)
				}
				defer in.Close()
				var src analyze.EventSource = in.Source
				if wait {
					src = &waitingSource{src: src}
				}
				var out bytes.Buffer
				if _, err := analyze.Replay(context.Background(), src, in.Info, analyze.Options{}, jsonl.New(&out)); err != nil {
					t.Fatal(err)
				}
				return out.String()
			}
			want, got := run(false), run(true)
			if got != want {
				t.Errorf("waiting between events changed the exchanges:\n got %d bytes\nwant %d bytes", len(got), len(want))
			}
		})
	}
}
