package retention_test

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/retention"
	"github.com/mssdispatch/mssdispatch/dispatch/worker"
	"github.com/mssdispatch/mssdispatch/internal/dispatchtest"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/rules"
)

var quiet = slog.New(slog.DiscardHandler)

// retentionBundle is the domain running for a test, its River client also
// working the retention job.
type retentionBundle struct {
	*dispatchtest.Env
}

// setupRetention starts the service's workers and the retention job
// (configured by cfg, with its Pool, Registerer and Logger set here) on a
// fresh database holding the demo directory.
func setupRetention(t *testing.T, cfg retention.Config) *retentionBundle {
	t.Helper()
	outbox, err := mail.NewOutbox(t.TempDir())
	require.NoError(t, err)
	e := dispatchtest.Start(t, outbox, func(workers *river.Workers, pool *pgxpool.Pool, registry prometheus.Registerer) {
		cfg.Pool, cfg.Registerer, cfg.Logger = pool, registry, quiet
		require.NoError(t, retention.AddPurge(workers, cfg))
	})
	return &retentionBundle{Env: e}
}

// resolvedReport receives the test report as document name and waits for
// its four deliveries; it returns the report's id.
func (b *retentionBundle) resolvedReport(t *testing.T, name string) int64 {
	t.Helper()
	r := dispatchtest.Report(t)
	dispatchtest.SetDocumentID(t, &r, "1.2.250.1.999.1^"+name)
	rc := b.Receive(t, r)
	b.WaitDeliveries(t, rc.ReportID, 4)
	return rc.ReportID
}

// setStatuses moves every delivery of the report to status (as the state
// machine would have, over time), keeping the history as it is.
func (b *retentionBundle) setStatuses(t *testing.T, reportID int64, status dispatch.Status) {
	t.Helper()
	_, err := b.Pool.Exec(b.Ctx, "UPDATE deliveries SET status = $2 WHERE report_id = $1", reportID, status)
	require.NoError(t, err)
}

// age makes the reports look received days ago.
func (b *retentionBundle) age(t *testing.T, days int, reportIDs ...int64) {
	t.Helper()
	_, err := b.Pool.Exec(b.Ctx, "UPDATE reports SET received_at = now() - make_interval(days => $2) WHERE id = ANY ($1)",
		reportIDs, days)
	require.NoError(t, err)
}

// runRetention runs the retention job through River and waits for it to complete.
func (b *retentionBundle) runRetention(t *testing.T) {
	t.Helper()
	b.RunJob(t, retention.PurgeArgs{})
}

// unreadDeadline is a rule whose emails have a read deadline: 72 hours
// after the send, an email not read is flagged and left to the worklist.
var unreadDeadline = rules.Rule{Name: "suivi", Action: rules.Action{UnreadHours: 72, UnreadAction: rules.FallbackWorklist}}

// emails lists the report's deliveries whose email was sent.
func (b *retentionBundle) emails(t *testing.T, reportID int64) []int64 {
	t.Helper()
	rows, err := b.Pool.Query(b.Ctx, "SELECT id FROM deliveries WHERE report_id = $1 AND sent_at IS NOT NULL ORDER BY id", reportID)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	return ids
}

// followUpJobs lists the acknowledgement deadline and fallback jobs of the
// report's emails in the states (any state when none).
func (b *retentionBundle) followUpJobs(t *testing.T, reportID int64, states ...rivertype.JobState) []*rivertype.JobRow {
	t.Helper()
	var jobs []*rivertype.JobRow
	for _, kind := range []string{worker.DeadlineArgs{}.Kind(), dispatch.FallbackArgs{}.Kind()} {
		for _, id := range b.emails(t, reportID) {
			jobs = append(jobs, b.DeliveryJobs(t, kind, id, states...)...)
		}
	}
	return jobs
}

