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

// TestStatementCounter checks that the tracer openPool installs counts by
// kind what package pgtrace records (whose test goes through each way the
// service talks to PostgreSQL): a statement alone, and a transaction that
// rolls back.
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
	errUndo := errors.New("undo")
	require.ErrorIs(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t VALUES (1)`); err != nil {
			return err
		}
		return errUndo
	}), errUndo)

	// The CREATE and the INSERT; the CREATE, sent alone, was a transaction.
	want := map[string]float64{"statement": 2, "begin": 1, "rollback": 1, "autocommit": 1}
	for _, k := range statementKinds {
		require.Equal(t, want[k], testutil.ToFloat64(c.WithLabelValues(k))-before[k], k)
	}
}
