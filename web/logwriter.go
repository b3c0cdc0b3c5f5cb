package web

import (
	"io"
	"sync"
	"time"
)

// LogWriter passes log lines to w from a goroutine of its own, which writes everything that
// gathered since its last write in one call, at most one write per logPace. A desk under load
// logs every request, and one write per line would cost a system call per request; this costs
// at most 200 a second, and an idle desk's line goes out at once. Lines keep their order. Close writes what is left; lines written after
// Close go straight to w.
type LogWriter struct {
	w       io.Writer
	mu      sync.Mutex // guards pending and closed
	pending []byte
	closed  bool
	flushMu sync.Mutex // one flush at a time, in order
	spare   []byte     // guarded by flushMu
	wake    chan struct{}
	done    chan struct{}
}

// maxPendingLog is how much may wait; past it a writer flushes itself, so a stalled output
// holds back the desk instead of growing its memory.
const maxPendingLog = 1 << 20

// NewLogWriter starts the goroutine that writes to w.
func NewLogWriter(w io.Writer) *LogWriter {
	l := &LogWriter{w: w, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go l.run()
	return l
}

// logPace is the least time between two writes: lines arriving meanwhile go out together.
const logPace = 5 * time.Millisecond

func (l *LogWriter) run() {
	defer close(l.done)
	var last time.Time
	for range l.wake {
		if wait := logPace - time.Since(last); wait > 0 {
			time.Sleep(wait)
		}
		last = time.Now()
		l.flush()
	}
	l.flush()
}

// Write queues p (a whole log line, as slog writes them) and wakes the writing goroutine.
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.flushMu.Lock()
		defer l.flushMu.Unlock()
		return l.w.Write(p)
	}
	l.pending = append(l.pending, p...)
	if len(l.pending) >= maxPendingLog {
		l.mu.Unlock()
		l.flush()
		return len(p), nil
	}
	// Woken under the lock Close takes before it closes the channel: never a send on a closed one.
	select {
	case l.wake <- struct{}{}:
	default: // already woken: this line goes with the others
	}
	l.mu.Unlock()
	return len(p), nil
}

// flush writes what has gathered.
func (l *LogWriter) flush() {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	out := l.pending
	l.pending = l.spare[:0]
	l.mu.Unlock()
	if len(out) > 0 {
		_, _ = l.w.Write(out) // a log that cannot be written has nowhere to say so
	}
	if cap(out) <= maxPendingLog {
		l.spare = out
	} else {
		l.spare = nil
	}
}

// Close writes every line queued so far and stops the goroutine.
func (l *LogWriter) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.wake)
	<-l.done
	return nil
}