// sweepCancelling sweeps (Env.Sweep) while the deliveries' history is held
// (delivery_events locked): the want deadline jobs the sweep enqueues wait
// to record their event, and are cancelled as from River's UI before they
// can. What they would have changed is left undone.
func (b *retentionBundle) sweepCancelling(t *testing.T, want int) {
	t.Helper()
	hold, err := b.Pool.Begin(b.Ctx)
	require.NoError(t, err)
	defer func() { _ = hold.Rollback(b.Ctx) }()
	_, err = hold.Exec(b.Ctx, "LOCK TABLE delivery_events IN SHARE MODE")
	require.NoError(t, err)
	cancelled := make(chan error, 1)
	go func() { cancelled <- b.cancelDeadlines(want) }()
	b.Sweep(t)
	require.NoError(t, <-cancelled)
}

// cancelDeadlines cancels, with River's JobCancel (as its UI does), the
// acknowledgement deadline jobs waiting or running once there are want of
// them. It runs beside the test's goroutine: it returns its error.
func (b *retentionBundle) cancelDeadlines(want int) error {
	params := river.NewJobListParams().Kinds(worker.DeadlineArgs{}.Kind()).
		States(rivertype.JobStateAvailable, rivertype.JobStateRunning)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		res, err := b.Client.JobList(b.Ctx, params)
		if err != nil {
			return err
		}
		if len(res.Jobs) < want {
			continue
		}
		for _, j := range res.Jobs {
			if _, err := b.Client.JobCancel(b.Ctx, j.ID); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("no %d deadline jobs to cancel", want)
}

// storedDocument is a document row as the retention job leaves it.
type storedDocument struct {
	CDA, PDF []byte
	PurgedAt *time.Time
}

func (b *retentionBundle) document(t *testing.T, reportID int64) storedDocument {
	t.Helper()
	var d storedDocument
	require.NoError(t, b.Pool.QueryRow(b.Ctx, "SELECT cda, pdf, purged_at FROM documents WHERE report_id = $1", reportID).
		Scan(&d.CDA, &d.PDF, &d.PurgedAt))
	return d
}

// requirePurged checks that the report's document bytes are gone while the
// report and its deliveries are still there, statuses and history unchanged.
func (b *retentionBundle) requirePurged(t *testing.T, reportID int64, deliveryStatus dispatch.Status) {
	t.Helper()
	d := b.document(t, reportID)
	require.NotNil(t, d.PurgedAt, "report %d", reportID)
	require.Empty(t, d.CDA, "report %d", reportID)
	require.Nil(t, d.PDF, "report %d", reportID)
	v, err := b.Views.Report(b.Ctx, "test", reportID)
	require.NoError(t, err)
	require.Equal(t, dispatch.ReportResolved, v.Status)
	require.Len(t, v.Deliveries, 4)
	for _, dv := range v.Deliveries {
		require.Equal(t, deliveryStatus, dv.Status)
	}
	var events, purgedEvents int
	require.NoError(t, b.Pool.QueryRow(b.Ctx, `SELECT count(*), count(*) FILTER (WHERE e.event = $2)
		FROM delivery_events e JOIN deliveries d ON d.id = e.delivery_id WHERE d.report_id = $1`,
		reportID, dispatch.EventPurged).Scan(&events, &purgedEvents))
	require.Positive(t, events, "the history stays")
	require.Zero(t, purgedEvents, "the purge is recorded on the document, not in the history")
}

// requireKept checks that the report's document is whole.
func (b *retentionBundle) requireKept(t *testing.T, reportID int64) {
	t.Helper()
	d := b.document(t, reportID)
	require.Nil(t, d.PurgedAt, "report %d", reportID)
	require.NotEmpty(t, d.CDA, "report %d", reportID)
	require.NotEmpty(t, d.PDF, "report %d", reportID)
}

// metric returns the value of the counter or gauge name, with the label
// value kind when not empty.
func (b *retentionBundle) metric(t *testing.T, name, kind string) float64 {
	t.Helper()
	families, err := b.Registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if kind != "" && m.GetLabel()[0].GetValue() != kind {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s{kind=%q}", name, kind)
	return 0
}

// TestRetentionDocuments runs the retention job through River: a document
// past the period is purged when every delivery is done with it (or it has
// none), kept while one of them may still need it, and kept within the
// period; a second run changes nothing; once the last delivery is done, the
// next run purges it.
func TestRetentionDocuments(t *testing.T) {
	t.Parallel()
	b := setupRetention(t, retention.Config{})

	purgedBy := map[dispatch.Status]bool{
		dispatch.StatusReview: false, dispatch.StatusScheduled: false, dispatch.StatusQueued: false,
		dispatch.StatusSent: false, dispatch.StatusFailed: false, dispatch.StatusPaperPending: false,
		dispatch.StatusDelivered: true, dispatch.StatusRead: true, dispatch.StatusPaperSent: true,
		dispatch.StatusCancelled: true, dispatch.StatusSuperseded: true,
	}
	byStatus := map[dispatch.Status]int64{}
	for status := range purgedBy {
		id := b.resolvedReport(t, string(status))
		b.setStatuses(t, id, status)
		b.age(t, 91, id)
		byStatus[status] = id
	}
	// One delivery in review, the others delivered: a secretary may still send it.
	inReview := b.resolvedReport(t, "one-in-review")
	b.setStatuses(t, inReview, dispatch.StatusDelivered)
	_, err := b.Pool.Exec(b.Ctx, `UPDATE deliveries SET status = 'review'
		WHERE id = (SELECT min(id) FROM deliveries WHERE report_id = $1)`, inReview)
	require.NoError(t, err)
	// All delivered, but the unread deadlines of its emails are still to
	// come: their fallback may print it.
	b.SetRules(t, unreadDeadline)
	followUp := b.resolvedReport(t, "unread-deadline")
	b.setStatuses(t, followUp, dispatch.StatusDelivered)
	// All delivered, but received within the period.
	recent := b.resolvedReport(t, "recent")
	b.setStatuses(t, recent, dispatch.StatusDelivered)
	b.age(t, 89, recent)
	// Received but not resolved yet (its resolve job still retrying), and
	// resolved without any delivery.
	var unresolved, noDelivery int64
	for _, r := range []struct {
		id     *int64
		status string
	}{{&unresolved, dispatch.ReportReceived}, {&noDelivery, dispatch.ReportResolved}} {
		require.NoError(t, b.Pool.QueryRow(b.Ctx, `INSERT INTO reports (source, message_control_id, message_type, document_id, status)
			VALUES ('api', $1, 'report', $1, $2) RETURNING id`, "doc-"+r.status, r.status).Scan(r.id))
		_, err := b.Pool.Exec(b.Ctx, "INSERT INTO documents (report_id, cda, pdf) VALUES ($1, '<ClinicalDocument/>', '%PDF')", *r.id)
		require.NoError(t, err)
	}
	b.age(t, 91, inReview, followUp, unresolved, noDelivery)

	b.runRetention(t)
	for status, purged := range purgedBy {
		if purged {
			b.requirePurged(t, byStatus[status], status)
		} else {
			b.requireKept(t, byStatus[status])
		}
	}
	for _, id := range []int64{inReview, followUp, recent, unresolved} {
		b.requireKept(t, id)
	}
	d := b.document(t, noDelivery)
	require.NotNil(t, d.PurgedAt)
	require.Empty(t, d.CDA)
	require.Nil(t, d.PDF)
	purged := 5.0 + 1 // the five final statuses, and the report without a delivery
	kept := 6.0 + 3   // the six retaining statuses, one in review, the deadline, the unresolved
	require.Equal(t, purged, b.metric(t, "mssdispatch_retention_purged_total", "document"))
	require.Equal(t, kept, b.metric(t, "mssdispatch_retention_kept_documents", ""))
	require.Zero(t, b.metric(t, "mssdispatch_retention_purged_total", "quarantine"))

	// A second run finds nothing more to purge and leaves the purged as they were.
	before := b.document(t, byStatus[dispatch.StatusRead])
	b.runRetention(t)
	require.Equal(t, purged, b.metric(t, "mssdispatch_retention_purged_total", "document"))
	require.Equal(t, kept, b.metric(t, "mssdispatch_retention_kept_documents", ""))
	require.Equal(t, before, b.document(t, byStatus[dispatch.StatusRead]))

	// The last delivery in review is delivered, the deadlines ran (the
	// emails flagged unread, left to the worklist): both documents go at
	// the next run.
	b.setStatuses(t, inReview, dispatch.StatusDelivered)
	b.PassTime(t, 73*time.Hour, b.emails(t, followUp)...)
	b.Sweep(t)
	b.runRetention(t)
	b.requirePurged(t, inReview, dispatch.StatusDelivered)
	b.requirePurged(t, followUp, dispatch.StatusDelivered)
	b.requireKept(t, recent)
	require.Equal(t, purged+2, b.metric(t, "mssdispatch_retention_purged_total", "document"))
	require.Equal(t, kept-2, b.metric(t, "mssdispatch_retention_kept_documents", ""))
}

// TestRetentionFollowUps checks that a document past the period is kept
// exactly while a follow-up of one of its deliveries is to come (an
// acknowledgement deadline not swept yet, a deadline or fallback job that
// has not run), whatever its deliveries' statuses: an email's deadlines to
// come keep it, as does the read deadline still to come once the DSN
// deadline was swept; once both were swept and their jobs ran, with the
// fallbacks they enqueued, it goes. A deadline job the sweep enqueued and
// that was cancelled in River's UI has not run and may be retried: it keeps
// the document until it is retried and has run.
func TestRetentionFollowUps(t *testing.T) {
	t.Parallel()
	b := setupRetention(t, retention.Config{})
	b.SetRules(t, rules.Rule{Name: "suivi", Action: rules.Action{NoDSNHours: 24, NoDSNAction: rules.FallbackWorklist,
		UnreadHours: 72, UnreadAction: rules.FallbackWorklist}})
	pending := b.resolvedReport(t, "pending")
	dsnSwept := b.resolvedReport(t, "dsn-swept")
	ran := b.resolvedReport(t, "ran")
	cancelled := b.resolvedReport(t, "cancelled")
	all := []int64{pending, dsnSwept, ran, cancelled}
	for _, id := range all {
		b.setStatuses(t, id, dispatch.StatusDelivered) // the DSNs came, the rest is done
		emails := b.emails(t, id)
		require.Len(t, emails, 2)
		for _, e := range emails {
			_, due := b.AckDue(t, e)
			require.NotNil(t, due, "delivery %d: its deadlines to come", e)
		}
		require.Empty(t, b.followUpJobs(t, id), "no job before a deadline passes")
	}
	b.age(t, 91, all...)
	// The DSN deadline of one report passes (nothing to apply: the DSNs
	// came); both of another's pass (its emails flagged unread, left to the
	// worklist).
	b.PassTime(t, 25*time.Hour, b.emails(t, dsnSwept)...)
	b.PassTime(t, 73*time.Hour, b.emails(t, ran)...)
	b.Sweep(t)
	// Both of a third's pass; the read deadline jobs the sweep enqueues are
	// cancelled in River's UI before they run.
	b.PassTime(t, 73*time.Hour, b.emails(t, cancelled)...)
	b.sweepCancelling(t, 2)
	for _, e := range b.emails(t, cancelled) {
		_, due := b.AckDue(t, e)
		require.Nil(t, due, "delivery %d: its deadlines swept", e)
		require.Zero(t, b.EventCount(t, e, dispatch.EventUnread), "delivery %d", e)
	}

	b.runRetention(t)
	b.requireKept(t, pending)
	b.requireKept(t, dsnSwept)
	b.requirePurged(t, ran, dispatch.StatusDelivered)
	b.requireKept(t, cancelled)
	require.Equal(t, 3.0, b.metric(t, "mssdispatch_retention_kept_documents", ""))

	// The cancelled deadlines are retried and run, the read deadline of the
	// other passes: nothing keeps the documents any more.
	b.RunNow(t, b.followUpJobs(t, cancelled, rivertype.JobStateCancelled))
	b.WaitFollowUps(t)
	for _, e := range b.emails(t, cancelled) {
		require.Equal(t, 1, b.EventCount(t, e, dispatch.EventUnread), "delivery %d", e)
	}
	b.PassTime(t, 48*time.Hour, b.emails(t, dsnSwept)...)
	b.Sweep(t)
	b.runRetention(t)
	b.requirePurged(t, cancelled, dispatch.StatusDelivered)
	b.requirePurged(t, dsnSwept, dispatch.StatusDelivered)
	b.requireKept(t, pending)
	require.Equal(t, 1.0, b.metric(t, "mssdispatch_retention_kept_documents", ""))
	require.Equal(t, 3.0, b.metric(t, "mssdispatch_retention_purged_total", "document"))
}

// TestRetentionQuarantine checks that the raw bytes of messages quarantined
// past the period are purged, their reason and ids kept, and the recent ones
// left whole.
func TestRetentionQuarantine(t *testing.T) {
	t.Parallel()
	b := setupRetention(t, retention.Config{Days: 30})
	for i := range 3 {
		in := dispatchtest.Inbound(fmt.Sprintf("MSG-BAD-%d", i), fmt.Sprintf("bad %d", i))
		_, err := b.Service.Reject(b.Ctx, in, []byte("MSH|^~\\&|DPI|CH|bad message "+fmt.Sprint(i)), dispatch.Refusal{Reason: "PID-3 missing"}, []byte("ACK AE"))
		require.NoError(t, err)
	}
	_, err := b.Pool.Exec(b.Ctx, "UPDATE quarantine SET received_at = now() - interval '31 days' WHERE message_control_id <> 'MSG-BAD-2'")
	require.NoError(t, err)

	b.runRetention(t)
	rows, err := b.Pool.Query(b.Ctx, "SELECT message_control_id, reason, raw, purged_at FROM quarantine ORDER BY id")
	require.NoError(t, err)
	type row struct {
		controlID, reason string
		raw               []byte
		purgedAt          *time.Time
	}
	var got []row
	for rows.Next() {
		var r row
		require.NoError(t, rows.Scan(&r.controlID, &r.reason, &r.raw, &r.purgedAt))
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, 3)
	for i, r := range got {
		require.Equal(t, fmt.Sprintf("MSG-BAD-%d", i), r.controlID)
		require.Equal(t, "PID-3 missing", r.reason)
		if i < 2 {
			require.NotNil(t, r.purgedAt, r.controlID)
			require.Empty(t, r.raw, r.controlID)
			require.NotNil(t, r.raw, "raw stays NOT NULL")
		} else {
			require.Nil(t, r.purgedAt, r.controlID)
			require.Contains(t, string(r.raw), "bad message 2")
		}
	}
	require.Equal(t, 2.0, b.metric(t, "mssdispatch_retention_purged_total", "quarantine"))
	require.Zero(t, b.metric(t, "mssdispatch_retention_purged_total", "document"))

	b.runRetention(t)
	require.Equal(t, 2.0, b.metric(t, "mssdispatch_retention_purged_total", "quarantine"))
}

// TestRetentionAudit checks that the audit log's entries older than its
// period (a year by default) are purged by the retention job, the others kept.
func TestRetentionAudit(t *testing.T) {
	t.Parallel()
	b := setupRetention(t, retention.Config{Days: 30, AuditDays: 200})
	for _, age := range []string{"400 days", "201 days", "199 days", "1 day"} {
		_, err := b.Pool.Exec(b.Ctx, `INSERT INTO audit_log (at, actor, action) VALUES (now() - $1::interval, 'alice', $1)`, age)
		require.NoError(t, err)
	}
	b.runRetention(t)
	var left []string
	rows, err := b.Pool.Query(b.Ctx, `SELECT action FROM audit_log ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var a string
		require.NoError(t, rows.Scan(&a))
		left = append(left, a)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"199 days", "1 day", "audit_purged"}, left)
	require.Equal(t, 2.0, b.metric(t, "mssdispatch_retention_purged_total", "audit"))

	err = retention.AddPurge(river.NewWorkers(), retention.Config{Pool: b.Pool, AuditDays: 90})
	require.ErrorContains(t, err, "AuditDays 90: want at least 183")
}

// TestRetentionBatches checks that a run goes through more rows than one
// batch holds, one transaction per batch, documents and quarantine alike.
func TestRetentionBatches(t *testing.T) {
	t.Parallel()
	b := setupRetention(t, retention.Config{Days: retention.MinDays, BatchSize: 2})
	var reports []int64
	for i := range 5 {
		id := b.resolvedReport(t, fmt.Sprintf("batch-%d", i))
		b.setStatuses(t, id, dispatch.StatusRead)
		reports = append(reports, id)
	}
	kept := b.resolvedReport(t, "batch-kept")
	b.setStatuses(t, kept, dispatch.StatusFailed)
	b.age(t, 8, append(reports, kept)...)
	for i := range 5 {
		in := dispatchtest.Inbound(fmt.Sprintf("MSG-BATCH-%d", i), fmt.Sprint(i))
		_, err := b.Service.Reject(b.Ctx, in, []byte("not HL7"), dispatch.Refusal{Reason: "not an HL7 message"}, []byte("ACK AR"))
		require.NoError(t, err)
	}
	_, err := b.Pool.Exec(b.Ctx, "UPDATE quarantine SET received_at = now() - interval '8 days'")
	require.NoError(t, err)

	b.runRetention(t)
	for _, id := range reports {
		b.requirePurged(t, id, dispatch.StatusRead)
	}
	b.requireKept(t, kept)
	var documentBatches, quarantineBatches int
	require.NoError(t, b.Pool.QueryRow(b.Ctx, `SELECT count(DISTINCT purged_at) FROM documents`).Scan(&documentBatches))
	require.NoError(t, b.Pool.QueryRow(b.Ctx, `SELECT count(DISTINCT purged_at) FROM quarantine`).Scan(&quarantineBatches))
	require.Equal(t, 3, documentBatches, "5 documents, 2 a transaction")
	require.Equal(t, 3, quarantineBatches, "5 messages, 2 a transaction")
	require.Equal(t, 5.0, b.metric(t, "mssdispatch_retention_purged_total", "document"))
	require.Equal(t, 5.0, b.metric(t, "mssdispatch_retention_purged_total", "quarantine"))
	require.Equal(t, 1.0, b.metric(t, "mssdispatch_retention_kept_documents", ""))
}

// TestAddRetentionConfig checks the validation of Config.
func TestAddRetentionConfig(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	for name, cfg := range map[string]retention.Config{
		"no pool":        {Days: 90},
		"too short":      {Pool: pool, Days: retention.MinDays - 1},
		"negative":       {Pool: pool, Days: -30},
		"negative batch": {Pool: pool, BatchSize: -1},
	} {
		require.Error(t, retention.AddPurge(river.NewWorkers(), cfg), name)
	}
	require.NoError(t, retention.AddPurge(river.NewWorkers(), retention.Config{Pool: pool}))
	registry := prometheus.NewRegistry()
	workers := river.NewWorkers()
	require.NoError(t, retention.AddPurge(workers, retention.Config{Pool: pool, Registerer: registry}))
	require.Error(t, retention.AddPurge(river.NewWorkers(), retention.Config{Pool: pool, Registerer: registry}),
		"the metrics are registered once")
	require.Error(t, retention.AddPurge(workers, retention.Config{Pool: pool}), "the worker is added once")
}
