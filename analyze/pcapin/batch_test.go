package pcapin

import (
	"testing"

	"github.com/rewind-tools/rewind/capture"
)

// TestBatchArenaNoSpill feeds a batch loopback-sized payloads (32 and 64
// KiB, as tcpdump on lo records them) the way the producer does, one packet
// and then a check of full: none may be copied out of the arena.
func TestBatchArenaNoSpill(t *testing.T) {
	b := newBatch()
	sizes := []int{32 << 10, 64 << 10, 100, 64<<10 - 1, 32 << 10, 64 << 10, 64 << 10}
	for i := 0; !b.full(); i++ {
		b.add(&capture.Data{Payload: make([]byte, sizes[i%len(sizes)])})
	}
	if b.spilled {
		t.Fatalf("a payload spilled to the heap with %d of %d arena bytes used", len(b.arena), cap(b.arena))
	}
	// A payload too large for what is left (a jumbo frame) spills, and
	// ends the batch.
	b.reset()
	b.add(&capture.Data{Payload: make([]byte, 100)})
	b.add(&capture.Data{Payload: make([]byte, batchArena)})
	if !b.spilled || !b.full() {
		t.Fatalf("spilled %v full %v", b.spilled, b.full())
	}
}
