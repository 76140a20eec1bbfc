package queue

import (
	"context"
	"sync"
	"time"
)

// Foreground counts the work someone is waiting for, such as a report being
// received while the DPI waits for its ACK, so that the jobs of the same
// process can let it go first: a DPI sends one message at a time and waits
// for each answer, and on a small machine the CPU the jobs take meanwhile
// is latency on the DPI's whole queue. The zero value is ready; a nil
// *Foreground counts nothing and never waits.
type Foreground struct {
	mu sync.Mutex
	// active is the work in progress, running the jobs' parts under way
	// (Background).
	active, running int
	// left is when the last work in progress ended.
	left time.Time
	// changed is closed, and forgotten, when either count falls: the jobs
	// waiting look again.
	changed chan struct{}
}

// Enter records work in progress until leave is called (once).
func (f *Foreground) Enter() (leave func()) {
	if f == nil {
		return func() {}
	}
	f.mu.Lock()
	f.active++
	f.mu.Unlock()
	return f.once(func() {
		if f.active--; f.active == 0 {
			f.left = time.Now()
		}
	})
}

// BackgroundShare is how many of the jobs' parts run at once while work is
// in progress: one, so that on a machine of two CPUs the other is the
// foreground's.
const BackgroundShare = 1

// Grace is how long the foreground counts as in progress after its last
// work ended: a DPI sends its next message as soon as it has the ACK of the
// one before, and the jobs waiting should not all start in between.
const Grace = 20 * time.Millisecond

// Background waits, for at most max (or until ctx ends), until no work is in
// progress (nor was within Grace) or fewer than BackgroundShare parts of
// jobs run, then counts the caller's part until done is called (once): a job
// wraps each of its CPU-heavy parts in it. It returns at once when no work
// is in progress, and never holds a job longer than max, so that jobs go on
// under a steady intake.
func (f *Foreground) Background(ctx context.Context, max time.Duration) (done func()) {
	if f == nil {
		return func() {}
	}
	deadline := time.Now().Add(max)
	f.mu.Lock()
	for f.running >= BackgroundShare && ctx.Err() == nil {
		now := time.Now()
		wake := deadline
		if quiet := f.left.Add(Grace); f.active == 0 && quiet.Before(wake) {
			wake = quiet
		}
		if !now.Before(wake) {
			break
		}
		if f.changed == nil {
			f.changed = make(chan struct{})
		}
		changed := f.changed
		f.mu.Unlock()
		t := time.NewTimer(wake.Sub(now))
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		f.mu.Lock()
	}
	f.running++
	f.mu.Unlock()
	return f.once(func() { f.running-- })
}

// once returns a func that applies fall, under the lock, the first time it
// is called, and wakes the jobs waiting.
func (f *Foreground) once(fall func()) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			fall()
			if f.changed != nil {
				close(f.changed)
				f.changed = nil
			}
			f.mu.Unlock()
		})
	}
}
