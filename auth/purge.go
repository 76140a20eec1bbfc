package auth

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"
)

// PurgeArgs is the periodic job that deletes expired sessions and old login
// failures (Sessions.Purge).
type PurgeArgs struct{}

// Kind is the River job kind.
func (PurgeArgs) Kind() string { return "session_purge" }

// InsertOpts retries a failed purge twice; the next schedule does it anyway.
func (PurgeArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 3} }

type purgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	sessions *Sessions
}

func (w *purgeWorker) Work(ctx context.Context, _ *river.Job[PurgeArgs]) error {
	n, err := w.sessions.Purge(ctx)
	if err != nil {
		return fmt.Errorf("purge sessions: %w", err)
	}
	w.sessions.cfg.Logger.InfoContext(ctx, "sessions purged", "sessions", n)
	return nil
}

// AddPurge registers the worker of PurgeArgs for sessions.
func AddPurge(workers *river.Workers, sessions *Sessions) error {
	return river.AddWorkerSafely(workers, &purgeWorker{sessions: sessions})
}
