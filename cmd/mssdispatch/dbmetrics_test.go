package main

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/internal/pgtest"
)

// TestStatementCounter checks what the pool's tracer counts for each way
// the service talks to PostgreSQL: a statement alone, a transaction that
// commits, one that rolls back, a batch alone and a batch in a transaction.
func TestStatementCounter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newStatementCounter()
	pool, err := openPool(ctx, pgtest.NewDatabase(t), 2, c)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	// openPool pinged: a ping is an empty statement, not counted by pgx's
	// tracer. Start from what it counted, if anything.
	before := map[string]float64{}
	for _, k := range statementKinds {
		before[k] = testutil.ToFloat64(c.WithLabelValues(k))
	}

	_, err = pool.Exec(ctx, `CREATE TABLE t (v int)`)
	require.NoError(t, err)
	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t VALUES (1)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO t VALUES (2)`)
		return err
	}))
	errUndo := errors.New("undo")
	require.ErrorIs(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t VALUES (3)`); err != nil {
			return err
		}
		return errUndo
	}), errUndo)
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO t VALUES (4)`)
	batch.Queue(`INSERT INTO t VALUES (5)`)
	require.NoError(t, pool.SendBatch(ctx, batch).Close())
	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO t VALUES (6)`)
		return tx.SendBatch(ctx, b).Close()
	}))
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n))
	require.Equal(t, 5, n)

	want := map[string]float64{
		// CREATE, 2 + 1 INSERTs in transactions, 2 in the batch alone, 1 in
		// the batch in a transaction, the SELECT.
		"statement": 8,
		"begin":     3,
		"commit":    2,
		"rollback":  1,
		// CREATE, the batch alone, the SELECT.
		"autocommit": 3,
	}
	for _, k := range statementKinds {
		require.Equal(t, want[k], testutil.ToFloat64(c.WithLabelValues(k))-before[k], k)
	}
}
