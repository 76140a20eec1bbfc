package dispatch_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/worker"
	"github.com/mssdispatch/mssdispatch/internal/dispatchtest"
	"github.com/mssdispatch/mssdispatch/internal/smtptest"
	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/rules"
)

// twoDomainReport is a report to one recipient on each of two trusted
// domains, given by the DPI.
func twoDomainReport(t *testing.T, n int) dispatch.Report {
	r := reportOf(t, fmt.Sprintf("two-%d", n))
	r.Recipients = []dispatch.Recipient{
		{Role: "RCT", Kind: dispatch.KindOrganisation, Organisation: "Cabinet", Address: fmt.Sprintf("cab%d@medecin-demo.mssante.fr", n)},
		{Role: "RCT", Kind: dispatch.KindOrganisation, Organisation: "Service", Address: fmt.Sprintf("svc%d@ch-demo.mssante.fr", n)},
	}
	return r
}

// TestOperatorOutage has one operator answer 421 at RCPT TO for a while: its
// emails wait (snoozed, attempts not used up, its domain blocked) while the
// other operator's keep flowing, then they all go out once it recovers.
func TestOperatorOutage(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	down.Store(true)
	var refused atomic.Int64
	srv := smtptest.Start(t, smtptest.Options{Rcpt: func(to string) *smtp.SMTPError {
		if down.Load() && strings.HasSuffix(to, "@medecin-demo.mssante.fr") {
			refused.Add(1)
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Service not available, try later"}
		}
		return nil
	}})
	transport, err := mail.NewSMTP(mail.SMTPConfig{Addr: srv.Addr, CAFile: srv.CA.File, Timeout: 5 * time.Second})
	require.NoError(t, err)
	b := setup(t, transport, func(c *worker.WorkerConfig) { c.RetryBackoff = 300 * time.Millisecond })

	const reports = 10
	for i := range reports {
		b.receive(t, twoDomainReport(t, i))
	}
	// The healthy operator gets all its emails while the other is down.
	msgs := srv.WaitMessages(t, reports, 30*time.Second)
	for _, m := range msgs {
		require.True(t, strings.HasSuffix(m.To[0], "@ch-demo.mssante.fr"), m.To[0])
	}
	var blocked int
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM mail_domains
		WHERE domain = 'medecin-demo.mssante.fr' AND failures >= 1`).Scan(&blocked))
	require.Equal(t, 1, blocked)
	// The domain tried again twice, each time its block ended (after 300 ms,
	// then 600 ms): it counts 3 failures.
	require.Eventually(t, func() bool {
		var failures int
		err := b.pool.QueryRow(b.ctx, `SELECT failures FROM mail_domains
			WHERE domain = 'medecin-demo.mssante.fr'`).Scan(&failures)
		return err == nil && failures >= 3
	}, 30*time.Second, 20*time.Millisecond, "the blocked domain is tried again")
	// Snoozed while blocked: far fewer connections than one per job and per backoff.
	require.Less(t, refused.Load(), int64(4*reports), "the blocked domain is not hammered")
	var queued, attemptsUsed int
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM deliveries
		WHERE status = 'queued' AND address LIKE '%@medecin-demo.mssante.fr'`).Scan(&queued))
	require.Equal(t, reports, queued)
	for _, j := range b.jobs(t, dispatch.SendArgs{}.Kind()) {
		attemptsUsed = max(attemptsUsed, j.Attempt)
	}
	require.LessOrEqual(t, attemptsUsed, 1, "snoozes do not use up attempts")

	// The operator recovers: the waiting emails go out.
	down.Store(false)
	srv.WaitMessages(t, 2*reports, 30*time.Second)
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM deliveries WHERE status = 'sent'`).Scan(&n))
		return n == 2*reports
	}, 10*time.Second, 50*time.Millisecond)
	var left int
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM mail_domains`).Scan(&left))
	require.Zero(t, left, "a success unblocks the domain")
}

