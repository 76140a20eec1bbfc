package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestForegroundBackground checks that the jobs' parts run freely when
// nothing is in progress; that while work is, BackgroundShare of them run
// and the others wait until one ends or the work has ended for Grace, never
// longer than their bound.
func TestForegroundBackground(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var f Foreground
	quick := func(max time.Duration) func() {
		t.Helper()
		began := time.Now()
		done := f.Background(ctx, max)
		require.Less(t, time.Since(began), time.Second, "no wait")
		return done
	}
	waiting := func() chan func() {
		parts := make(chan func(), 1)
		go func() { parts <- f.Background(ctx, time.Hour) }()
		return parts
	}
	waits := func(parts chan func(), what string) {
		t.Helper()
		select {
		case <-parts:
			t.Fatal("a job's part did not wait " + what)
		case <-time.After(50 * time.Millisecond):
		}
	}
	goesOn := func(parts chan func(), what string) func() {
		t.Helper()
		select {
		case done := <-parts:
			return done
		case <-time.After(10 * time.Second):
			t.Fatal("a job's part still waits " + what)
			return nil
		}
	}

	a, b := quick(time.Hour), quick(time.Hour) // nothing in progress: any number
	leave := f.Enter()
	other := f.Enter()
	third := waiting()
	waits(third, "while work is in progress and two parts run")
	a()
	a() // a second call changes nothing
	waits(third, "while work is in progress and one part runs")
	b()
	c := goesOn(third, "once no other part runs")
	fourth := waiting()
	waits(fourth, "while its share runs")
	other()
	waits(fourth, "while some work is still in progress")
	ended := time.Now()
	leave()
	d := goesOn(fourth, "once the work ended")
	require.GreaterOrEqual(t, time.Since(ended), Grace, "the parts wait out the grace after the work")
	c()
	d()

	defer f.Enter()()
	defer quick(time.Hour)() // the share, taken
	began := time.Now()
	f.Background(ctx, 20*time.Millisecond)()
	require.GreaterOrEqual(t, time.Since(began), 20*time.Millisecond, "the bound is waited out")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	f.Background(cancelled, time.Hour)() // returns: the job's context ended

	var none *Foreground
	none.Enter()()
	none.Background(ctx, time.Hour)()
}
