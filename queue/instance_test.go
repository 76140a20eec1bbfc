package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/queue"
)

var quiet = slog.New(slog.DiscardHandler)

type holdArgs struct{ Name string }

func (holdArgs) Kind() string { return "test_hold" }

// holdWorker signals each job it starts, then runs until release is closed,
// whatever its context says.
type holdWorker struct {
	river.WorkerDefaults[holdArgs]
	running chan int64
	release chan struct{}
}

func (w *holdWorker) Work(_ context.Context, job *river.Job[holdArgs]) error {
	w.running <- job.ID
	<-w.release
	return nil
}

// leaveRunning has a client named id work jobs, one per InsertOpts, and
// stop without waiting for them: they stay running in River's table under
// id, as when the process is killed. Its workers end when the test does.
func leaveRunning(t *testing.T, pool *pgxpool.Pool, id string, opts ...*river.InsertOpts) []int64 {
	t.Helper()
	ctx := context.Background()
	w := &holdWorker{running: make(chan int64, len(opts)), release: make(chan struct{})}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	client, err := queue.New(pool, queue.Config{ID: id, Workers: workers, FetchPollInterval: 50 * time.Millisecond, Logger: quiet})
	require.NoError(t, err)
	var ids []int64
	for _, o := range opts {
		res, err := client.Insert(ctx, holdArgs{Name: id}, o)
		require.NoError(t, err)
		ids = append(ids, res.Job.ID)
	}
	require.NoError(t, client.Start(ctx))
	for range opts {
		select {
		case <-w.running:
		case <-time.After(30 * time.Second):
			t.Fatalf("client %s did not work its jobs", id)
		}
	}
	stopCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, client.Stop(stopCtx), context.DeadlineExceeded, "the client stops fetching, its jobs run on")
	t.Cleanup(func() {
		close(w.release)
		select {
		case <-client.Stopped():
		case <-time.After(10 * time.Second):
			t.Errorf("client %s did not stop", id)
		}
	})
	return ids
}

// jobs reads the jobs ids from River's table.
func jobs(t *testing.T, client *queue.Client, ids ...int64) []*rivertype.JobRow {
	t.Helper()
	rows := make([]*rivertype.JobRow, len(ids))
	for i, id := range ids {
		var err error
		rows[i], err = client.JobGet(context.Background(), id)
		require.NoError(t, err)
	}
	return rows
}

// TestRescueOrphans leaves jobs running under the instances "a" and "b", as
// their processes killed would, then restarts "a": its rescue at start makes
// its job with attempts left available at once, with River's error entry
// saying so, discards the one that has none left, and leaves b's running
// (River's rescuer takes it up after RescueStuckJobsAfter). A client named
// "a" then works the job without waiting.
func TestRescueOrphans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	a := leaveRunning(t, pool, "a", nil, &river.InsertOpts{MaxAttempts: 1})
	b := leaveRunning(t, pool, "b", nil)

	workers := river.NewWorkers()
	done := &holdWorker{running: make(chan int64, 10), release: make(chan struct{})}
	close(done.release)
	river.AddWorker(workers, done)
	restarted, err := queue.New(pool, queue.Config{ID: "a", Workers: workers, FetchPollInterval: 50 * time.Millisecond, Logger: quiet})
	require.NoError(t, err)
	for _, j := range jobs(t, restarted, a[0], a[1], b[0]) {
		require.Equal(t, rivertype.JobStateRunning, j.State)
	}

	registry := prometheus.NewRegistry()
	before := time.Now()
	in, err := queue.Claim(ctx, pool, queue.InstanceConfig{ID: "a", Registerer: registry, Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(in.Release)
	rescued, err := in.RescueOrphans(ctx)
	require.NoError(t, err)
	require.Equal(t, queue.Rescued{Available: 1, Discarded: 1}, rescued)
	require.Equal(t, 2, rescued.Total())
	require.NoError(t, testutil.GatherAndCompare(registry, strings.NewReader(`
# HELP mssdispatch_jobs_rescued_at_start_total Jobs a previous run of this instance left running, taken up at its start, by what became of them (available, discarded, cancelled).
# TYPE mssdispatch_jobs_rescued_at_start_total counter
mssdispatch_jobs_rescued_at_start_total{outcome="available"} 1
mssdispatch_jobs_rescued_at_start_total{outcome="cancelled"} 0
mssdispatch_jobs_rescued_at_start_total{outcome="discarded"} 1
`)))

	rows := jobs(t, restarted, a[0], a[1], b[0])
	again, last, other := rows[0], rows[1], rows[2]
	require.Equal(t, rivertype.JobStateAvailable, again.State, "attempts left: worked again at once")
	require.False(t, again.ScheduledAt.After(time.Now()))
	require.Nil(t, again.FinalizedAt)
	require.Equal(t, rivertype.JobStateDiscarded, last.State, "no attempt left")
	require.NotNil(t, last.FinalizedAt)
	for _, j := range []*rivertype.JobRow{again, last} {
		require.Len(t, j.Errors, 1)
		e := j.Errors[0]
		require.Equal(t, 1, e.Attempt)
		require.Equal(t, "Left running by the previous run of instance a: rescued at its restart", e.Error)
		require.WithinRange(t, e.At, before.Add(-time.Second), time.Now().Add(time.Second))
		require.EqualValues(t, 1, metadataOf(t, j)["river:rescue_count"])
	}
	require.Equal(t, rivertype.JobStateRunning, other.State, "another instance's job is left to River's rescuer")
	require.Empty(t, other.Errors)

	none, err := in.RescueOrphans(ctx)
	require.NoError(t, err)
	require.Zero(t, none.Total(), "nothing left running under a")

	require.NoError(t, restarted.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, restarted.Stop(stopCtx))
	})
	select {
	case id := <-done.running:
		require.Equal(t, a[0], id, "the rescued job, at once")
	case <-time.After(10 * time.Second):
		t.Fatal("the restarted instance did not work its rescued job")
	}
	require.Eventually(t, func() bool {
		return jobs(t, restarted, a[0])[0].State == rivertype.JobStateCompleted
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, rivertype.JobStateRunning, jobs(t, restarted, b[0])[0].State)
}

