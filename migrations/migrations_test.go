package migrations_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/migrations"
	"github.com/mssdispatch/mssdispatch/queue"
)

func TestUpAndCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Connect(t, pgtest.NewEmptyDatabase(t))

	require.ErrorIs(t, migrations.Check(ctx, pool), migrations.ErrSchemaOutdated)
	require.Error(t, queue.CheckSchema(ctx, pool))

	all, err := migrations.All()
	require.NoError(t, err)
	applied, err := migrations.Up(ctx, pool, queue.Migrate)
	require.NoError(t, err)
	require.Len(t, applied, len(all))
	require.NoError(t, migrations.Check(ctx, pool))
	require.NoError(t, queue.CheckSchema(ctx, pool))

	applied, err = migrations.Up(ctx, pool, queue.Migrate)
	require.NoError(t, err)
	require.Empty(t, applied, "a second run applies nothing")
}

func TestUpConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Connect(t, pgtest.NewEmptyDatabase(t))

	// Two instances migrating at once: the lock makes one apply everything
	// and the other nothing, neither fails.
	var wg sync.WaitGroup
	counts := make([]int, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			applied, err := migrations.Up(ctx, pool, queue.Migrate)
			counts[i], errs[i] = len(applied), err
		})
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	all, err := migrations.All()
	require.NoError(t, err)
	require.ElementsMatch(t, []int{0, len(all)}, counts)
}

func TestCheckNewerDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	_, err := pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')")
	require.NoError(t, err)
	err = migrations.Check(ctx, pool)
	require.ErrorContains(t, err, "newer than this binary")
}

func TestFailedMigrationRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Connect(t, pgtest.NewEmptyDatabase(t))
	failing := func(context.Context, *pgxpool.Pool) error { return context.DeadlineExceeded }
	_, err := migrations.Up(ctx, pool, failing)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, migrations.Check(ctx, pool), migrations.ErrSchemaOutdated, "no application migration ran")

	// The lock was released: a normal run goes through.
	_, err = migrations.Up(ctx, pool, queue.Migrate)
	require.NoError(t, err)
	require.NoError(t, migrations.Check(ctx, pool))
}

// TestDocumentStorage checks how the documents' bytes are stored (009): the
// PDFs uncompressed, the CDAs compressed with lz4 (this server has it).
func TestDocumentStorage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Connect(t, pgtest.NewEmptyDatabase(t))
	_, err := migrations.Up(ctx, pool, queue.Migrate)
	require.NoError(t, err)
	rows, err := pool.Query(ctx, `SELECT attrelid::regclass::text || '.' || attname, attstorage::text, attcompression::text
		FROM pg_attribute WHERE (attrelid, attname) IN (('documents'::regclass, 'cda'), ('documents'::regclass, 'pdf'),
			('paper_batches'::regclass, 'pdf'))`)
	require.NoError(t, err)
	got := map[string]string{}
	for rows.Next() {
		var column, storage, compression string
		require.NoError(t, rows.Scan(&column, &storage, &compression))
		got[column] = storage + compression
	}
	require.NoError(t, rows.Err())
	// x: extended (compressed, then out of line), e: external (out of line only); l: lz4.
	require.Equal(t, map[string]string{"documents.cda": "xl", "documents.pdf": "e", "paper_batches.pdf": "e"}, got)
}
