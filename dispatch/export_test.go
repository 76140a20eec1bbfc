package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/queue"
)

// StartQueue starts a River client working workers on pool, stopped when t
// ends: for the tests of this package and of dispatch_test.
func StartQueue(t *testing.T, pool *pgxpool.Pool, workers *river.Workers) *queue.Client {
	t.Helper()
	client, err := queue.New(pool, queue.Config{Workers: workers, FetchPollInterval: 100 * time.Millisecond, Logger: quietLog})
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, client.Stop(stopCtx))
	})
	return client
}