// TestRescueOrphansCancelled: a job its process was cancelling when it died
// is cancelled, as River's rescuer does.
func TestRescueOrphansCancelled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	ids := leaveRunning(t, pool, "a", nil)
	// What JobCancel does to a running job, its worker's context aside.
	_, err := pool.Exec(ctx, `UPDATE river_job SET metadata = metadata || jsonb_build_object('cancel_attempted_at', now()) WHERE id = $1`, ids[0])
	require.NoError(t, err)
	in, err := queue.Claim(ctx, pool, queue.InstanceConfig{ID: "a", Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(in.Release)
	rescued, err := in.RescueOrphans(ctx)
	require.NoError(t, err)
	require.Equal(t, queue.Rescued{Cancelled: 1}, rescued)
	var state string
	var finalized bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT state, finalized_at IS NOT NULL FROM river_job WHERE id = $1`, ids[0]).Scan(&state, &finalized))
	require.Equal(t, "cancelled", state)
	require.True(t, finalized)
}

func metadataOf(t *testing.T, j *rivertype.JobRow) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(j.Metadata, &m))
	return m
}

// TestClaim checks the identity's lock: a second holder of the same identity
// is refused, another identity is not; a claim may wait for the holder to
// end; the lock, its connection lost, is taken again.
func TestClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	claim := func(id string, wait time.Duration) (*queue.Instance, error) {
		in, err := queue.Claim(ctx, pool, queue.InstanceConfig{ID: id, Wait: wait, Logger: quiet})
		if err == nil {
			t.Cleanup(in.Release)
		}
		return in, err
	}
	a, err := claim("a", 0)
	require.NoError(t, err)
	require.Equal(t, "a", a.ID())
	_, err = claim("a", 0)
	require.ErrorIs(t, err, queue.ErrInstanceHeld)
	require.ErrorContains(t, err, "instance a")
	began := time.Now()
	_, err = claim("a", 200*time.Millisecond)
	require.ErrorIs(t, err, queue.ErrInstanceHeld, "the holder outlasts the wait")
	require.GreaterOrEqual(t, time.Since(began), 200*time.Millisecond)
	_, err = claim("b", 0)
	require.NoError(t, err, "another identity")

	// A claim waits for the holder to end.
	go func() {
		time.Sleep(300 * time.Millisecond)
		a.Release()
	}()
	began = time.Now()
	again, err := claim("a", 30*time.Second)
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(began), 250*time.Millisecond)

	// Its connection cut (a restart of PostgreSQL), the lock is taken again.
	holder := func() (pid int) {
		err := pool.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND classid = hashtext('mssdispatch.instance')::oid AND objid = hashtext('a')::oid AND objsubid = 2`).Scan(&pid)
		if err != nil {
			return 0
		}
		return pid
	}
	cut := holder()
	require.NotZero(t, cut)
	_, err = pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, cut)
	require.NoError(t, err)
	require.Eventually(t, func() bool { p := holder(); return p != 0 && p != cut }, 20*time.Second, 20*time.Millisecond,
		"the lock taken again")
	_, err = claim("a", 0)
	require.ErrorIs(t, err, queue.ErrInstanceHeld)

	again.Release()
	_, err = claim("a", 0)
	require.NoError(t, err, "released")
}

func TestCheckID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"a", "host-1/0.0.0.0:2575", strings.Repeat("x", 100), "hôpital"} {
		require.NoError(t, queue.CheckID(id), id)
	}
	for _, id := range []string{"", strings.Repeat("x", 101), "a\nb"} {
		require.Error(t, queue.CheckID(id), id)
	}
	_, err := queue.New(pgtest.NewPool(t), queue.Config{ID: "a\x00", Workers: river.NewWorkers()})
	require.ErrorContains(t, err, "Config.ID")
	_, err = queue.Claim(context.Background(), nil, queue.InstanceConfig{})
	require.True(t, err != nil && !errors.Is(err, queue.ErrInstanceHeld))
}