// TestServerOutage has the submission server itself refuse at MAIL FROM:
// every send waits (the server scope is blocked), then all go out.
func TestServerOutage(t *testing.T) {
	t.Parallel()
	outbox, err := mail.NewOutbox(t.TempDir())
	require.NoError(t, err)
	var down atomic.Bool
	down.Store(true)
	flaky := transportFunc(func(ctx context.Context, env mail.Envelope, msg []byte) error {
		if down.Load() {
			return fmt.Errorf("mail: MAIL FROM: 421 4.3.2 system not accepting network messages")
		}
		return outbox.Send(ctx, env, msg)
	})
	b := setup(t, flaky, func(c *worker.WorkerConfig) { c.RetryBackoff = 200 * time.Millisecond })
	rc := b.receive(t, testReport(t)).ReportID
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM mail_domains WHERE domain = '*'`).Scan(&n))
		return n == 1
	}, 10*time.Second, 50*time.Millisecond)
	down.Store(false)
	b.statusIs(t, rc, claire, "mssante", dispatch.StatusSent)
	b.statusIs(t, rc, julie, "mssante", dispatch.StatusSent)
}

type transportFunc func(ctx context.Context, env mail.Envelope, msg []byte) error

func (f transportFunc) Send(ctx context.Context, env mail.Envelope, msg []byte) error {
	return f(ctx, env, msg)
}

// TestGiveUp fails an email that waited through temporary failures for
// longer than GiveUpAfter, and applies its fallback.
func TestGiveUp(t *testing.T) {
	t.Parallel()
	always421 := transportFunc(func(context.Context, mail.Envelope, []byte) error {
		return &mail.RecipientError{Err: fmt.Errorf("mail: RCPT TO: 421 4.4.2 try later")}
	})
	b := setup(t, always421, func(c *worker.WorkerConfig) {
		c.RetryBackoff = 100 * time.Millisecond
		c.GiveUpAfter = time.Second
	})
	rc := b.receive(t, testReport(t)).ReportID
	d := b.statusIs(t, rc, julie, "mssante", dispatch.StatusFailed)
	var lastError string
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT last_error FROM deliveries WHERE id = $1`, d.ID).Scan(&lastError))
	require.Contains(t, lastError, "giving up")
	// Julie's fallback: a paper delivery to her directory address.
	paper := b.statusIs(t, rc, "Julie ROUX", "paper", dispatch.StatusPaperPending)
	require.Equal(t, dispatch.ReasonFallbackPaper, paper.Reason)
}

