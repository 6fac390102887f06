//go:build linux

package record

import (
	"testing"
	"time"
)

// TestNextPoll follows the reader's poll interval through a recording's
// phases: idle, a moderate rate, a high rate, and idle again.
func TestNextPoll(t *testing.T) {
	steps := []struct {
		read int
		want time.Duration
	}{
		{0, 10 * time.Millisecond}, // idle from the start: back off
		{0, 20 * time.Millisecond},
		{0, 40 * time.Millisecond},
		{0, maxPoll}, // and no further
		{0, maxPoll},
		{3, minPoll}, // records: small batches
		{bigDrain - 1, minPoll},
		{bigDrain, maxPoll}, // a high rate: big batches, paced by the programs' wake-ups
		{4096, maxPoll},
		{200, minPoll}, // the rate falls
		{0, 2 * minPoll},
	}
	poll := minPoll
	for i, s := range steps {
		poll = nextPoll(poll, s.read)
		if poll != s.want {
			t.Fatalf("step %d (%d records read): poll %v, want %v", i, s.read, poll, s.want)
		}
	}
}
