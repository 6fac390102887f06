//go:build linux

package record

import (
	"math/rand/v2"
	"testing"

	"github.com/rewind-tools/rewind/capture"
)

// TestEventHeapOrder checks the reorder heap against a linear scan: with
// pushes and pops interleaved as the session does them, every pop returns
// the earliest queued event, ties in arrival order.
func TestEventHeapOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h eventHeap
	var live []pendingEvent // the reference: what is queued, unordered
	seq, popped := uint64(0), 0
	pop := func() {
		min := 0
		for i := range live {
			if live[i].before(&live[min]) {
				min = i
			}
		}
		got := h.pop()
		if got.seq != live[min].seq {
			t.Fatalf("pop %d: got seq %d (t=%d), want seq %d (t=%d)", popped, got.seq, got.t, live[min].seq, live[min].t)
		}
		live = append(live[:min], live[min+1:]...)
		popped++
	}
	for range 300 {
		for range r.IntN(50) {
			seq++
			ts := uint64(r.IntN(100)) // many ties
			p := pendingEvent{ev: &capture.Close{Timestamp: ts}, t: ts, seq: seq}
			live = append(live, p)
			h.push(p)
		}
		for k := r.IntN(45); k > 0 && len(live) > 0; k-- {
			pop()
		}
	}
	for len(live) > 0 {
		pop()
	}
	if len(h) != 0 || popped != int(seq) {
		t.Fatalf("heap left %d, popped %d of %d", len(h), popped, seq)
	}
}
