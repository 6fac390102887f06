//go:build linux

package record

import (
	"testing"
	"time"
)

// TestNextPoll follows the reader's poll interval through a recording's
// phases: idle, a moderate rate, a high rate, and back. It is the rate
// that decides, not the count: a drain after a long wait holds many
// records at a moderate rate.
func TestNextPoll(t *testing.T) {
	ms := time.Millisecond
	steps := []struct {
		read int
		over time.Duration
		want time.Duration
	}{
		{0, 5 * ms, 10 * ms}, // idle from the start: back off
		{0, 10 * ms, 20 * ms},
		{0, 20 * ms, 40 * ms},
		{0, 40 * ms, maxPoll}, // and no further
		{0, 50 * ms, maxPoll},
		{4000, 50 * ms, minPoll}, // 80k records/s after the long wait: small batches
		{400, 5 * ms, minPoll},
		{999, 5 * ms, minPoll},
		{1000, 5 * ms, maxPoll}, // 200k/s: big batches, paced by the programs' wake-ups
		{4096, 10 * ms, maxPoll},
		{4096, 30 * ms, minPoll}, // the rate falls
		{3, 5 * ms, minPoll},
		{0, 5 * ms, 2 * minPoll},
		{1, 0, maxPoll}, // no time: as fast as can be
	}
	poll := minPoll
	for i, s := range steps {
		poll = nextPoll(poll, s.read, s.over)
		if poll != s.want {
			t.Fatalf("step %d (%d records over %v): poll %v, want %v", i, s.read, s.over, poll, s.want)
		}
	}
}
