//go:build linux

package record

import (
	"math/rand/v2"
	"testing"

	"github.com/rewind-tools/rewind/capture"
)

// earliest is the reference order: the index of the event a queue must
// give next, by a linear scan.
func earliest(live []pendingEvent) int {
	min := 0
	for i := range live {
		if live[i].before(&live[min]) {
			min = i
		}
	}
	return min
}

// TestEventHeapOrder checks the reorder heap against a linear scan: with
// pushes and pops interleaved as the session does them, every pop returns
// the earliest queued event, ties in arrival order.
func TestEventHeapOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h eventHeap
	var live []pendingEvent // the reference: what is queued, unordered
	seq, popped := uint64(0), 0
	pop := func() {
		min := earliest(live)
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

// TestEventQueueOrder checks the FIFO-plus-heap queue against a linear scan
// on the ring's shape: timestamps mostly rising, with stragglers up to a
// few steps late and many ties.
func TestEventQueueOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var q eventQueue
	var live []pendingEvent
	seq, popped, now := uint64(0), 0, uint64(1000)
	pop := func() {
		min := earliest(live)
		if pk := q.peek(); pk.seq != live[min].seq {
			t.Fatalf("peek %d: got seq %d (t=%d), want seq %d (t=%d)", popped, pk.seq, pk.t, live[min].seq, live[min].t)
		}
		got := q.pop()
		if got.seq != live[min].seq {
			t.Fatalf("pop %d: got seq %d (t=%d), want seq %d (t=%d)", popped, got.seq, got.t, live[min].seq, live[min].t)
		}
		live = append(live[:min], live[min+1:]...)
		popped++
	}
	for range 2000 {
		for range r.IntN(40) {
			seq++
			now += uint64(r.IntN(3))
			ts := now
			if r.IntN(8) == 0 {
				ts -= uint64(r.IntN(20)) // a straggler from another CPU
			}
			p := pendingEvent{t: ts, seq: seq}
			live = append(live, p)
			q.push(p)
		}
		for k := r.IntN(40); k > 0 && len(live) > 0; k-- {
			pop()
		}
		if q.len() != len(live) {
			t.Fatalf("len %d, want %d", q.len(), len(live))
		}
	}
	for len(live) > 0 {
		pop()
	}
	if q.len() != 0 || popped != int(seq) {
		t.Fatalf("queue left %d, popped %d of %d", q.len(), popped, seq)
	}
}

// TestArenaReuse checks that records stay intact while others are added
// and released, and that a steady window reuses its chunks instead of
// growing. Records come as the recorder adds them: read into the arena's
// room and kept there, read into a buffer elsewhere (a record the room
// could not take) and kept as a copy, or copied.
func TestArenaReuse(t *testing.T) {
	var a arena
	type held struct {
		b    []byte
		c    *chunk
		want byte
	}
	var window []held
	chunks := map[*chunk]bool{}
	rec := make([]byte, 3000)
	for i := range 20000 {
		for j := range rec {
			rec[j] = byte(i)
		}
		n := 1 + i%len(rec)
		var b []byte
		var c *chunk
		switch i % 3 {
		case 0:
			b, c = a.copy(rec[:n])
		case 1:
			room := a.room(len(rec))
			if cap(room) < len(rec) {
				t.Fatalf("room of %d bytes, asked for %d", cap(room), len(rec))
			}
			b, c = a.keep(append(room[:0], rec[:n]...))
			if &b[0] != &room[0] {
				t.Fatalf("record %d read into the room was copied", i)
			}
		case 2:
			a.room(len(rec))
			b, c = a.keep(rec[:n])
			if &b[0] == &rec[0] {
				t.Fatalf("record %d from outside the arena was kept, not copied", i)
			}
		}
		chunks[c] = true
		window = append(window, held{b, c, byte(i)})
		if len(window) > 500 { // about 750 KB live
			h := window[0]
			window = window[1:]
			for _, x := range h.b {
				if x != h.want {
					t.Fatalf("copy %d overwritten while held", h.want)
				}
			}
			a.release(h.c)
		}
	}
	if len(chunks) > 4 {
		t.Errorf("a window of ~750 KB used %d chunks of %d bytes; want them reused", len(chunks), chunkSize)
	}
	big := make([]byte, chunkSize+1)
	if b, _ := a.copy(big); len(b) != len(big) {
		t.Errorf("large copy has %d bytes, want %d", len(b), len(big))
	}
}
