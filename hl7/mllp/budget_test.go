package mllp

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// budgetBundle is a budget and its leases.
type budgetBundle struct {
	b      *budget
	leases []*lease
}

func setupBudget(t *testing.T, limit int64, leases int) *budgetBundle {
	t.Helper()
	bb := &budgetBundle{b: newBudget(limit)}
	for range leases {
		bb.leases = append(bb.leases, bb.b.newLease())
	}
	return bb
}

// acquireAsync starts l.acquire(n) and waits until it is granted or queued.
func (bb *budgetBundle) acquireAsync(t *testing.T, ctx context.Context, deadline time.Time, l *lease, n int64) <-chan error {
	t.Helper()
	bb.b.mu.Lock()
	held := l.held
	bb.b.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- l.acquire(ctx, deadline, n) }()
	require.Eventually(t, func() bool {
		bb.b.mu.Lock()
		defer bb.b.mu.Unlock()
		return l.want > 0 || l.held > held || len(done) > 0
	}, 5*time.Second, time.Millisecond)
	return done
}

func (bb *budgetBundle) requireUsed(t *testing.T, want int64) {
	t.Helper()
	used, peak := bb.b.stats()
	require.Equal(t, want, used)
	require.LessOrEqual(t, peak, bb.b.limit)
}

func requireWaiting(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("acquire returned %v, want it waiting", err)
	case <-time.After(20 * time.Millisecond):
	}
}

func requireDone(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("acquire still waiting")
		return nil
	}
}

func TestBudgetGrantAndRelease(t *testing.T) {
	t.Parallel()

	bb := setupBudget(t, 10, 2)
	a, b := bb.leases[0], bb.leases[1]
	require.NoError(t, a.acquire(context.Background(), time.Time{}, 6))
	require.NoError(t, b.acquire(context.Background(), time.Time{}, 4))
	bb.requireUsed(t, 10)
	a.release(6)
	b.release(4)
	bb.requireUsed(t, 0)
	require.Zero(t, bb.b.holders)
}

func TestBudgetWaitersServedInOrder(t *testing.T) {
	t.Parallel()

	bb := setupBudget(t, 10, 3)
	a, b, c := bb.leases[0], bb.leases[1], bb.leases[2]
	ctx := context.Background()
	require.NoError(t, a.acquire(ctx, time.Time{}, 8))
	bDone := bb.acquireAsync(t, ctx, time.Time{}, b, 5)
	cDone := bb.acquireAsync(t, ctx, time.Time{}, c, 1) // there is room, but b came first
	requireWaiting(t, bDone)
	requireWaiting(t, cDone)

	a.release(8)
	require.NoError(t, requireDone(t, bDone))
	require.NoError(t, requireDone(t, cDone))
	bb.requireUsed(t, 6)
}

func TestBudgetWaitEnds(t *testing.T) {
	t.Parallel()

	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		bb := setupBudget(t, 10, 3)
		a, b, c := bb.leases[0], bb.leases[1], bb.leases[2]
		ctx := context.Background()
		require.NoError(t, a.acquire(ctx, time.Time{}, 6))
		bDone := bb.acquireAsync(t, ctx, time.Now().Add(50*time.Millisecond), b, 5)
		cDone := bb.acquireAsync(t, ctx, time.Time{}, c, 4) // fits, but behind b
		require.ErrorIs(t, requireDone(t, bDone), os.ErrDeadlineExceeded)
		require.NoError(t, requireDone(t, cDone), "served once b gave up")
		bb.requireUsed(t, 10)
	})
	t.Run("context", func(t *testing.T) {
		t.Parallel()
		bb := setupBudget(t, 10, 2)
		a, b := bb.leases[0], bb.leases[1]
		ctx, cancel := context.WithCancel(context.Background())
		require.NoError(t, a.acquire(ctx, time.Time{}, 10))
		bDone := bb.acquireAsync(t, ctx, time.Time{}, b, 1)
		cancel()
		require.ErrorIs(t, requireDone(t, bDone), context.Canceled)
		a.release(10)
		bb.requireUsed(t, 0)
		require.Empty(t, bb.b.waiters)
	})
}

func TestBudgetDeadlockBroken(t *testing.T) {
	t.Parallel()

	bb := setupBudget(t, 10, 4)
	a, b, c, d := bb.leases[0], bb.leases[1], bb.leases[2], bb.leases[3]
	ctx := context.Background()
	require.NoError(t, a.acquire(ctx, time.Time{}, 3))
	require.NoError(t, b.acquire(ctx, time.Time{}, 5))
	require.NoError(t, c.acquire(ctx, time.Time{}, 2))
	dDone := bb.acquireAsync(t, ctx, time.Time{}, d, 1) // holds nothing: never the victim
	aDone := bb.acquireAsync(t, ctx, time.Time{}, a, 3)
	cDone := bb.acquireAsync(t, ctx, time.Time{}, c, 3)
	requireWaiting(t, dDone)
	requireWaiting(t, aDone)
	requireWaiting(t, cDone) // b, a holder, still reads: it may release

	// b waits too: nobody would ever release; b, holding the most, gives up.
	bDone := bb.acquireAsync(t, ctx, time.Time{}, b, 1)
	require.ErrorIs(t, requireDone(t, bDone), errBudgetExhausted)
	requireWaiting(t, dDone)
	b.release(5)
	require.NoError(t, requireDone(t, dDone))
	require.NoError(t, requireDone(t, aDone))
	requireWaiting(t, cDone) // no room yet, but a and d, served, may release
	a.release(6)
	require.NoError(t, requireDone(t, cDone))
	bb.requireUsed(t, 1+2+3)
}

func TestBudgetDeadlockAfterRelease(t *testing.T) {
	t.Parallel()

	// a and b wait while c, which does not, holds the rest; when c leaves
	// without making room enough, a, holding the most, gives up.
	bb := setupBudget(t, 10, 3)
	a, b, c := bb.leases[0], bb.leases[1], bb.leases[2]
	ctx := context.Background()
	require.NoError(t, a.acquire(ctx, time.Time{}, 5))
	require.NoError(t, b.acquire(ctx, time.Time{}, 4))
	require.NoError(t, c.acquire(ctx, time.Time{}, 1))
	aDone := bb.acquireAsync(t, ctx, time.Time{}, a, 5)
	bDone := bb.acquireAsync(t, ctx, time.Time{}, b, 5)
	c.release(1)
	require.ErrorIs(t, requireDone(t, aDone), errBudgetExhausted)
	requireWaiting(t, bDone)
	a.release(5)
	require.NoError(t, requireDone(t, bDone))
	bb.requireUsed(t, 9)
}
