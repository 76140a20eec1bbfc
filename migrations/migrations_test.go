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

// migratedBefore gives the empty database of pool River's tables and the
// application's migrations before version, recorded as Up records them: a
// database that the next Up upgrades from there.
func migratedBefore(t *testing.T, pool *pgxpool.Pool, version int) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, queue.Migrate(ctx, pool))
	all, err := migrations.All()
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `CREATE TABLE schema_migrations (
		version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
	require.NoError(t, err)
	for _, m := range all {
		if m.Version >= version {
			break
		}
		_, err := pool.Exec(ctx, m.SQL)
		require.NoError(t, err, m.Name)
		_, err = pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name)
		require.NoError(t, err)
	}
}

// reportDeliveries inserts a resolved report with n delivered MSSanté
// deliveries and returns their ids.
func reportDeliveries(t *testing.T, pool *pgxpool.Pool, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	var reportID int64
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO reports (source, message_control_id, message_type, document_id, status)
		VALUES ('api', 'MSG-1', 'report', '1.2.3^1', 'resolved') RETURNING id`).Scan(&reportID))
	var deliveries []int64
	for i := range n {
		var id int64
		require.NoError(t, pool.QueryRow(ctx, `WITH r AS (
				INSERT INTO recipients (report_id, position, role) VALUES ($1, $2, 'RCT') RETURNING id
			)
			INSERT INTO deliveries (report_id, recipient_id, channel, status, reason, reason_text)
			SELECT $1, id, 'mssante', 'delivered', 'test', 'test' FROM r RETURNING id`, reportID, i).Scan(&id))
		deliveries = append(deliveries, id)
	}
	return deliveries
}

// TestFollowUpsFromQueue checks that 019 gives the deliveries of a database
// upgraded while jobs wait the follow-up jobs waiting or running, read once
// from River's table; the finalized ones and the other jobs are not follow-ups.
func TestFollowUpsFromQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Connect(t, pgtest.NewEmptyDatabase(t))
	migratedBefore(t, pool, 19)

	// A database at 018 with a report's three deliveries and their jobs.
	deliveries := reportDeliveries(t, pool, 3)
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

// TestAckDueFromDeliveries checks that 020 gives the emails of a database
// upgraded while they wait for an acknowledgement their next deadline, from
// their policy: the DSN one to an email only sent, the read one to an email
// delivered, unread and not flagged; none to an email read, flagged, or
// whose rule watches for no acknowledgement.
func TestAckDueFromDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Connect(t, pgtest.NewEmptyDatabase(t))
	migratedBefore(t, pool, 20)

	// A database at 019 with emails sent an hour ago.
	watching := `{"no_dsn_hours": 24, "unread_hours": 72}`
	emails := []struct {
		name, status, policy, attention string
		read                            bool
	}{
		{name: "sent", status: "sent", policy: watching},
		{name: "delivered", status: "delivered", policy: watching},
		{name: "read", status: "read", policy: watching, read: true},
		{name: "flagged", status: "delivered", policy: watching, attention: "unread"},
		{name: "not watching", status: "sent", policy: `{"no_dsn_hours": 0, "unread_hours": 0}`},
	}
	deliveries := reportDeliveries(t, pool, len(emails))
	for i, e := range emails {
		_, err := pool.Exec(ctx, `UPDATE deliveries SET status = $2, policy = $3::text::jsonb, attention = $4, sent_at = now() - interval '1 hour',
			read_at = CASE WHEN $5 THEN now() END WHERE id = $1`, deliveries[i], e.status, e.policy, e.attention, e.read)
		require.NoError(t, err)
	}

	applied, err := migrations.Up(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, "020_ack_due.sql", applied[0])
	got := map[string]*int{}
	for i, e := range emails {
		var hours *int
		require.NoError(t, pool.QueryRow(ctx, `SELECT (extract(epoch FROM ack_due_at - sent_at) / 3600)::int
			FROM deliveries WHERE id = $1`, deliveries[i]).Scan(&hours))
		got[e.name] = hours
	}
	dsn, read := 24, 72
	require.Equal(t, map[string]*int{"sent": &dsn, "delivered": &read, "read": nil, "flagged": nil, "not watching": nil},
		got, "hours after the send")
}
