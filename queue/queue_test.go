package queue_test

import (
	"context"
	"log/slog"
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
