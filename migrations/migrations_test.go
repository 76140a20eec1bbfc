package migrations_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
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

// followUpArgs is a follow-up job of the dispatch package as River stores
// it (an acknowledgement deadline, a fallback), or another of its jobs.
type followUpArgs struct {
	kind       string
	DeliveryID int64  `json:"delivery_id"`
	Deadline   string `json:"deadline,omitempty"`
	Cause      string `json:"cause,omitempty"`
}

func (a followUpArgs) Kind() string { return a.kind }

// TestFollowUpsFromQueue checks that 019 gives the deliveries of a database
// upgraded while jobs wait the follow-up jobs waiting or running, read once
// from River's table; the finalized ones and the other jobs are not follow-ups.
func TestFollowUpsFromQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Connect(t, pgtest.NewEmptyDatabase(t))
	require.NoError(t, queue.Migrate(ctx, pool))
	all, err := migrations.All()
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `CREATE TABLE schema_migrations (
		version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
	require.NoError(t, err)
	for _, m := range all {
		if m.Version >= 19 {
			break
		}
		_, err := pool.Exec(ctx, m.SQL)
		require.NoError(t, err, m.Name)
		_, err = pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name)
		require.NoError(t, err)
	}

	// A database at 018 with a report's three deliveries and their jobs.
	var reportID int64
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO reports (source, message_control_id, message_type, document_id, status)
		VALUES ('api', 'MSG-1', 'report', '1.2.3^1', 'resolved') RETURNING id`).Scan(&reportID))
	var deliveries []int64
	for i := range 3 {
		var id int64
		require.NoError(t, pool.QueryRow(ctx, `WITH r AS (
				INSERT INTO recipients (report_id, position, role) VALUES ($1, $2, 'RCT') RETURNING id
			)
			INSERT INTO deliveries (report_id, recipient_id, channel, status, reason, reason_text)
			SELECT $1, id, 'mssante', 'delivered', 'test', 'test' FROM r RETURNING id`, reportID, i).Scan(&id))
		deliveries = append(deliveries, id)
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	later := &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)}
	for _, j := range []struct {
		args   followUpArgs
		cancel bool
	}{
		{args: followUpArgs{kind: "ack_deadline", DeliveryID: deliveries[0], Deadline: "read"}},
		{args: followUpArgs{kind: "ack_deadline", DeliveryID: deliveries[0], Deadline: "dsn"}},
		{args: followUpArgs{kind: "delivery_fallback", DeliveryID: deliveries[1], Cause: "unread"}},
		{args: followUpArgs{kind: "ack_deadline", DeliveryID: deliveries[1], Deadline: "dsn"}, cancel: true},
		{args: followUpArgs{kind: "ack_deadline", DeliveryID: deliveries[2], Deadline: "read"}, cancel: true},
		{args: followUpArgs{kind: "send_delivery", DeliveryID: deliveries[2]}},
	} {
		res, err := client.Insert(ctx, j.args, later)
		require.NoError(t, err)
		if j.cancel {
			_, err := client.JobCancel(ctx, res.Job.ID)
			require.NoError(t, err)
		}
	}

	applied, err := migrations.Up(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, "019_follow_ups.sql", applied[0])
	got := map[int64][]string{}
	for _, id := range deliveries {
		var names []string
		require.NoError(t, pool.QueryRow(ctx, "SELECT follow_ups FROM deliveries WHERE id = $1", id).Scan(&names))
		got[id] = names
	}
	require.Equal(t, map[int64][]string{
		deliveries[0]: {"ack_deadline:dsn", "ack_deadline:read"},
		deliveries[1]: {"delivery_fallback:unread"},
		deliveries[2]: {},
	}, got)
}
