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
		{3000, 30 * ms, minPoll}, // the rate falls
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

// TestPollSettles models the reader loop at a steady record rate: a drain
// reads what the ring holds, up to drainBatch, and when the ring is empty
// waits out the interval (the programs' wake-ups left aside) and reads
// what came meanwhile. Whether it starts at minPoll or maxPoll (after an
// idle spell), the interval settles at minPoll below highRate and at
// maxPoll above it. With a batch smaller than highRate × maxPoll, a drain
// after a maxPoll wait is cut short and understates the rate, and the
// interval swings between the two from 93k records/s up.
func TestPollSettles(t *testing.T) {
	for _, rate := range []float64{1_000, 20_000, 80_000, 95_000, 150_000, 190_000, 250_000, 400_000} {
		want := minPoll
		if rate >= highRate {
			want = maxPoll
		}
		for _, start := range []time.Duration{minPoll, maxPoll} {
			poll, backlog := start, 0.0
			var now, drained time.Duration
			wrong := 0
			for i := range 60 {
				n := min(backlog, drainBatch)
				backlog -= n
				if n < drainBatch {
					now += poll
					backlog += rate * poll.Seconds()
					m := min(backlog, drainBatch-n)
					n, backlog = n+m, backlog-m
				}
				poll, drained = nextPoll(poll, int(n), now-drained), now
				if i >= 20 && poll != want {
					wrong++
				}
			}
			if wrong > 0 {
				t.Errorf("%.0f records/s from %v: poll not %v in %d of the last 40 drains", rate, start, want, wrong)
			}
		}
	}
}
