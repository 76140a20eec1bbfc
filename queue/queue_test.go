package queue_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/queue"
)

type tickArgs struct{}

func (tickArgs) Kind() string { return "test_tick" }

type tickWorker struct {
	river.WorkerDefaults[tickArgs]
	ran chan struct{}
}

func (w *tickWorker) Work(context.Context, *river.Job[tickArgs]) error {
	w.ran <- struct{}{}
	return nil
}

func TestPeriodicRunOnStart(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	workers := river.NewWorkers()
	w := &tickWorker{ran: make(chan struct{}, 10)}
	river.AddWorker(workers, w)
	client, err := queue.New(pool, queue.Config{
		Workers:  workers,
		Periodic: []queue.Periodic{{Spec: "0 3 * * *", Args: func() river.JobArgs { return tickArgs{} }, RunOnStart: true}},
		Logger:   slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, client.Stop(ctx))
	})
	select {
	case <-w.ran:
	case <-time.After(30 * time.Second):
		t.Fatal("the periodic job did not run at start (the client must be elected leader)")
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	_, err := queue.New(pool, queue.Config{})
	require.ErrorContains(t, err, "Workers is required")
	_, err = queue.New(pool, queue.Config{Workers: river.NewWorkers(),
		Periodic: []queue.Periodic{{Spec: "every day", Args: func() river.JobArgs { return tickArgs{} }}}})
	require.ErrorContains(t, err, `cron spec "every day"`)
}

func TestDepthCollector(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	workers := river.NewWorkers()
	river.AddWorker(workers, &tickWorker{})
	client, err := queue.New(pool, queue.Config{Workers: workers, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ctx := context.Background()
	for range 3 {
		_, err := client.Insert(ctx, tickArgs{}, nil)
		require.NoError(t, err)
	}
	_, err = client.Insert(ctx, tickArgs{}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	registry := prometheus.NewRegistry()
	require.NoError(t, registry.Register(queue.NewDepthCollector(pool)))
	families, err := registry.Gather()
	require.NoError(t, err)
	require.Len(t, families, 1)
	got := map[string]float64{}
	for _, m := range families[0].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		got[labels["kind"]+"/"+labels["state"]] = m.GetGauge().GetValue()
	}
	require.Equal(t, map[string]float64{"test_tick/available": 3, "test_tick/scheduled": 1}, got)
}

type failArgs struct{ Cancel bool }

func (failArgs) Kind() string { return "test_fail" }

// failWorker fails as the send worker does when an SMTP server refuses a
// patient's address: the reply echoes it.
type failWorker struct {
	river.WorkerDefaults[failArgs]
	ran chan struct{}
}

func (w *failWorker) Work(_ context.Context, job *river.Job[failArgs]) error {
	defer func() { w.ran <- struct{}{} }()
	err := errors.New("mail: RCPT TO: SMTP error 550: <280017512345678@patient.mssante.fr>: User unknown")
	if job.Args.Cancel {
		return river.JobCancel(err)
	}
	return err
}

// TestRiverLogsRedacted: River logs the errors jobs return, at debug level
// for a cancelled job; patient data is masked there too (issue #19).
func TestRiverLogsRedacted(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	workers := river.NewWorkers()
	w := &failWorker{ran: make(chan struct{}, 2)}
	river.AddWorker(workers, w)
	var logs syncBuffer
	client, err := queue.New(pool, queue.Config{Workers: workers, FetchPollInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, client.Stop(ctx))
	})
	for _, cancel := range []bool{true, false} {
		_, err := client.Insert(ctx, failArgs{Cancel: cancel}, nil)
		require.NoError(t, err)
	}
	for range 2 {
		select {
		case <-w.ran:
		case <-time.After(30 * time.Second):
			t.Fatal("the jobs did not run")
		}
	}
	require.Eventually(t, func() bool {
		s := logs.String()
		return strings.Contains(s, "Job cancelled explicitly") && strings.Contains(s, "Job errored")
	}, 10*time.Second, 20*time.Millisecond, "%s", &logs)
	require.Contains(t, logs.String(), `error="JobCancelError: mail: RCPT TO: SMTP error 550: <[adresse patient]>: User unknown"`)
	require.NotContains(t, logs.String(), "280017512345678")
	require.NotContains(t, logs.String(), "@patient.mssante.fr")
}

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
