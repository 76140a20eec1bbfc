package audit_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
)

func TestReadFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	log := audit.NewLog(pool)
	var report int64
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO reports (source, message_control_id, message_type, document_id, status,
		patient_family, patient_ipp, patient_ins) VALUES ('api', 'c1', 'ORU^R01', '1.2.3^x', 'resolved', 'DUPONT', 'IPP-7', '280017512345678')
		RETURNING id`).Scan(&report))
	for _, e := range []audit.Entry{
		{Actor: "alice", Action: "login", Object: "user:alice"},
		{Actor: "alice", Action: "report_viewed", Object: "report:1", ReportID: report},
		{Actor: "bob", Action: "delivery_approved", Object: "delivery:9", ReportID: report, DeliveryID: 9},
		{Actor: "bob", Action: "patient_searched", Patient: "IPP-7", Detail: "À vérifier"},
		{Actor: audit.ActorAPI, Action: "report_viewed", ReportID: report + 1},
	} {
		require.NoError(t, audit.Write(ctx, pool, e))
	}
	require.Error(t, audit.Write(ctx, pool, audit.Entry{Action: "x"}), "an entry names its actor")

	actions := func(f audit.Filter) []string {
		records, err := log.Read(ctx, f)
		require.NoError(t, err)
		var out []string
		for _, r := range records {
			out = append(out, r.Actor+" "+r.Action)
		}
		return out
	}
	require.Equal(t, []string{"bob patient_searched", "bob delivery_approved"}, actions(audit.Filter{Actor: "bob"}))
	require.Equal(t, []string{"api report_viewed", "alice report_viewed"}, actions(audit.Filter{Action: "report_viewed"}))
	byPatient := []string{"bob patient_searched", "bob delivery_approved", "alice report_viewed"}
	require.Equal(t, byPatient, actions(audit.Filter{Patient: "IPP-7"}), "by IPP: its reports and its searches")
	require.Equal(t, byPatient[1:], actions(audit.Filter{Patient: "280017512345678"}), "by INS")
	require.Equal(t, byPatient[1:], actions(audit.Filter{ReportID: report}))
	require.Empty(t, actions(audit.Filter{From: time.Now().Add(time.Hour)}))
	require.Empty(t, actions(audit.Filter{To: time.Now().Add(-time.Hour)}))
	require.Len(t, actions(audit.Filter{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}), 5)
	records, err := log.Read(ctx, audit.Filter{Limit: 2})
	require.NoError(t, err)
	require.Len(t, records, 2)
	require.Len(t, actions(audit.Filter{BeforeID: records[1].ID}), 3, "the next page")

	// The export is oldest first, and ends with itself.
	var out bytes.Buffer
	n, err := log.Export(ctx, "root", audit.Filter{Patient: "IPP-7"}, &out)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	lines, err := csv.NewReader(&out).ReadAll()
	require.NoError(t, err)
	require.Equal(t, audit.CSVHeader, lines[0])
	require.Len(t, lines, 5)
	require.Equal(t, []string{"alice", "report_viewed"}, lines[1][2:4])
	require.Equal(t, "9", lines[2][6], "the delivery")
	require.Equal(t, "IPP-7", lines[3][7], "the patient searched")
	require.Equal(t, []string{"root", "audit_exported"}, lines[4][2:4])
	require.Equal(t, []string{"root audit_exported"}, actions(audit.Filter{Actor: "root"}))
}

func TestAppendOnlyAndPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	log := audit.NewLog(pool)
	for _, age := range []string{"400 days", "200 days", "1 day"} {
		_, err := pool.Exec(ctx, `INSERT INTO audit_log (at, actor, action) VALUES (now() - $1::interval, 'alice', $1)`, age)
		require.NoError(t, err)
	}
	_, err := pool.Exec(ctx, `DELETE FROM audit_log WHERE action = '400 days'`)
	require.ErrorContains(t, err, "append-only")
	_, err = pool.Exec(ctx, `UPDATE audit_log SET actor = 'mallory'`)
	require.ErrorContains(t, err, "append-only")
	_, err = pool.Exec(ctx, `TRUNCATE audit_log`)
	require.ErrorContains(t, err, "append-only")

	// Even with the purge's setting, the database keeps six months.
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT set_config('mssdispatch.audit_purge_days', '30', true)`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `DELETE FROM audit_log WHERE action = '200 days'`)
	require.ErrorContains(t, err, "append-only")
	require.NoError(t, tx.Rollback(ctx))

	_, err = log.Purge(ctx, 30, 10)
	require.ErrorContains(t, err, "at least 183")
	n, err := log.Purge(ctx, 365, 1)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	records, err := log.Read(ctx, audit.Filter{})
	require.NoError(t, err)
	var left []string
	for _, r := range records {
		left = append(left, r.Action)
	}
	require.Equal(t, []string{"audit_purged", "1 day", "200 days"}, left)
	n, err = log.Purge(ctx, 365, 1)
	require.NoError(t, err)
	require.Zero(t, n, "nothing more, and no entry for nothing")
}

func TestWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	log := audit.NewLog(pool)

	// In the caller's transaction: rolled back with it.
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		require.NoError(t, audit.Write(ctx, tx, audit.Entry{Actor: "alice", Action: "rules_changed", Object: "rules:2"}))
		return errors.New("rolled back")
	})
	require.EqualError(t, err, "rolled back")
	records, err := log.Read(ctx, audit.Filter{})
	require.NoError(t, err)
	require.Empty(t, records)

	// Text PostgreSQL would refuse is cleaned, not lost.
	require.NoError(t, audit.Write(ctx, pool, audit.Entry{Actor: "alice", Action: "correspondent_changed", Detail: "a\x00b\xffc"}))
	records, err = log.Read(ctx, audit.Filter{})
	require.NoError(t, err)
	require.Equal(t, audit.Entry{Actor: "alice", Action: "correspondent_changed", Detail: "ab\uFFFDc"}, records[0].Entry)
	require.WithinDuration(t, time.Now(), records[0].At, time.Minute)
	require.Error(t, audit.Write(ctx, pool, audit.Entry{Actor: "alice"}), "no action")
}