// TestDeadlines runs the acknowledgement deadlines of a rule: no DSN in time
// fails the email and falls back to paper; no MDN in time flags it unread
// and leaves it to the worklist; an acknowledged email is left alone. The
// deadlines are on the deliveries, swept by the watchdog, not a job per
// email.
func TestDeadlines(t *testing.T) {
	t.Parallel()
	b, _ := setupOutbox(t)
	b.setRules(t, rules.Rule{Name: "suivi", Action: rules.Action{OnFailure: rules.FallbackPaper,
		NoDSNHours: 24, NoDSNAction: rules.FallbackPaper, UnreadHours: 72, UnreadAction: rules.FallbackWorklist}})
	rc := b.receive(t, testReport(t)).ReportID
	claireD := b.statusIs(t, rc, claire, "mssante", dispatch.StatusSent)
	julieD := b.statusIs(t, rc, julie, "mssante", dispatch.StatusSent)
	for _, d := range []int64{claireD.ID, julieD.ID} {
		_, due := b.env.AckDue(t, d)
		require.NotNil(t, due, "delivery %d", d)
		require.WithinDuration(t, time.Now().Add(24*time.Hour), *due, time.Minute, "the DSN deadline is 24 h after the send")
	}
	require.Empty(t, b.jobs(t, worker.DeadlineArgs{}.Kind()), "no deadline job per email")

	// Claire's DSN came; Julie's did not. The DSN deadline passes.
	require.NoError(t, b.svc.Acknowledge(b.ctx, claireD.ID, dispatch.AckDelivered, "DSN 2.0.0"))
	b.env.PassTime(t, 25*time.Hour, claireD.ID, julieD.ID)
	b.env.Sweep(t)
	b.statusIs(t, rc, julie, "mssante", dispatch.StatusFailed)
	paper := b.statusIs(t, rc, "Julie ROUX", "paper", dispatch.StatusPaperPending)
	require.Equal(t, dispatch.ReasonFallbackPaper, paper.Reason)
	require.Contains(t, paper.ReasonText, "pas d'accusé de réception")
	b.statusIs(t, rc, claire, "mssante", dispatch.StatusDelivered)
	require.Empty(t, b.env.Row(t, readmodel.WorklistAll, claireD.ID).Attention, "Claire's read deadline is to come")
	require.Zero(t, b.eventCount(t, claireD.ID, dispatch.EventUnread))
	sentAt, due := b.env.AckDue(t, claireD.ID)
	require.NotNil(t, due)
	require.Equal(t, sentAt.Add(72*time.Hour).UTC(), due.UTC(), "Claire's next deadline is the read one")

	// Claire's MDN does not come either: the read deadline passes.
	b.env.PassTime(t, 48*time.Hour, claireD.ID, julieD.ID)
	b.env.Sweep(t)
	require.Equal(t, dispatch.CauseUnread, b.env.Row(t, readmodel.WorklistFailed, claireD.ID).Attention)
	// The unread email asked for a read notification because the rule watches for it.
	require.Equal(t, 1, b.eventCount(t, claireD.ID, dispatch.EventUnread))
	require.Equal(t, 1, b.eventCount(t, claireD.ID, dispatch.EventFallback))
	require.Zero(t, b.eventCount(t, julieD.ID, dispatch.EventUnread), "a failed email has no read deadline")
	// A read clears the flag.
	require.NoError(t, b.svc.Acknowledge(b.ctx, claireD.ID, dispatch.AckRead, "MDN displayed"))
	require.Empty(t, b.env.Row(t, readmodel.WorklistAll, claireD.ID).Attention)
}

// eventCount counts the events of a delivery's history with that name.
func (b *testBundle) eventCount(t *testing.T, deliveryID int64, event dispatch.Event) int {
	t.Helper()
	return b.env.EventCount(t, deliveryID, event)
}

// TestFallbackPolicies checks both fallbacks of a failed email: paper (to
// review when the postal address is unknown) and the worklist.
func TestFallbackPolicies(t *testing.T) {
	t.Parallel()
	outbox, err := mail.NewOutbox(t.TempDir())
	require.NoError(t, err)
	refusing := &refusingTransport{next: outbox, refuse: map[string]bool{julie: true, "x@medecin-demo.mssante.fr": true}}
	b := setup(t, refusing)

	// Paper: Julie's directory entry has a postal address.
	rc := b.receive(t, testReport(t)).ReportID
	b.statusIs(t, rc, julie, "mssante", dispatch.StatusFailed)
	b.statusIs(t, rc, "Julie ROUX", "paper", dispatch.StatusPaperPending)

	// Paper without a postal address: a paper delivery in review.
	r := reportOf(t, "nopostal")
	r.Recipients = []dispatch.Recipient{{Role: "RCT", Kind: dispatch.KindOrganisation, Organisation: "Cabinet X",
		Address: "x@medecin-demo.mssante.fr"}}
	rx := b.receive(t, r).ReportID
	b.statusIs(t, rx, "x@medecin-demo.mssante.fr", "mssante", dispatch.StatusFailed)
	review := b.statusIs(t, rx, "Cabinet X", "paper", dispatch.StatusReview)
	require.Contains(t, review.ReasonText, "Adresse postale inconnue")

	// Worklist: nothing but the failed delivery and its history.
	b.setRules(t, rules.Rule{Name: "liste", Action: rules.Action{OnFailure: rules.FallbackWorklist}})
	rw := b.receive(t, reportOf(t, "worklist")).ReportID
	failed := b.statusIs(t, rw, julie, "mssante", dispatch.StatusFailed)
	require.Eventually(t, func() bool { return b.eventCount(t, failed.ID, dispatch.EventFallback) == 1 }, 10*time.Second, 50*time.Millisecond)
	v, err := b.views.Report(b.ctx, "test", rw)
	require.NoError(t, err)
	for _, d := range v.Deliveries {
		require.NotEqual(t, dispatch.ReasonFallbackPaper, d.Reason, "no paper for the worklist policy")
	}
}

