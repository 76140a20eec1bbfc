// Package queuetest starts a River client for the tests of the packages
// that register workers.
package queuetest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/queue"
)

// Start starts a River client working workers on pool, polling every
// 100 ms, stopped when t ends.
func Start(t testing.TB, pool *pgxpool.Pool, workers *river.Workers, logger *slog.Logger) *queue.Client {
	t.Helper()
	client, err := queue.New(pool, queue.Config{Workers: workers, FetchPollInterval: 100 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatalf("queuetest: %v", err)
	}
	if err := client.Start(context.Background()); err != nil {
		t.Fatalf("queuetest: start: %v", err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.Stop(stopCtx); err != nil {
			t.Errorf("queuetest: stop: %v", err)
		}
	})
	return client
}
