package main

import "runtime/debug"

// The garbage collector's pace. A page view allocates about 7 kB, and a desk's live heap is a
// few megabytes, so under Go's default (GOGC=100) a busy desk collects dozens of times a second:
// a fifth of the CPU a page costs, in the profile of the bench's wrk step. The desk lets its heap
// grow to five times its live data between collections instead, and sets a soft limit, so a
// large import (whose live data is tens of megabytes) collects as often as it must to stay
// near the limit rather than growing five-fold. GOGC and GOMEMLIMIT, when set, win.
const (
	gcPercent   = 400
	memoryLimit = 48 << 20
)

func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}
