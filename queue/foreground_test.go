package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestForegroundYield checks that a job yields to work in progress until it
// ends, never longer than its bound, and not at all when there is none.
func TestForegroundYield(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var f Foreground

	began := time.Now()
	f.Yield(ctx, time.Hour)
	require.Less(t, time.Since(began), time.Second, "nothing in progress: no wait")

	leave := f.Enter()
	other := f.Enter()
	done := make(chan struct{})
	go func() { f.Yield(ctx, time.Hour); close(done) }()
	other()
	other() // a second call changes nothing
	select {
	case <-done:
		t.Fatal("a job yielded less than the work in progress")
	case <-time.After(50 * time.Millisecond):
	}
	leave()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the job still waits once the work ended")
	}

	defer f.Enter()()
	began = time.Now()
	f.Yield(ctx, 20*time.Millisecond)
	require.GreaterOrEqual(t, time.Since(began), 20*time.Millisecond, "the bound is waited out")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	f.Yield(cancelled, time.Hour) // returns: the job's context ended

	var none *Foreground
	none.Enter()()
	none.Yield(ctx, time.Hour)
}
