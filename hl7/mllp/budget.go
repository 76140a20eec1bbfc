package mllp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// errBudgetExhausted is the error of the frame dropped to break a wait that could not end.
var errBudgetExhausted = errors.New("mllp: buffer budget exhausted: every connection holding buffered bytes " +
	"waited for more; the frame holding the most was dropped")

// budget is a semaphore of bytes: how many bytes of frames the connections
// of a Server may hold at once (Server.MaxBufferedBytes).
//
// A lease that finds no room waits its turn (first come, first served)
// until another lease releases bytes, its deadline passes or its context
// ends. When every lease holding bytes is waiting, none can release any and
// the wait would last until the deadlines: the waiting lease holding the
// most is then refused (errBudgetExhausted), so that the others go on.
type budget struct {
	limit int64

	mu             sync.Mutex
	used, peak     int64
	holders        int      // leases holding bytes
	waitingHolders int      // leases holding bytes and waiting for more
	waiters        []*lease // waiting leases, in arrival order
}

func newBudget(limit int64) *budget { return &budget{limit: limit} }

// stats returns the bytes held now and the most ever held at once.
func (b *budget) stats() (used, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.peak
}

// lease is one connection's share of a budget, used by one goroutine at a time.
type lease struct {
	b     *budget
	held  int64      // guarded by b.mu
	want  int64      // bytes waited for; guarded by b.mu
	ready chan error // receives the outcome of a wait: nil (granted) or errBudgetExhausted
}

func (b *budget) newLease() *lease { return &lease{b: b, ready: make(chan error, 1)} }

// acquire takes n more bytes (n <= limit), waiting until there is room, the
// deadline (if not zero) passes or ctx ends.
func (l *lease) acquire(ctx context.Context, deadline time.Time, n int64) error {
	b := l.b
	b.mu.Lock()
	if len(b.waiters) == 0 && b.used+n <= b.limit {
		b.grantLocked(l, n)
		b.mu.Unlock()
		return nil
	}
	l.want = n
	b.waiters = append(b.waiters, l)
	if l.held > 0 {
		b.waitingHolders++
	}
	b.breakDeadlockLocked()
	b.mu.Unlock()

	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	var err error
	select {
	case err = <-l.ready:
		return err
	case <-ctx.Done():
		err = ctx.Err()
	case <-timeout:
		err = os.ErrDeadlineExceeded
	}
	b.mu.Lock()
	if !b.removeWaiterLocked(l) {
		b.mu.Unlock()
		return <-l.ready // granted or refused meanwhile
	}
	b.settleLocked()
	b.mu.Unlock()
	return fmt.Errorf("mllp: wait for room among the buffered bytes: %w", err)
}

// release gives back n of the bytes l holds.
func (l *lease) release(n int64) {
	if n == 0 {
		return
	}
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	l.held -= n
	if l.held == 0 {
		b.holders--
	}
	b.settleLocked()
}

func (b *budget) grantLocked(l *lease, n int64) {
	b.used += n
	b.peak = max(b.peak, b.used)
	if l.held == 0 {
		b.holders++
	}
	l.held += n
}

// settleLocked serves the waiters there is room for, in order, then breaks a deadlock.
func (b *budget) settleLocked() {
	for len(b.waiters) > 0 && b.used+b.waiters[0].want <= b.limit {
		l, n := b.waiters[0], b.waiters[0].want
		b.removeWaiterLocked(l)
		b.grantLocked(l, n)
		l.ready <- nil
	}
	b.breakDeadlockLocked()
}

// breakDeadlockLocked refuses the waiting lease holding the most when every
// lease holding bytes waits (none would ever release any).
func (b *budget) breakDeadlockLocked() {
	if b.holders == 0 || b.waitingHolders < b.holders {
		return
	}
	var victim *lease
	for _, l := range b.waiters {
		if victim == nil || l.held > victim.held {
			victim = l
		}
	}
	b.removeWaiterLocked(victim)
	victim.ready <- errBudgetExhausted
	// The victim no longer waits: no deadlock until it releases; the
	// waiters behind it may fit now.
	b.settleLocked()
}

// removeWaiterLocked removes l from the waiters; false if it was not waiting.
func (b *budget) removeWaiterLocked(l *lease) bool {
	for i, w := range b.waiters {
		if w == l {
			b.waiters = slices.Delete(b.waiters, i, i+1)
			if l.held > 0 {
				b.waitingHolders--
			}
			l.want = 0
			return true
		}
	}
	return false
}
