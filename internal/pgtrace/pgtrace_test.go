package pgtrace_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/internal/pgtrace"
)

// TestTracer checks what the tracer records of each way to talk to
// PostgreSQL: a statement alone, a batch alone, a transaction holding a
// batch, and a COPY.
func TestTracer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var log pgtrace.Log
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	require.NoError(t, err)
	cfg.ConnConfig.Tracer = &pgtrace.Tracer{Record: log.Record}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	_, err = pool.Exec(ctx, `CREATE TABLE t (v int)`)
	require.NoError(t, err)
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO t VALUES (1)`)
	batch.Queue(`INSERT INTO t VALUES (2)`)
	require.NoError(t, pool.SendBatch(ctx, batch).Close())
	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO t VALUES (3)`)
		b.Queue(`INSERT INTO t VALUES (4)`)
		return tx.SendBatch(ctx, b).Close()
	}))
	_, err = pool.CopyFrom(ctx, pgx.Identifier{"t"}, []string{"v"}, pgx.CopyFromRows([][]any{{5}}))
	require.NoError(t, err)

	sent := log.Take()
	require.Equal(t, []pgtrace.Sent{
		{Kind: pgtrace.Statement, SQL: `CREATE TABLE t (v int)`, Autocommit: true},
		{Kind: pgtrace.Statement, SQL: `INSERT INTO t VALUES (1)`, Autocommit: true, Batch: 1},
		{Kind: pgtrace.Statement, SQL: `INSERT INTO t VALUES (2)`, Batch: 2},
		{Kind: pgtrace.Begin, SQL: `begin`},
		{Kind: pgtrace.Statement, SQL: `INSERT INTO t VALUES (3)`, Batch: 1},
		{Kind: pgtrace.Statement, SQL: `INSERT INTO t VALUES (4)`, Batch: 2},
		{Kind: pgtrace.Commit, SQL: `commit`},
		{Kind: pgtrace.Statement, SQL: `COPY "t"`, Autocommit: true},
	}, sent)
	trips := 0
	for _, s := range sent {
		if s.RoundTrip() {
			trips++
		}
	}
	require.Equal(t, 6, trips, "a batch is one round trip")
	require.Empty(t, log.Take(), "taken")
}
