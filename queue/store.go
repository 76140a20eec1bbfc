package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// This file holds the SQL of the instances' identity: their lock, and the
// rescue of their jobs in River's table.

// instanceLockSpace is the first key of the instances' advisory locks (its
// hashtext), the identity's hashtext the second. Every version of the
// service must take the same.
const instanceLockSpace = "mssdispatch.instance"

// lockKeepalives are the server's TCP keepalives on the lock's session: a
// host that dies without closing its connection (power cut, network lost)
// has its session, and its identity, freed after about 10 + 3 × 5 = 25 s of
// silence rather than the system's default two hours. Ignored over a Unix
// socket, where the server and the instance share the host.
const lockKeepalives = `SELECT set_config('tcp_keepalives_idle', '10', false),
	set_config('tcp_keepalives_interval', '5', false), set_config('tcp_keepalives_count', '3', false),
	set_config('idle_session_timeout', '0', false)`

// lockInstance opens a connection with config and takes on it the session
// advisory lock of the instance id, waiting up to wait for another session
// to release it (0: not at all); held is false, and the connection closed,
// when another session holds it.
func lockInstance(ctx context.Context, config *pgx.ConnConfig, id string, wait time.Duration) (*pgx.Conn, bool, error) {
	conn, err := pgx.ConnectConfig(ctx, config.Copy())
	if err != nil {
		return nil, false, fmt.Errorf("lock: %w", err)
	}
	held, err := takeLock(ctx, conn, id, wait)
	if err != nil || !held {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, false, err
	}
	return conn, true, nil
}

// takeLock takes the advisory lock of the instance id on conn, as lockInstance.
func takeLock(ctx context.Context, conn *pgx.Conn, id string, wait time.Duration) (held bool, err error) {
	if _, err := conn.Exec(ctx, lockKeepalives); err != nil {
		return false, fmt.Errorf("lock: keepalives: %w", err)
	}
	if wait <= 0 {
		err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1), hashtext($2))`, instanceLockSpace, id).Scan(&held)
		if err != nil {
			return false, fmt.Errorf("lock: %w", err)
		}
		return held, nil
	}
	if _, err := conn.Exec(ctx, `SELECT set_config('lock_timeout', $1, false)`, fmt.Sprintf("%dms", max(wait.Milliseconds(), 1))); err != nil {
		return false, fmt.Errorf("lock: %w", err)
	}
	_, err = conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1), hashtext($2))`, instanceLockSpace, id)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available: the wait ran out
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lock: %w", err)
	}
	return true, nil
}

// unlock releases the advisory lock of the instance id held on conn.
func unlock(ctx context.Context, conn *pgx.Conn, id string) error {
	_, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext($1), hashtext($2))`, instanceLockSpace, id)
	return err
}

// rescueOrphans makes the jobs left running by the client id workable, as
// River's rescuer (JobRescueMany) does: its error entry (AttemptError's
// JSON), its rescue count in the metadata; available now rather than
// retryable after a backoff, since none of them is running.
func rescueOrphans(ctx context.Context, pool *pgxpool.Pool, id string) (Rescued, error) {
	var r Rescued
	err := pool.QueryRow(ctx, `WITH rescued AS (
			UPDATE river_job SET
				state = next.state,
				scheduled_at = CASE WHEN next.state = 'available' THEN now() ELSE river_job.scheduled_at END,
				finalized_at = CASE WHEN next.state = 'available' THEN NULL ELSE now() END,
				errors = array_append(river_job.errors, jsonb_build_object('at', now(), 'attempt', greatest(river_job.attempt, 0),
					'error', $2::text, 'trace', '')),
				metadata = river_job.metadata || jsonb_build_object('river:rescue_count', coalesce(
					CASE WHEN jsonb_typeof(river_job.metadata -> 'river:rescue_count') = 'number'
						THEN (river_job.metadata ->> 'river:rescue_count')::int END, 0) + 1)
			FROM (SELECT id, CASE
					WHEN metadata ? 'cancel_attempted_at' THEN 'cancelled'
					WHEN attempt < max_attempts THEN 'available'
					ELSE 'discarded' END::river_job_state AS state
				FROM river_job
				WHERE state = 'running' AND attempted_by[cardinality(attempted_by)] = $1
				FOR UPDATE) AS next
			WHERE river_job.id = next.id
			RETURNING next.state)
		SELECT count(*) FILTER (WHERE state = 'available'), count(*) FILTER (WHERE state = 'discarded'),
			count(*) FILTER (WHERE state = 'cancelled') FROM rescued`,
		id, "Left running by the previous run of instance "+id+": rescued at its restart").
		Scan(&r.Available, &r.Discarded, &r.Cancelled)
	return r, err
}
