package main

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"
)

// TestDeferFirstGC: the collector stays off until the heap reaches
// firstGCHeap; the first collection (here forced by the memory limit)
// gives the default pacing back.
func TestDeferFirstGC(t *testing.T) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOGC or GOMEMLIMIT set: deferFirstGC leaves them alone")
	}
	t.Cleanup(func() {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
	})
	// As in a new process: the analyses of other tests have had their
	// first collection (any cleanup pending runs now), and the pacing is
	// the default.
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
	firstGC = sync.Once{}
	deferFirstGC()
	// gcPercent reads the setting (SetGCPercent returns the old one).
	gcPercent := func() int {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p
	}
	if p := gcPercent(); p != -1 {
		t.Fatalf("GOGC %d after deferFirstGC, want off", p)
	}
	var sink []byte
	deadline := time.Now().Add(10 * time.Second)
	for gcPercent() != 100 {
		if time.Now().After(deadline) {
			t.Fatal("the pacing was not restored after allocating past the limit")
		}
		// Garbage, 1 MiB at a time, until the limit forces a collection.
		sink = make([]byte, 1<<20)
		sink[0] = 1
		time.Sleep(time.Millisecond)
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("memory limit %d after the first collection, want none", l)
	}
	_ = sink
}
