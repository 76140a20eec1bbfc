package ingest

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// This file holds the SQL of the reading lock.

// lockKey is the advisory lock of the mailbox's reader. Every version of
// the service must take the same one, so that two never read at once.
const lockKey = 0x6d73736163 // "mssac"

// tryLock takes the session advisory lock key on a connection of its own
// and returns its release; held is false, with no release, when another
// session holds the lock.
func tryLock(ctx context.Context, pool *pgxpool.Pool, key int64) (release func(), held bool, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("lock %x: %w", key, err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("lock %x: %w", key, err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key)
		conn.Release()
	}, true, nil
}
