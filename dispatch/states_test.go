package dispatch_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/worker"
	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/rules"
)

// refusingTransport delivers to an outbox but answers a permanent failure
// for the addresses in refuse.
type refusingTransport struct {
	next mail.Transport
	mu   sync.Mutex
	// refuse maps an address to the failure its emails get.
	refuse map[string]bool
}

func (r *refusingTransport) Send(ctx context.Context, env mail.Envelope, msg []byte) error {
	r.mu.Lock()
	refused := r.refuse[env.To[0]]
	r.mu.Unlock()
	if refused {
		return &mail.PermanentError{Err: fmt.Errorf("550 5.1.1 %s: no such user", env.To[0])}
	}
	return r.next.Send(ctx, env, msg)
}

func (r *refusingTransport) set(address string, refused bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuse[address] = refused
}

// statusIs waits until the report's delivery to recipient on channel has status.
func (b *testBundle) statusIs(t *testing.T, reportID int64, recipient string, channel correspondents.Channel, status dispatch.Status) readmodel.DeliveryView {
	t.Helper()
	return b.env.StatusIs(t, reportID, recipient, channel, status)
}

// setRules puts rules in force through the service, as the CME's tools do.
func (b *testBundle) setRules(t *testing.T, rs ...rules.Rule) {
	t.Helper()
	b.env.SetRules(t, rs...)
}

// releaseNow makes the scheduled jobs of kind due now. It first waits for
// the running ones to end: one may be about to snooze until the time the
// test wants to skip.
func (b *testBundle) releaseNow(t *testing.T, kind string) {
	t.Helper()
	require.Eventually(t, func() bool { return len(b.jobs(t, kind, rivertype.JobStateRunning)) == 0 },
		20*time.Second, 20*time.Millisecond, "%s jobs still running", kind)
	b.runNow(t, b.jobs(t, kind, rivertype.JobStateScheduled))
}