// TestInterruptedSend simulates a crash between the SMTP 250 and its record:
// the next attempt sends again with the same Message-ID and says so.
func TestInterruptedSend(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var ids []string
	var crashed atomic.Bool
	outbox, err := mail.NewOutbox(t.TempDir())
	require.NoError(t, err)
	crashing := transportFunc(func(ctx context.Context, env mail.Envelope, msg []byte) error {
		if err := outbox.Send(ctx, env, msg); err != nil {
			return err
		}
		if env.To[0] == julie {
			mu.Lock()
			ids = append(ids, messageIDOf(string(msg)))
			mu.Unlock()
			if crashed.CompareAndSwap(false, true) {
				// The email left, then the process "dies": the job never records it.
				panic("simulated crash after SMTP 250")
			}
		}
		return nil
	})
	b := setup(t, crashing)
	rc := b.receive(t, testReport(t)).ReportID
	d := b.statusIs(t, rc, julie, "mssante", dispatch.StatusSent)
	mu.Lock()
	require.Len(t, ids, 2, "sent twice: the duplicate window of one crash")
	require.Equal(t, ids[0], ids[1], "with the same Message-ID")
	mu.Unlock()
	var detail string
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT detail FROM delivery_events WHERE delivery_id = $1 AND event = 'sending'
		ORDER BY id DESC LIMIT 1`, d.ID).Scan(&detail))
	require.Contains(t, detail, "interrompu")
}

// TestJobsRunAgainAfterTheirWork simulates a crash after a job's work was
// committed and before River completed the job (the resolve job's plan, the
// send job's record of "sent"): run again, each finds its work done and
// does nothing, no second delivery, no second email, no second event.
func TestJobsRunAgainAfterTheirWork(t *testing.T) {
	t.Parallel()
	b, outboxDir := setupOutbox(t)
	rc := b.receive(t, testReport(t)).ReportID
	d := b.statusIs(t, rc, julie, "mssante", dispatch.StatusSent)
	before := b.waitDeliveries(t, rc, 4)
	emails := len(dispatchtest.Recipients(t, outboxDir))

	var jobs []*rivertype.JobRow
	require.Eventually(t, func() bool { // River completes them after their work
		jobs = append(b.env.Jobs(t, dispatch.ResolveArgs{}.Kind(), rivertype.JobStateCompleted),
			b.env.DeliveryJobs(t, dispatch.SendArgs{}.Kind(), d.ID, rivertype.JobStateCompleted)...)
		return len(jobs) == 2
	}, 10*time.Second, 20*time.Millisecond)
	b.env.RunAgain(t, jobs)

	after := b.waitDeliveries(t, rc, 4)
	require.Len(t, after.Deliveries, len(before.Deliveries), "no delivery created again")
	require.Len(t, dispatchtest.Recipients(t, outboxDir), emails, "no email sent again")
	require.Equal(t, 1, b.eventCount(t, d.ID, dispatch.EventSent))
	require.Equal(t, 1, b.eventCount(t, d.ID, dispatch.EventSending))
}

// messageIDOf returns the Message-Id header of a raw email.
func messageIDOf(raw string) string {
	for line := range strings.SplitSeq(raw, "\r\n") {
		if v, ok := strings.CutPrefix(line, "Message-Id: "); ok {
			return v
		}
	}
	return ""
}

// TestWatchdog checks the sweep itself: a deadline passed is applied once,
// however many sweeps follow; a delivery with no deadline left has none on
// it; an email whose deadlines have not come is left as it was.
func TestWatchdog(t *testing.T) {
	t.Parallel()
	b, _ := setupOutbox(t)
	b.setRules(t, rules.Rule{Name: "suivi", Action: rules.Action{NoDSNHours: 1, NoDSNAction: rules.FallbackWorklist,
		UnreadHours: 2, UnreadAction: rules.FallbackWorklist}})
	overdue := b.receive(t, reportOf(t, "overdue")).ReportID
	fresh := b.receive(t, reportOf(t, "fresh")).ReportID
	claireD := b.statusIs(t, overdue, claire, "mssante", dispatch.StatusSent)
	julieD := b.statusIs(t, overdue, julie, "mssante", dispatch.StatusSent)
	untouched := map[int64]*time.Time{}
	for _, address := range []string{claire, julie} {
		id := b.statusIs(t, fresh, address, "mssante", dispatch.StatusSent).ID
		_, untouched[id] = b.env.AckDue(t, id)
	}

	// Julie's DSN deadline passes; Claire's DSN came and her read deadline passes.
	require.NoError(t, b.svc.Acknowledge(b.ctx, claireD.ID, dispatch.AckDelivered, "DSN 2.0.0"))
	b.env.PassTime(t, 90*time.Minute, julieD.ID)
	b.env.PassTime(t, 3*time.Hour, claireD.ID)
	for range 2 {
		b.env.Sweep(t)
		b.statusIs(t, overdue, julie, "mssante", dispatch.StatusFailed)
		require.Equal(t, 1, b.eventCount(t, julieD.ID, dispatch.EventNoDSN))
		require.Equal(t, 1, b.eventCount(t, claireD.ID, dispatch.EventUnread))
		for _, id := range []int64{claireD.ID, julieD.ID} {
			require.Equal(t, 1, b.eventCount(t, id, dispatch.EventFallback), "delivery %d", id)
			require.Len(t, b.deliveryJobs(t, worker.DeadlineArgs{}.Kind(), id), 1, "delivery %d: one deadline job", id)
		}
	}
	_, claireDue := b.env.AckDue(t, claireD.ID)
	require.Nil(t, claireDue, "Claire has no deadline left")

	// Julie's read deadline passes: a failed email has nothing to apply.
	b.env.PassTime(t, time.Hour, julieD.ID)
	b.env.Sweep(t)
	_, julieDue := b.env.AckDue(t, julieD.ID)
	require.Nil(t, julieDue, "Julie has no deadline left")
	require.Zero(t, b.eventCount(t, julieD.ID, dispatch.EventUnread))
	require.Len(t, b.deliveryJobs(t, worker.DeadlineArgs{}.Kind(), julieD.ID), 1, "no read deadline job")

	// The other report's emails were not due: the sweeps left them alone.
	for id, before := range untouched {
		_, after := b.env.AckDue(t, id)
		require.NotNil(t, after, "delivery %d", id)
		require.Equal(t, before, after, "delivery %d", id)
		require.Empty(t, b.deliveryJobs(t, worker.DeadlineArgs{}.Kind(), id))
	}
	b.statusIs(t, fresh, claire, "mssante", dispatch.StatusSent)
	b.statusIs(t, fresh, julie, "mssante", dispatch.StatusSent)
}

// TestWatchdogBatches has one sweep go through more deliveries than one of
// its transactions takes (500): it sweeps them all.
func TestWatchdogBatches(t *testing.T) {
	t.Parallel()
	b, _ := setupOutbox(t)
	rc := b.receive(t, testReport(t)).ReportID
	b.waitDeliveries(t, rc, 4)
	// 600 emails delivered, their DSN deadline come: nothing to apply, a
	// deadline to clear.
	_, err := b.pool.Exec(b.ctx, `WITH r AS (
			INSERT INTO recipients (report_id, position, role) SELECT $1, 100 + n, 'RCT' FROM generate_series(1, 600) n
			RETURNING id
		)
		INSERT INTO deliveries (report_id, recipient_id, channel, status, reason, reason_text, policy, sent_at, ack_due_at)
		SELECT $1, id, 'mssante', 'delivered', 'test', 'test', '{"no_dsn_hours": 1}',
			now() - interval '2 hours', now() - interval '1 hour' FROM r`, rc)
	require.NoError(t, err)

	b.env.Sweep(t)
	var left int
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM deliveries WHERE ack_due_at IS NOT NULL`).Scan(&left))
	require.Zero(t, left)
	require.Empty(t, b.jobs(t, worker.DeadlineArgs{}.Kind()))
}
