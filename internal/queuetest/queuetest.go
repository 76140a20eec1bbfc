// Package queuetest starts a River client for a test (queue.New), working
// its jobs until the test ends. It does not import the packages whose jobs
// it runs, so that their own tests use it.
package queuetest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/queue"
)

// Start starts a River client working workers on pool, polling every 100
// ms, its logs discarded, stopped when t ends.
func Start(t testing.TB, pool *pgxpool.Pool, workers *river.Workers) *queue.Client {
	t.Helper()
	client, err := queue.New(pool, queue.Config{Workers: workers, FetchPollInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, client.Stop(stopCtx))
	})
	return client
}