// waitSnoozed waits until the n send jobs of the report have met its
// blocked domain and snoozed: one still running when releaseNow makes the
// snoozed ones due would snooze after it, for as long as the domain was
// blocked.
func (b *testBundle) waitSnoozed(t *testing.T, reportID int64, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		var snoozed int
		err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM river_job j JOIN deliveries d ON (j.args->>'delivery_id')::bigint = d.id
			WHERE j.kind = $1 AND j.state = 'scheduled' AND d.report_id = $2`, dispatch.SendArgs{}.Kind(), reportID).Scan(&snoozed)
		return err == nil && snoozed == n
	}, time.Minute, 50*time.Millisecond, "the %d send jobs of report %d snoozed", n, reportID)
}

// setTrustSpace puts domains in force as the trust space's whitelist.
func (b *testBundle) setTrustSpace(t *testing.T, domains ...string) {
	t.Helper()
	_, err := correspondents.NewStore(b.pool).ImportWhitelist(b.ctx, "test", domains, correspondents.ImportOptions{Force: true})
	require.NoError(t, err)
}

// reportOf is the test report for another document.
func reportOf(t *testing.T, name string) dispatch.Report {
	r := testReport(t)
	setDocumentID(t, &r, r.Document.ID+"-"+name)
	return r
}

// replacementOf is a new version of r.
func replacementOf(t *testing.T, r dispatch.Report) dispatch.Report {
	v2 := r
	v2.Action = dispatch.ActionReplace
	v2.Document.ParentID = r.Document.ID
	setDocumentID(t, &v2, r.Document.ID+"-v2")
	return v2
}

const jean = "Jean MARTIN"

// TestTransitions drives deliveries through every transition the state
// machine allows, by the real paths (jobs, acknowledgements, user actions,
// replacements, deletions, rules), then checks from the append-only history
// that every allowed transition happened and that no other one did.
func TestTransitions(t *testing.T) {
	t.Parallel()
	outbox, err := mail.NewOutbox(t.TempDir())
	require.NoError(t, err)
	transport := &refusingTransport{next: outbox, refuse: map[string]bool{}}
	b := setup(t, transport, func(c *worker.WorkerConfig) { c.RetryBackoff = 100 * time.Millisecond })
	ctx := b.ctx
	claireName := "Claire DUPONT-DEMO"
	const mss, paper = "mssante", "paper"

	// Default rules: "" -> queued -> sent, "" -> paper_pending, "" -> review.
	a := testReport(t)
	ra := b.receive(t, a).ReportID
	v := b.waitDeliveries(t, ra, 4)
	claireA, julieA := delivery(t, v, claire, mss), delivery(t, v, julie, mss)
	claireAPaper, jeanA := delivery(t, v, claireName, paper), delivery(t, v, jean, mss)
	require.Equal(t, dispatch.StatusSent, claireA.Status)
	require.Equal(t, dispatch.StatusPaperPending, claireAPaper.Status)
	require.Equal(t, dispatch.StatusReview, jeanA.Status)

	// Acknowledgements: sent -> delivered -> read; sent -> failed -> (resend)
	// queued -> sent -> delivered -> failed (an MDN error) -> read (late).
	require.NoError(t, b.svc.Acknowledge(ctx, claireA.ID, dispatch.AckDelivered, "DSN 2.0.0"))
	require.NoError(t, b.svc.Acknowledge(ctx, claireA.ID, dispatch.AckRead, "MDN displayed"))
	require.NoError(t, b.svc.Acknowledge(ctx, julieA.ID, dispatch.AckFailed, "DSN 5.1.1"))
	require.NoError(t, b.desk.Resend(ctx, julieA.ID, "sec1"))
	b.statusIs(t, ra, julie, mss, dispatch.StatusSent)
	require.NoError(t, b.svc.Acknowledge(ctx, julieA.ID, dispatch.AckDelivered, "DSN 2.0.0"))
	require.NoError(t, b.svc.Acknowledge(ctx, julieA.ID, dispatch.AckFailed, "MDN processed/Error: 902^patient inconnu"))
	require.NoError(t, b.svc.Acknowledge(ctx, julieA.ID, dispatch.AckRead, "MDN displayed, late"))
	// An acknowledgement a delivery is past changes nothing, and says so.
	require.NoError(t, b.svc.Acknowledge(ctx, claireA.ID, dispatch.AckDelivered, "DSN after the MDN"))
	b.statusIs(t, ra, claire, mss, dispatch.StatusRead)

	// Paper: paper_pending -> paper_sent -> review (a postal return).
	require.NoError(t, b.desk.MarkPaperSent(ctx, claireAPaper.ID, "sec1"))
	require.NoError(t, b.desk.PostalReturn(ctx, claireAPaper.ID, "sec1", "NPAI"))
	// A replacement supersedes what waits in review.
	b.waitDeliveries(t, b.receive(t, replacementOf(t, a)).ReportID, 4)
	b.statusIs(t, ra, jean, mss, dispatch.StatusSuperseded)
	b.statusIs(t, ra, claireName, paper, dispatch.StatusSuperseded)

	// sent -> read directly; failed -> delivered (a late DSN); paper_pending ->
	// review (held) -> paper_pending (approved) -> cancelled; review -> cancelled.
	rb := b.receive(t, reportOf(t, "B")).ReportID
	v = b.waitDeliveries(t, rb, 4)
	require.NoError(t, b.svc.Acknowledge(ctx, delivery(t, v, claire, mss).ID, dispatch.AckRead, "MDN processed"))
	julieB := delivery(t, v, julie, mss).ID
	require.NoError(t, b.svc.Acknowledge(ctx, julieB, dispatch.AckFailed, "no DSN in time"))
	require.NoError(t, b.svc.Acknowledge(ctx, julieB, dispatch.AckDelivered, "DSN, late"))
	claireBPaper := delivery(t, v, claireName, paper).ID
	require.NoError(t, b.desk.Hold(ctx, claireBPaper, "sec2", "adresse à vérifier"))
	require.NoError(t, b.desk.Approve(ctx, claireBPaper, "sec2"))
	require.NoError(t, b.desk.Cancel(ctx, claireBPaper, "sec2", "doublon"))
	require.NoError(t, b.desk.Cancel(ctx, delivery(t, v, jean, mss).ID, "sec2", "médecin parti"))

	// queued -> failed (a 5xx).
	transport.set(claire, true)
	rd := b.receive(t, reportOf(t, "D")).ReportID
	b.statusIs(t, rd, claire, mss, dispatch.StatusFailed)
	transport.set(claire, false)

	// While the demo operator is blocked, emails stay queued: queued ->
	// cancelled (a user), queued -> superseded and paper_pending -> superseded
	// (a replacement), then queued -> cancelled and paper_pending -> cancelled
	// (a deletion).
	_, err = b.pool.Exec(ctx, `INSERT INTO mail_domains (domain, blocked_until) VALUES ('medecin-demo.mssante.fr', now() + interval '1 hour')`)
	require.NoError(t, err)
	c := reportOf(t, "C")
	rc := b.receive(t, c).ReportID
	b.waitReport(t, rc, "4 deliveries", func(v readmodel.ReportView) bool { return len(v.Deliveries) == 4 })
	require.NoError(t, b.desk.Cancel(ctx, b.statusIs(t, rc, claire, mss, dispatch.StatusQueued).ID, "sec3", "envoi par erreur"))
	c2 := replacementOf(t, c)
	rc2 := b.receive(t, c2).ReportID
	b.statusIs(t, rc, julie, mss, dispatch.StatusSuperseded)
	b.statusIs(t, rc, claireName, paper, dispatch.StatusSuperseded)
	b.waitReport(t, rc2, "4 deliveries", func(v readmodel.ReportView) bool { return len(v.Deliveries) == 4 })
	del := dispatch.Report{Action: dispatch.ActionDelete, Flags: dispatch.DefaultFlags, Patient: c2.Patient,
		Document: dispatch.Document{ID: c2.Document.ID, Code: c2.Document.Code, Title: c2.Document.Title}}
	b.receive(t, del)
	b.statusIs(t, rc2, julie, mss, dispatch.StatusCancelled)
	b.statusIs(t, rc2, claireName, paper, dispatch.StatusCancelled)
	// queued -> review: the trust space lost the domain before the email went.
	ri := b.receive(t, reportOf(t, "I")).ReportID
	b.statusIs(t, ri, claire, mss, dispatch.StatusQueued)
	b.waitSnoozed(t, ri, 2) // Claire's and Julie's
	b.setTrustSpace(t, "ch-demo.mssante.fr")
	_, err = b.pool.Exec(ctx, `DELETE FROM mail_domains`)
	require.NoError(t, err)
	b.releaseNow(t, dispatch.SendArgs{}.Kind())
	b.statusIs(t, ri, claireName, mss, dispatch.StatusReview)
	b.setTrustSpace(t, "medecin-demo.mssante.fr", "ch-demo.mssante.fr")

	// Rule "review": review -> queued -> sent and review -> paper_pending by
	// approval; a review without an address cannot be approved.
	b.setRules(t, rules.Rule{Name: "revue", Match: rules.Match{DocumentCodes: []string{"11490-0"}},
		Action: rules.Action{Send: rules.SendReview}})
	re := b.receive(t, reportOf(t, "E")).ReportID
	v = b.waitDeliveries(t, re, 4)
	for _, d := range v.Deliveries {
		require.Equal(t, dispatch.StatusReview, d.Status, d.Recipient)
	}
	require.NoError(t, b.desk.Approve(ctx, delivery(t, v, claire, mss).ID, "sec4"))
	require.NoError(t, b.desk.Approve(ctx, delivery(t, v, claireName, paper).ID, "sec4"))
	require.ErrorIs(t, b.desk.Approve(ctx, delivery(t, v, jean, mss).ID, "sec4"), dispatch.ErrNoAddress)
	b.statusIs(t, re, claire, mss, dispatch.StatusSent)

	// Rule "delay": "" -> scheduled; scheduled -> queued and scheduled ->
	// paper_pending when the delay ends; scheduled -> review (held);
	// scheduled -> cancelled; scheduled -> superseded.
	b.setRules(t, rules.Rule{Name: "délai", Action: rules.Action{Send: rules.SendDelay, DelayHours: 2}})
	rf := b.receive(t, reportOf(t, "F")).ReportID
	v = b.waitReport(t, rf, "scheduled", func(v readmodel.ReportView) bool {
		return len(v.Deliveries) == 4 && delivery(t, v, claire, mss).Status == dispatch.StatusScheduled
	})
	require.NoError(t, b.desk.Hold(ctx, delivery(t, v, julie, mss).ID, "sec5", "attendre la consultation"))
	b.releaseNow(t, "release_delivery")
	b.statusIs(t, rf, claire, mss, dispatch.StatusSent)
	b.statusIs(t, rf, claireName, paper, dispatch.StatusPaperPending)
	g := reportOf(t, "G")
	rg := b.receive(t, g).ReportID
	v = b.waitReport(t, rg, "scheduled", func(v readmodel.ReportView) bool { return len(v.Deliveries) == 4 })
	require.NoError(t, b.desk.Cancel(ctx, delivery(t, v, claire, mss).ID, "sec5", "erreur"))
	b.receive(t, replacementOf(t, g))
	b.statusIs(t, rg, julie, mss, dispatch.StatusSuperseded)

	// "" -> cancelled: the DPI excludes professionals.
	b.setRules(t, rules.Default)
	patientOnly := reportOf(t, "H")
	patientOnly.Flags = dispatch.Flags{Present: true, ToPatient: true}
	patientOnly.Patient.INSQualified = true
	rh := b.receive(t, patientOnly).ReportID
	b.statusIs(t, rh, claireName, mss, dispatch.StatusCancelled)

	// What the state machine refuses.
	for _, bad := range []error{
		b.desk.MarkPaperSent(ctx, claireA.ID, "x"),
		b.desk.Resend(ctx, claireA.ID, "x"),
		b.desk.Approve(ctx, claireA.ID, "x"),
		b.desk.Hold(ctx, claireA.ID, "x", ""),
		b.desk.PostalReturn(ctx, julieA.ID, "x", ""),
		b.desk.Cancel(ctx, claireA.ID, "x", ""),
	} {
		require.ErrorIs(t, bad, dispatch.ErrTransition)
	}

	// The history holds every allowed transition, and nothing else.
	rows, err := b.pool.Query(ctx, `SELECT DISTINCT coalesce(from_status, ''), to_status FROM delivery_events
		WHERE from_status IS DISTINCT FROM to_status`)
	require.NoError(t, err)
	seen := map[string]bool{}
	for rows.Next() {
		var from, to string
		require.NoError(t, rows.Scan(&from, &to))
		seen[from+" -> "+to] = true
	}
	require.NoError(t, rows.Err())
	var want, got []string
	for from, tos := range dispatch.Transitions() {
		for _, to := range tos {
			want = append(want, string(from)+" -> "+string(to))
		}
	}
	for k := range seen {
		got = append(got, k)
	}
	slices.Sort(want)
	slices.Sort(got)
	require.Equal(t, want, got)

	// Who did what: the rule at creation, the user for an action, the system for an acknowledgement.
	var actors []string
	rows, err = b.pool.Query(ctx, `SELECT event || ':' || actor_kind || ':' || actor FROM delivery_events
		WHERE delivery_id = $1 ORDER BY id`, julieA.ID)
	require.NoError(t, err)
	for rows.Next() {
		var a string
		require.NoError(t, rows.Scan(&a))
		actors = append(actors, a)
	}
	require.Equal(t, []string{"created:rule:défaut", "sending:system:", "sent:system:", "failed:system:",
		"fallback:rule:défaut", "resent:user:sec1", "sending:system:", "sent:system:", "delivered:system:",
		"failed:system:", "fallback:rule:défaut", "read:system:"}, orderFallbacks(actors))

	// The history is append-only.
	_, err = b.pool.Exec(ctx, `UPDATE delivery_events SET detail = 'x' WHERE delivery_id = $1`, julieA.ID)
	require.ErrorContains(t, err, "append-only")
	_, err = b.pool.Exec(ctx, `DELETE FROM delivery_events WHERE delivery_id = $1`, julieA.ID)
	require.ErrorContains(t, err, "append-only")
}

// orderFallbacks returns events with each fallback moved right after the
// failure it follows: the fallback job runs asynchronously, so it may be
// recorded after the next action.
func orderFallbacks(events []string) []string {
	var out, fallbacks []string
	for _, e := range events {
		if strings.HasPrefix(e, "fallback:") {
			fallbacks = append(fallbacks, e)
			continue
		}
		out = append(out, e)
	}
	var merged []string
	for _, e := range out {
		merged = append(merged, e)
		if strings.HasPrefix(e, "failed:") && len(fallbacks) > 0 {
			merged = append(merged, fallbacks[0])
			fallbacks = fallbacks[1:]
		}
	}
	return merged
}
