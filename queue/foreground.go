package queue

import (
	"context"
	"sync"
	"time"
)

// Foreground counts the work someone is waiting for, such as a report being
// received while the DPI waits for its ACK, so that the jobs of the same
// process can let it go first: a DPI sends one message at a time and waits
// for each answer, and on a small machine the CPU a job takes meanwhile is
// latency on the DPI's whole queue. The zero value is ready; a nil
// *Foreground counts nothing and never waits.
type Foreground struct {
	mu     sync.Mutex
	active int
	idle   chan struct{} // closed when active comes back to 0
}

// Enter records work in progress until leave is called (once).
func (f *Foreground) Enter() (leave func()) {
	if f == nil {
		return func() {}
	}
	f.mu.Lock()
	if f.active == 0 {
		f.idle = make(chan struct{})
	}
	f.active++
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			if f.active--; f.active == 0 {
				close(f.idle)
			}
			f.mu.Unlock()
		})
	}
}

// Yield waits until no work is in progress, for at most max (or until ctx
// ends): a job calls it before its CPU-heavy part. It returns at once when
// there is none, and never holds a job longer than max, so that jobs go on
// under a steady intake.
func (f *Foreground) Yield(ctx context.Context, max time.Duration) {
	if f == nil {
		return
	}
	f.mu.Lock()
	if f.active == 0 {
		f.mu.Unlock()
		return
	}
	idle := f.idle
	f.mu.Unlock()
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	case <-ctx.Done():
	}
}
