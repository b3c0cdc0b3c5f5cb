package web

import (
	"autopilotdesk/devtools/testkit"
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowWriter counts the writes it gets and takes a while over each, as a busy pipe does.
type slowWriter struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(200 * time.Microsecond)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.b.Write(p)
}

func TestLogWriterKeepsEveryLineInOrderInFewWrites(t *testing.T) {
	out := &slowWriter{}
	l := NewLogWriter(out)
	const writers, lines = 32, 200
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(l, "g%d line %d\n", g, i)
			}
		})
	}
	wg.Wait()
	l.Close()
	fmt.Fprintf(l, "after close\n") // still written, straight through

	got := strings.Split(strings.TrimSuffix(out.b.String(), "\n"), "\n")
	if len(got) != writers*lines+1 || got[len(got)-1] != "after close" {
		t.Fatalf("got %d lines, want %d and the line written after Close last", len(got), writers*lines+1)
	}
	next := make([]int, writers)
	for _, line := range got[:len(got)-1] {
		var g, i int
		if _, err := fmt.Sscanf(line, "g%d line %d", &g, &i); err != nil {
			t.Fatalf("a line was cut or merged: %q", line)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d came where line %d was due", g, i, next[g])
		}
		next[g]++
	}
	if out.writes > writers*lines/4 {
		t.Errorf("%d lines took %d writes: they were not gathered", writers*lines, out.writes)
	}
}

func TestLogWriterWritesAnIdleLineAtOnce(t *testing.T) {
	out := &slowWriter{}
	l := NewLogWriter(out)
	defer l.Close()
	fmt.Fprintf(l, "one\n")
	deadline := time.Now().Add(2 * time.Second)
	for {
		out.mu.Lock()
		n := out.b.Len()
		out.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a line written to an idle log was not written within 2 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Lines written while the writer closes, as the desk's goroutines still log during shutdown,
// are all kept and never crash it (a wake-up sent after Close closed its channel would panic).
func TestLogWriterClosesUnderConcurrentWrites(t *testing.T) {
	for range 200 {
		var out testkit.Buffer
		l := NewLogWriter(&out)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range 8 {
			wg.Go(func() {
				<-start
				for i := range 20 {
					fmt.Fprintf(l, "line %d-%d\n", g, i)
				}
			})
		}
		close(start)
		l.Close()
		wg.Wait()
		if n := strings.Count(out.String(), "\n"); n != 160 {
			t.Fatalf("%d of 160 lines written", n)
		}
	}
}
