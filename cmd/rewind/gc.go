package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"sync"
)

// firstGCHeap is how much memory the runtime may hold before analyze's
// first garbage collection (see deferFirstGC).
const firstGCHeap = 32 << 20

// deferFirstGC holds the garbage collector back until the process holds
// firstGCHeap, then hands it back to the default pacing (GOGC=100) for the
// rest of the run.
//
// By default the first collection comes at a 4 MiB heap, a few
// milliseconds into any analysis, and it costs far more than its heap
// suggests: each cycle scans the binary's global variables, over 5 MB of
// them with pointers (dependency tables), which then fault into memory.
// On 120,000 small exchanges that one cycle was a tenth of the CPU time.
// An analysis that allocates little (the replay reuses its memory) now
// never collects; a larger one collects from 32 MiB on as before, so its
// peak memory, set by what it keeps live, does not change.
//
// A GOGC or GOMEMLIMIT in the environment is the user's choice and is left
// alone. Only a process's first call does anything (tests run analyses
// one after another in one process).
func deferFirstGC() {
	firstGC.Do(func() {
		if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
			return
		}
		gogc := debug.SetGCPercent(-1)
		limit := debug.SetMemoryLimit(firstGCHeap)
		// The first collection finds the sentinel unreachable and runs
		// the cleanup, which restores the pacing.
		runtime.AddCleanup(new(gcSentinel), func(struct{}) {
			debug.SetGCPercent(gogc)
			debug.SetMemoryLimit(limit)
		}, struct{}{})
	})
}

var firstGC sync.Once

// gcSentinel is an object whose collection marks the first GC cycle. It
// holds a pointer so that it is not a tiny allocation, which would share
// its memory (and its reachability) with other objects.
type gcSentinel struct{ _ *byte }
