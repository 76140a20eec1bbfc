package queue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/internal/queuetest"
	"github.com/mssdispatch/mssdispatch/queue"
)

type snoozeArgs struct {
	N int `json:"n"`
}

func (snoozeArgs) Kind() string { return "test_snooze" }

// snoozeWorker snoozes each job for an hour the first time it runs, as the
// send job does while its domain is blocked, and records every run.
type snoozeWorker struct {
	river.WorkerDefaults[snoozeArgs]
	mu   sync.Mutex
	runs map[int][]int // attempt of each run, by job
}

func (w *snoozeWorker) Work(_ context.Context, job *river.Job[snoozeArgs]) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.runs[job.Args.N] = append(w.runs[job.Args.N], job.Attempt)
	if len(w.runs[job.Args.N]) == 1 {
		return river.JobSnooze(time.Hour)
	}
	return nil
}

func (w *snoozeWorker) ran(n int) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.runs[n]...)
}

// TestWorkNow snoozes three jobs for an hour and makes two of them
// available: they run again at once, on the same attempt; the third stays
// scheduled.
func TestWorkNow(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	workers := river.NewWorkers()
	w := &snoozeWorker{runs: map[int][]int{}}
	river.AddWorker(workers, w)
	client := queuetest.Start(t, pool, workers)
	ctx := context.Background()
	ids := map[int]int64{}
	for n := 1; n <= 3; n++ {
		res, err := client.Insert(ctx, snoozeArgs{N: n}, nil)
		require.NoError(t, err)
		ids[n] = res.Job.ID
	}
	scheduled := func(n int) bool {
		job, err := client.JobGet(ctx, ids[n])
		require.NoError(t, err)
		return job.State == rivertype.JobStateScheduled
	}
	require.Eventually(t, func() bool { return scheduled(1) && scheduled(2) && scheduled(3) }, 30*time.Second, 20*time.Millisecond,
		"the jobs ran and snoozed")

	moved, err := queue.WorkNow(ctx, pool, []river.JobArgs{snoozeArgs{N: 1}, snoozeArgs{N: 2}, snoozeArgs{N: 4}})
	require.NoError(t, err)
	require.Equal(t, int64(2), moved)
	for _, n := range []int{1, 2} {
		require.Eventually(t, func() bool { return len(w.ran(n)) == 2 }, 10*time.Second, 20*time.Millisecond, "job %d ran again", n)
		require.Equal(t, []int{1, 1}, w.ran(n), "a snooze does not use up an attempt")
	}
	require.True(t, scheduled(3), "a job not named stays scheduled")
	require.Equal(t, []int{1}, w.ran(3))

	moved, err = queue.WorkNow(ctx, pool, []river.JobArgs{snoozeArgs{N: 1}})
	require.NoError(t, err)
	require.Zero(t, moved, "a finished job is left alone")
}
