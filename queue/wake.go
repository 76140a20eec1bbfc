package queue

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river"
)

// Execer runs a statement: a pool or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// WorkNow makes the scheduled jobs whose kind and arguments are exactly one
// of args available at once, in one statement, as River's JobRetry does for
// one job: a job snoozed until a later time is worked now, without using up
// an attempt (a snooze gave its attempt back). It returns how many jobs it
// moved; a job running, finished, or not found is left alone.
func WorkNow(ctx context.Context, q Execer, args []river.JobArgs) (int64, error) {
	if len(args) == 0 {
		return 0, nil
	}
	kinds := make([]string, len(args))
	encoded := make([]string, len(args))
	for i, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			return 0, fmt.Errorf("queue: encode the args of a %s job: %w", a.Kind(), err)
		}
		kinds[i], encoded[i] = a.Kind(), string(b)
	}
	// River keeps args as the job's JSON, which jsonb compares by value:
	// an equality, hashed, where containment would compare every pair.
	tag, err := q.Exec(ctx, `UPDATE river_job j SET state = 'available', scheduled_at = now()
		FROM unnest($1::text[], $2::jsonb[]) AS a(kind, args)
		WHERE j.state = 'scheduled' AND j.kind = a.kind AND j.args = a.args`, kinds, encoded)
	if err != nil {
		return 0, fmt.Errorf("queue: make %d jobs available: %w", len(args), err)
	}
	return tag.RowsAffected(), nil
}
