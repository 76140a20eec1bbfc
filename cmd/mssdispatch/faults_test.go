package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
	"github.com/mssdispatch/mssdispatch/internal/smtptest"
)

// The fault suite (make faults): the built binary under PostgreSQL
// restarted during load, the SMTP server down for minutes, an instance
// killed mid-load. Each test prints what was sent, acknowledged, lost and
// duplicated.
var (
	faults         = flag.Bool("faults", false, "run the fault suite (TestFault*; make faults)")
	faultSMTPDown  = flag.Duration("fault-smtp-down", 2*time.Minute, "how long TestFaultSMTPDown keeps the SMTP server down")
	faultPGDown    = flag.Duration("fault-pg-down", 7*time.Second, "how long TestFaultPostgresRestart keeps PostgreSQL stopped")
	faultResendGap = 300 * time.Millisecond // how long the simulated DPI waits before resending a message without its AA
)

const (
	faultConns       = 4                // MLLP connections of the simulated DPI
	faultSendTimeout = 20 * time.Second // one MLLP exchange; past it the DPI resends
	// faultAckBound is how long every message may take to get its AA, resends included.
	faultAckBound = 3 * time.Minute
	// faultRecoveryBound is how soon after PostgreSQL is back a new message must get its AA.
	faultRecoveryBound = 30 * time.Second
	// faultResumeBound is how soon after the end of a fault (PostgreSQL
	// back, a killed instance started again, the SMTP server back) the
	// first email must leave, and the last one it held (issue #23).
	faultResumeBound = 10 * time.Second
)

func skipUnlessFaults(t *testing.T) {
	t.Helper()
	if !*faults {
		t.Skip("make faults runs it (-faults)")
	}
}

// TestFaultPostgresRestart stops a private PostgreSQL cluster for a few
// seconds while a DPI sends reports over four MLLP connections, then starts
// it again. While it is down the intake answers AR (or holds until the DPI's
// timeout), never AA; the DPI resends until AA. Afterwards every AA'd
// message is stored, every message is stored exactly once, a new message
// gets its AA soon after PostgreSQL is back (no restart of the service), and
// the resolve and send jobs (outbox transport) catch up: the first email
// leaves, and the last of those the outage held, within faultResumeBound.
func TestFaultPostgresRestart(t *testing.T) {
	skipUnlessFaults(t)
	t.Parallel()
	bin := buildBinary(t)
	cluster := startPGCluster(t)
	runOK(t, mapEnv(map[string]string{"MSSDISPATCH_DATABASE_URL": cluster.url}), "migrate")
	importDemo(t, cluster.url)
	outbox := t.TempDir()
	svc := startBinary(t, bin, cluster.url, "MSSDISPATCH_TRANSPORT=outbox", "MSSDISPATCH_OUTBOX_DIR="+outbox)

	load := startDPILoad(t, faultConns, 0, 0, svc.mllpAddr)
	require.Eventually(t, func() bool { return load.acked() >= 50 }, time.Minute, 10*time.Millisecond, "intake before the fault")

	down := time.Now()
	cluster.stop(t)
	stopped := time.Now()
	refusedBefore := load.refused()
	time.Sleep(*faultPGDown) // the outage
	refusedDuring := load.refused() - refusedBefore
	restart := time.Now()
	cluster.start(t)
	up := time.Now()
	t.Logf("PostgreSQL stopped in %s, down %s, started in %s; %d refusals meanwhile",
		stopped.Sub(down).Round(time.Millisecond), up.Sub(stopped).Round(time.Millisecond),
		up.Sub(restart).Round(time.Millisecond), refusedDuring)
	require.Positive(t, refusedDuring, "the intake refused (or timed out) while PostgreSQL was down")
	pool, err := pgxpool.New(context.Background(), cluster.url)
	require.NoError(t, err)
	defer pool.Close()
	// What the outage held: the emails of the reports stored before it
	// still to send (queued, or to come of a report not resolved yet; a
	// third recipient's waits in review), counted the moment PostgreSQL is
	// back (its clock).
	var upAt time.Time
	var lastHeld int64
	var held int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT now(), coalesce(max(id), 0),
		(SELECT count(*) FROM deliveries WHERE status = 'queued')
		+ 2 * (SELECT count(*) FROM reports WHERE status <> 'resolved') FROM reports`).Scan(&upAt, &lastHeld, &held))

	// Recovered without a restart: a new message, sent now on its own
	// connection and resent like the DPI does, gets its AA within the bound.
	recovery := load.probe(t, svc.mllpAddr, faultRecoveryBound)
	t.Logf("a new message got its AA %s after PostgreSQL was back", recovery.Round(time.Millisecond))
	ackedAtRecovery := load.acked()
	require.Eventually(t, func() bool { return load.acked() >= ackedAtRecovery+50 }, time.Minute, 10*time.Millisecond,
		"intake after the fault")
	// The first email sent after PostgreSQL is back, and the last one it held.
	var first, last time.Duration
	require.Eventually(t, func() bool {
		var at *time.Time
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT min(sent_at) FROM deliveries WHERE sent_at >= $1`,
			upAt).Scan(&at))
		if at != nil {
			first = at.Sub(upAt)
		}
		return at != nil
	}, time.Minute, 50*time.Millisecond, "an email sent after PostgreSQL is back")
	load.finish(t)
	aaDuringOutage := load.ackedBetween(stopped, restart)
	// Once the DPI's resending ends (4 connections unpaced: while a report
	// is received, the jobs run one at a time beside it), the last email
	// the outage held.
	heldSent := assert.Eventually(t, func() bool {
		var pending int
		var at *time.Time
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM reports WHERE id <= $1 AND status <> 'resolved')
			+ (SELECT count(*) FROM deliveries WHERE report_id <= $1 AND status = 'queued'),
			(SELECT max(sent_at) FROM deliveries WHERE report_id <= $1)`, lastHeld).Scan(&pending, &at))
		if pending == 0 && at != nil {
			last = max(at.Sub(upAt), 0)
		}
		return pending == 0
	}, time.Minute, 50*time.Millisecond, "the emails the outage held, sent")
	if !heldSent {
		t.Fatalf("work left:\n%s", pendingJobs(t, pool))
	}
	t.Logf("after PostgreSQL was back: the first email sent %s later, the last of the %d it held %s later",
		first.Round(time.Millisecond), held, last.Round(time.Millisecond))
	require.LessOrEqual(t, first, faultResumeBound, "the first email after PostgreSQL is back")
	require.LessOrEqual(t, last, faultResumeBound, "the last email the outage held")

	s := load.check(t, pool)

	// The jobs went on: every report resolved, Claire's and Julie's emails written.
	require.Eventually(t, func() bool {
		var unresolved, sent int
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM reports WHERE status <> 'resolved'),
			(SELECT count(*) FROM deliveries WHERE channel = 'mssante' AND status = 'sent')`).Scan(&unresolved, &sent))
		return unresolved == 0 && sent == 2*s.stored
	}, 2*time.Minute, 200*time.Millisecond, "resolve and send jobs after the restart")
	emls, err := filepath.Glob(filepath.Join(outbox, "*.eml"))
	require.NoError(t, err)
	require.Len(t, emls, 2*s.stored, "one email file per MSSanté delivery")

	s.extra = fmt.Sprintf("PostgreSQL down %s, %d AA while it was down, a new message's AA %s after it was back, "+
		"the first email %s after, the last of the %d it held %s after; %d emails written",
		up.Sub(stopped).Round(100*time.Millisecond), aaDuringOutage, recovery.Round(time.Millisecond),
		first.Round(time.Millisecond), held, last.Round(time.Millisecond), len(emls))
	s.print(t, "postgres-restart")
}

// TestFaultSMTPDown makes the submission server unreachable (nothing
// listens on its address: connection refused) for -fault-smtp-down (2
// minutes by default) while reports come in, then brings it back on the same
// address. Every report gets its AA meanwhile (the intake does not depend on
// SMTP), the sends retry, and once the server is back every email arrives
// within faultResumeBound (issue #23: the server's block, up to 30 times
// the backoff, is lifted by the first probe it passes, every 5 s); none is
// lost and the duplicates are counted by Message-ID.
//
// It runs twice at once: with the backoff of production (30 s), and with a
// clock shortened as if the outage lasted 20 minutes (the backoff cut by 40,
// 3 s for 2 minutes), which spans the block's maximum: without the probes
// the emails waited for it, up to 15 minutes after a 20-minute outage.
//
// The service runs its default 20 workers: the submission server's block
// (doubling with each failure) counts one failure per block, not one per
// worker failing meanwhile.
func TestFaultSMTPDown(t *testing.T) {
	skipUnlessFaults(t)
	t.Parallel()
	bin := buildBinary(t)
	const production = 30 * time.Second // MSSDISPATCH_SEND_RETRY_BACKOFF's default
	for _, tt := range []struct {
		name    string
		backoff time.Duration // MSSDISPATCH_SEND_RETRY_BACKOFF
		maximum bool          // the outage spans the block's maximum, 30 times the backoff
	}{
		{"smtp-down", production, false},
		{"smtp-down-20m-simulated", *faultSMTPDown / (20 * time.Minute / production), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			failures := faultSMTPDownRun(t, bin, tt.name, tt.backoff)
			if tt.maximum {
				// 1, 2, 4, 8, 16, then 30 times the backoff.
				require.GreaterOrEqual(t, failures, 6, "the server's block reached its maximum")
			}
		})
	}
}

// faultSMTPDownRun is TestFaultSMTPDown with the backoff given; it returns
// the server's failures counted when it came back.
func faultSMTPDownRun(t *testing.T, bin, name string, backoff time.Duration) (failures int) {
	const before, during = 5, 40 // reports sent before and during the outage; two emails each
	dbURL := demoDatabase(t)
	sink := smtptest.Start(t, smtptest.Options{})
	gate := openGate(t, sink.Addr)
	svc := startBinary(t, bin, dbURL, "MSSDISPATCH_TRANSPORT=smtp", "MSSDISPATCH_SMTP_ADDR="+gate.addr,
		"MSSDISPATCH_SMTP_CA_FILE="+sink.CA.File, "MSSDISPATCH_SOURCE_OID=1.2.250.1.999.7",
		"MSSDISPATCH_SEND_RETRY_BACKOFF="+backoff.String())
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	defer pool.Close()

	sentEmails := func() (sent, queued int) {
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT
			count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status IN ('queued', 'scheduled'))
			FROM deliveries WHERE channel = 'mssante'`).Scan(&sent, &queued))
		return sent, queued
	}
	measureMLLP(t, svc.mllpAddr, 1, sampleReports(t, before))
	// Down between two sends: the last one recorded sent, not only received.
	require.Eventually(t, func() bool { sent, _ := sentEmails(); return sent == 2*before }, time.Minute, 50*time.Millisecond,
		"the first emails sent")

	gate.close()
	down := time.Now()
	intake := measureMLLP(t, svc.mllpAddr, faultConns, sampleReports(t, during))
	t.Logf("%d reports acknowledged AA while SMTP was down (ACK p50 %s, p99 %s)", during,
		intake.p50.Round(time.Millisecond), intake.p99.Round(time.Millisecond))
	retries := func() int {
		var n int
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM delivery_events WHERE event = 'retry'`).Scan(&n))
		return n
	}
	require.Eventually(t, func() bool { return retries() > 0 }, time.Minute, 100*time.Millisecond, "a send failed and will be retried")
	time.Sleep(time.Until(down.Add(*faultSMTPDown))) // the outage
	require.Len(t, sink.Messages(), 2*before, "nothing reached the server while it was down")
	var blocked time.Duration
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT failures, greatest(blocked_until - now(), '0')
		FROM mail_domains WHERE domain = '*'`).Scan(&failures, &blocked))
	retriesDown := retries()
	t.Logf("after %s down (backoff %s): %d retries recorded, the server blocked for %s more after %d failures",
		faultSMTPDown.Round(time.Second), backoff, retriesDown, blocked.Round(time.Second), failures)
	// The doubling block waits at most about as long as the outage lasted.
	require.LessOrEqual(t, blocked, *faultSMTPDown+backoff, "the next retry is not much further away than the outage lasted")

	gate.open(t)
	up := time.Now()
	reports := before + during
	require.Eventually(t, func() bool { sent, queued := sentEmails(); return sent == 2*reports && queued == 0 },
		faultResumeBound+time.Minute, 100*time.Millisecond, "every email sent once the server is back")
	caughtUp := time.Since(up)
	var first, last time.Time
	for _, m := range sink.Messages() {
		if m.Received.Before(up) {
			continue
		}
		if first.IsZero() || m.Received.Before(first) {
			first = m.Received
		}
		if m.Received.After(last) {
			last = m.Received
		}
	}
	var resumed int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM delivery_events WHERE event = 'resumed'`).Scan(&resumed))

	emails := checkEmails(t, pool, sink)
	s := faultSummary{sent: reports, aa: reports, stored: countReports(t, dbURL), emails: emails}
	require.Equal(t, reports, s.stored)
	s.extra = fmt.Sprintf("SMTP down %s, backoff %s, %d retries, the server blocked %s more after %d failures at its return; "+
		"the first email received %s after it, the last %s (%d emails said resumed), every email recorded sent %s after it",
		up.Sub(down).Round(time.Second), backoff, retriesDown, blocked.Round(time.Second), failures,
		first.Sub(up).Round(time.Millisecond), last.Sub(up).Round(time.Millisecond), resumed, caughtUp.Round(time.Millisecond))
	s.print(t, name)
	require.Zero(t, emails.duplicated, "no email was in flight when the server went down: none sent twice")
	require.False(t, first.IsZero(), "emails received after the server's return")
	require.LessOrEqual(t, first.Sub(up), faultResumeBound, "the first email after the server's return")
	require.LessOrEqual(t, last.Sub(up), faultResumeBound, "the last email after the server's return")
	return failures
}

// TestFaultKillMidLoad runs two instances on one database, spreads a DPI's
// MLLP load over both, and kills one with SIGKILL while it receives and sends
// (to a real SMTP server), then starts it again under the same
// MSSDISPATCH_INSTANCE. Messages left without an ACK are resent to the
// surviving instance. The restarted instance takes up at start the jobs it
// left running (River's own rescue, MSSDISPATCH_JOB_RESCUE_AFTER, is left at
// its 15 minutes): its interrupted sends leave again, and every delivery is
// sent, within faultResumeBound of the restart. In the end every AA'd
// message is stored exactly once, every email is sent, none is lost, and the
// duplicate emails (a send that reached the server but not its record) are
// at most the sends in flight at the kill, each one recorded as interrupted.
func TestFaultKillMidLoad(t *testing.T) {
	skipUnlessFaults(t)
	t.Parallel()
	// workers per instance: at most 4 sends in flight on the killed one.
	const workers = 4
	bin := buildBinary(t)
	dbURL := demoDatabase(t)
	hold := &rcptHold{}
	sink := smtptest.Start(t, smtptest.Options{Rcpt: hold.rcpt})
	env := []string{"MSSDISPATCH_TRANSPORT=smtp", "MSSDISPATCH_SMTP_ADDR=" + sink.Addr, "MSSDISPATCH_SMTP_CA_FILE=" + sink.CA.File,
		"MSSDISPATCH_SOURCE_OID=1.2.250.1.999.7", "MSSDISPATCH_WORKERS=" + strconv.Itoa(workers), "MSSDISPATCH_JOB_TIMEOUT=10s"}
	const killedName = "kill-mid-load-a"
	killedEnv := append(slices.Clone(env), "MSSDISPATCH_INSTANCE="+killedName)
	killed := startBinary(t, bin, dbURL, killedEnv...)
	survivor := startBinary(t, bin, dbURL, append(slices.Clone(env), "MSSDISPATCH_INSTANCE=kill-mid-load-b")...)
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	defer pool.Close()

	// Paced: sends run while reports come in.
	load := startDPILoad(t, faultConns, 0, 100*time.Millisecond, killed.mllpAddr, survivor.mllpAddr)
	sending := func() int {
		var n int
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM deliveries
			WHERE status = 'queued' AND sending_at IS NOT NULL`).Scan(&n))
		return n
	}
	// Kill while the instance has a send on each of its workers and a
	// message on its way: the server holds every SMTP session at RCPT until
	// both instances' workers are all sending, then lets them go on, and
	// the kill comes a few milliseconds later (during RCPT, DATA, or after
	// the server's 250 but before the service records it: a duplicate).
	require.Eventually(t, func() bool { return load.acked() >= 20 && len(sink.Messages()) >= 10 },
		2*time.Minute, 10*time.Millisecond, "intake and sends under way")
	hold.arm()
	require.Eventually(t, func() bool { return hold.holding() == 2*workers }, 30*time.Second, time.Millisecond,
		"every worker of both instances sending")
	require.Eventually(t, func() bool { return load.inFlight(killed.mllpAddr) > 0 }, 3*time.Second, 100*time.Microsecond,
		"a message on its way to the instance")
	hold.release()
	jitter := time.Duration(rand.IntN(3)) * time.Millisecond
	time.Sleep(jitter) // the kill's moment in the sends
	killedAt := time.Now()
	refusedBefore := load.refused()
	require.NoError(t, killed.cmd.Process.Signal(syscall.SIGKILL))
	_ = killed.cmd.Wait()
	// The DPI notices (a message without its ACK, a connection refused) and
	// sends, and resends, to the other instance.
	require.Eventually(t, func() bool { return load.refused() > refusedBefore }, time.Minute, time.Millisecond,
		"the DPI saw the instance die")
	load.retarget(survivor.mllpAddr)
	// The sends in flight at the kill, the killed instance's among them:
	// recorded as sending, not yet as done (an upper bound of the duplicates).
	inFlight := sending()
	t.Logf("killed an instance %s after its %d sends went on, with %d messages acknowledged and %d emails at the server; %d sends in flight",
		jitter, workers, load.acked(), len(sink.Messages()), inFlight)

	ackedAtKill := load.acked()
	require.Eventually(t, func() bool { return load.acked() >= ackedAtKill+10 }, time.Minute, 10*time.Millisecond,
		"the survivor takes the load")
	// The jobs the killed instance left running, and among them the sends
	// of emails still queued: River's rescuer would leave them for 15 minutes.
	orphans, orphanSends := orphanedJobs(t, pool, killedName)
	t.Logf("the killed instance left %d jobs running, %d of them sends of emails still queued", orphans, len(orphanSends))
	require.NotEmpty(t, orphanSends, "sends were in flight at the kill")
	var restartAt time.Time // the database's clock, as the deliveries' events
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT clock_timestamp()`).Scan(&restartAt))
	restarted := startBinary(t, bin, dbURL, killedEnv...)
	ready := time.Since(restartAt)
	load.retarget(survivor.mllpAddr, restarted.mllpAddr)
	ackedAtRestart := load.acked()
	require.Eventually(t, func() bool { return load.acked() >= ackedAtRestart+20 }, time.Minute, 10*time.Millisecond,
		"both instances take the load")
	load.finish(t)
	s := load.check(t, pool)

	// Everything settles: the killed instance's jobs are rescued and run again.
	settled := assert.Eventually(t, func() bool {
		var unresolved, pending int
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM reports WHERE status <> 'resolved'),
			(SELECT count(*) FROM deliveries WHERE status IN ('queued', 'scheduled'))`).Scan(&unresolved, &pending))
		return unresolved == 0 && pending == 0
	}, 3*time.Minute, 200*time.Millisecond, "every delivery sent after the kill")
	if !settled {
		t.Fatalf("work left:\n%s", pendingJobs(t, pool))
	}
	t.Logf("every delivery sent %s after the kill", time.Since(killedAt).Round(time.Second))
	var firstOrphan, lastSent *time.Time
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT
		(SELECT min(at) FROM delivery_events WHERE event = 'sent' AND delivery_id = ANY ($1) AND at >= $2),
		(SELECT max(at) FROM delivery_events WHERE event = 'sent')`, orphanSends, restartAt).Scan(&firstOrphan, &lastSent))
	require.NotNil(t, firstOrphan, "the interrupted sends were sent after the restart")
	toFirst, toLast := firstOrphan.Sub(restartAt), lastSent.Sub(restartAt)
	t.Logf("restart: ready in %s, its first interrupted email sent %s after the restart, the last delivery sent (all settled) %s after it",
		ready.Round(time.Millisecond), toFirst.Round(time.Millisecond), toLast.Round(time.Millisecond))
	s.emails = checkEmails(t, pool, sink)
	require.Equal(t, 2*s.stored, s.emails.expected, "Claire's and Julie's email for every report")
	var interrupted int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM delivery_events
		WHERE event = 'sending' AND detail LIKE '%interrompu%'`).Scan(&interrupted))
	bound := min(inFlight, workers)
	s.extra = fmt.Sprintf("killed with %d sends in flight (bound %d duplicates), %d attempts found their predecessor interrupted; "+
		"%d jobs left running, taken up at the restart: its first interrupted email sent %s after it, every delivery %s after it",
		inFlight, bound, interrupted, orphans, toFirst.Round(time.Millisecond), toLast.Round(time.Millisecond))
	s.print(t, "kill-mid-load")
	require.LessOrEqual(t, toFirst, faultResumeBound, "the interrupted sends leave again soon after the restart")
	require.LessOrEqual(t, toLast, faultResumeBound, "every delivery sent soon after the restart")
	require.LessOrEqual(t, s.emails.duplicated, bound, "at most the sends in flight at the kill are duplicated")
	require.LessOrEqual(t, s.emails.duplicated, interrupted, "every duplicate was an interrupted attempt the service recorded")
}

// orphanedJobs counts the jobs the instance name left running, and returns
// the deliveries still queued among their sends.
func orphanedJobs(t *testing.T, pool *pgxpool.Pool, name string) (jobs int, queuedSends []int64) {
	t.Helper()
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*),
		coalesce(array_agg(d.id) FILTER (WHERE d.status = 'queued'), '{}')
		FROM river_job j LEFT JOIN deliveries d ON j.kind = 'send_delivery' AND d.id = (j.args->>'delivery_id')::bigint
		WHERE j.state = 'running' AND j.attempted_by[cardinality(j.attempted_by)] = $1`, name).Scan(&jobs, &queuedSends))
	return jobs, queuedSends
}

// pendingJobs describes the jobs not completed, for a test that waited in vain.
func pendingJobs(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var b strings.Builder
	for _, j := range listJobs(t, pool, river.NewJobListParams().States(rivertype.JobStateAvailable, rivertype.JobStateCancelled,
		rivertype.JobStateDiscarded, rivertype.JobStatePending, rivertype.JobStateRetryable, rivertype.JobStateRunning,
		rivertype.JobStateScheduled)) {
		lastErr := ""
		if len(j.Errors) > 0 {
			lastErr = j.Errors[len(j.Errors)-1].Error
		}
		fmt.Fprintf(&b, "%s %s %s attempt %d/%d scheduled in %ds by %v: %s\n", j.Kind, j.EncodedArgs, j.State, j.Attempt,
			j.MaxAttempts, int(time.Until(j.ScheduledAt).Seconds()), j.AttemptedBy, lastErr)
	}
	rows, err := pool.Query(context.Background(), `SELECT e.delivery_id, e.event, e.detail, e.at::text FROM delivery_events e
		JOIN deliveries d ON d.id = e.delivery_id WHERE d.status = 'queued' ORDER BY e.id`)
	require.NoError(t, err)
	for rows.Next() {
		var id int64
		var ev, detail, at string
		require.NoError(t, rows.Scan(&id, &ev, &detail, &at))
		fmt.Fprintf(&b, "  delivery %d %s %s %s\n", id, at, ev, detail)
	}
	require.NoError(t, rows.Err())
	rows, err = pool.Query(context.Background(), `SELECT domain, failures, blocked_until::text, last_error FROM mail_domains`)
	require.NoError(t, err)
	for rows.Next() {
		var d, until, last string
		var f int
		require.NoError(t, rows.Scan(&d, &f, &until, &last))
		fmt.Fprintf(&b, "  domain %s failures %d until %s: %s\n", d, f, until, last)
	}
	require.NoError(t, rows.Err())
	return b.String()
}

// rcptHold holds the SMTP sessions at RCPT, once armed, until released.
type rcptHold struct {
	mu    sync.Mutex
	armed bool
	held  int
	letGo chan struct{} // closed by release
}

func (h *rcptHold) arm() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.armed, h.letGo = true, make(chan struct{})
}

// holding is how many sessions wait at RCPT.
func (h *rcptHold) holding() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held
}

// release lets the sessions held go on, and the next ones pass.
func (h *rcptHold) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.armed = false
	close(h.letGo)
}

func (h *rcptHold) rcpt(string) *smtp.SMTPError {
	h.mu.Lock()
	if !h.armed {
		h.mu.Unlock()
		return nil
	}
	h.held++
	wait := h.letGo
	h.mu.Unlock()
	<-wait
	return nil
}

// faultSummary is what a fault test prints.
type faultSummary struct {
	sent, aa, refused, stored, lost, duplicated int
	emails                                      emailCount
	extra                                       string
}

// emailCount compares the emails the service recorded sent with those the
// SMTP server received.
type emailCount struct {
	expected, received, lost, duplicated int
}

// print logs the summary and writes it on stdout, where make faults shows it.
func (s faultSummary) print(t *testing.T, name string) {
	t.Helper()
	line := fmt.Sprintf("fault %s: sent %d, acknowledged AA %d, refused/errors %d, stored %d, lost %d, duplicated %d",
		name, s.sent, s.aa, s.refused, s.stored, s.lost+s.emails.lost, s.duplicated+s.emails.duplicated)
	if s.emails.expected > 0 {
		line += fmt.Sprintf(" (emails: expected %d, received %d, lost %d, duplicated %d)",
			s.emails.expected, s.emails.received, s.emails.lost, s.emails.duplicated)
	}
	if s.extra != "" {
		line += "; " + s.extra
	}
	t.Log(line)
	fmt.Println(line)
	require.Zero(t, s.lost+s.emails.lost, "nothing lost")
}

// checkEmails checks that every email the service recorded sent reached the
// server (by Message-ID) and that the server received no other, and counts
// the duplicates.
func checkEmails(t *testing.T, pool *pgxpool.Pool, sink *smtptest.Server) emailCount {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT message_id FROM deliveries WHERE channel = 'mssante' AND status = 'sent'`)
	require.NoError(t, err)
	want := map[string]bool{}
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		want["<"+id+">"] = true
	}
	require.NoError(t, rows.Err())
	received := map[string]int{}
	msgs := sink.Messages()
	for _, m := range msgs {
		received[headerOf(m.Data, "Message-Id")]++
	}
	c := emailCount{expected: len(want), received: len(msgs), duplicated: len(msgs) - len(received)}
	for id := range want {
		if received[id] == 0 {
			c.lost++
			t.Errorf("email %s recorded sent, never received", id)
		}
	}
	for id := range received {
		require.True(t, want[id], "email %s received, unknown to the service", id)
	}
	return c
}

// dpiLoad is a DPI sending reports over several MLLP connections: each
// connection sends fresh sample reports one after the other and resends
// each, after a short pause, until it gets its AA (an AE, an AR, an error or
// a timeout all make it resend), as an HL7 interface engine does.
type dpiLoad struct {
	t     *testing.T
	limit int           // messages to send in all; 0 means until finish
	gap   time.Duration // the pause of a connection between two messages
	stop  chan struct{}
	wg    sync.WaitGroup

	mu       sync.Mutex
	targets  []string       // the MLLP addresses the connections send to now
	sending  map[string]int // exchanges under way, by address
	msgs     []*dpiMessage
	refusals int
	problems []string // the first refusals, for the log
}

// dpiMessage is one message of a dpiLoad.
type dpiMessage struct {
	controlID string
	ackedAt   time.Time // zero until its AA
}

// startDPILoad starts conns connections sending limit messages (0: until
// finish) to targets, connection i to targets[i % len(targets)], each
// waiting gap between its messages.
func startDPILoad(t *testing.T, conns, limit int, gap time.Duration, targets ...string) *dpiLoad {
	t.Helper()
	l := &dpiLoad{t: t, limit: limit, gap: gap, stop: make(chan struct{}), targets: targets, sending: map[string]int{}}
	for i := range conns {
		l.wg.Go(func() { l.connection(i) })
	}
	t.Cleanup(l.halt)
	return l
}

func (l *dpiLoad) connection(i int) {
	clients := map[string]*mllp.Client{}
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	for first := true; ; first = false {
		if !first && l.gap > 0 {
			select {
			case <-time.After(l.gap): // the DPI's pace
			case <-l.halted():
				return
			}
		}
		msg, _, err := sampleReport(time.Now())
		if err != nil {
			l.t.Error(err)
			return
		}
		m := l.next(hl7.ControlIDOf(msg))
		if m == nil {
			return
		}
		deadline := time.Now().Add(faultAckBound)
		for {
			addr := l.target(i)
			c := clients[addr]
			if c == nil {
				if c, err = mllp.NewClient(mllp.Config{Addr: addr, Timeout: faultSendTimeout}); err != nil {
					l.t.Error(err)
					return
				}
				clients[addr] = c
			}
			l.exchanging(addr, 1)
			raw, err := c.Send(context.Background(), msg)
			l.exchanging(addr, -1)
			if l.record(m, ackProblem(msg, raw, err)) {
				break
			}
			if time.Now().After(deadline) {
				l.t.Errorf("message %s: no AA after %s of resends", m.controlID, faultAckBound)
				return
			}
			select {
			case <-time.After(faultResendGap): // the DPI's pause before resending
			case <-l.halted():
				return
			}
		}
	}
}

// next registers a new message, or returns nil when the load is over.
func (l *dpiLoad) next(controlID string) *dpiMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.stop:
		return nil
	default:
	}
	if l.limit > 0 && len(l.msgs) >= l.limit {
		return nil
	}
	m := &dpiMessage{controlID: controlID}
	l.msgs = append(l.msgs, m)
	return m
}

// record counts the response to one transmission of m and reports whether it was its AA.
func (l *dpiLoad) record(m *dpiMessage, problem string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if problem == "" {
		m.ackedAt = time.Now()
		return true
	}
	l.refusals++
	if len(l.problems) < 5 {
		l.problems = append(l.problems, problem)
	}
	return false
}

// exchanging counts the exchanges under way with addr.
func (l *dpiLoad) exchanging(addr string, delta int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sending[addr] += delta
}

// inFlight is how many messages are on their way to addr, without their response yet.
func (l *dpiLoad) inFlight(addr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sending[addr]
}

func (l *dpiLoad) target(i int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.targets[i%len(l.targets)]
}

// retarget makes the connections send, and resend, to targets from now on.
func (l *dpiLoad) retarget(targets ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.targets = targets
}

// acked is how many messages got their AA so far.
func (l *dpiLoad) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if !m.ackedAt.IsZero() {
			n++
		}
	}
	return n
}

// ackedBetween is how many messages got their AA between from and to.
func (l *dpiLoad) ackedBetween(from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if m.ackedAt.After(from) && m.ackedAt.Before(to) {
			n++
		}
	}
	return n
}

// refused is how many transmissions got no AA so far.
func (l *dpiLoad) refused() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refusals
}

// probe sends one new message to addr on its own connection, resending it
// like the DPI until its AA, and returns how long that took; it fails t
// after bound.
func (l *dpiLoad) probe(t *testing.T, addr string, bound time.Duration) time.Duration {
	t.Helper()
	msg, _, err := sampleReport(time.Now())
	require.NoError(t, err)
	m := l.next(hl7.ControlIDOf(msg))
	require.NotNil(t, m)
	c, err := mllp.NewClient(mllp.Config{Addr: addr, Timeout: bound})
	require.NoError(t, err)
	defer c.Close()
	began := time.Now()
	for {
		ctx, cancel := context.WithDeadline(context.Background(), began.Add(bound))
		raw, err := c.Send(ctx, msg)
		cancel()
		if l.record(m, ackProblem(msg, raw, err)) {
			return time.Since(began)
		}
		require.Less(t, time.Since(began), bound, "no AA for a new message %s after PostgreSQL was back", bound)
		time.Sleep(faultResendGap) // the DPI's pause before resending
	}
}

func (l *dpiLoad) halted() <-chan struct{} { return l.stop }

// halt stops new messages; the connections finish the one they send.
func (l *dpiLoad) halt() {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
}

// finish waits until every connection sent its messages (with a limit) or,
// without one, stops new messages and waits for the last ones' AA.
func (l *dpiLoad) finish(t *testing.T) {
	t.Helper()
	if l.limit == 0 {
		// Stopping new messages must not interrupt the resends of the last
		// ones: close stop for next only.
		l.mu.Lock()
		l.limit = len(l.msgs)
		l.mu.Unlock()
	}
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(faultAckBound + faultSendTimeout):
		t.Fatal("the DPI's connections did not finish")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		require.False(t, m.ackedAt.IsZero(), "message %s never got its AA", m.controlID)
	}
	if len(l.problems) > 0 {
		t.Logf("%d transmissions without AA, the first: %s", l.refusals, strings.Join(l.problems, "; "))
	}
}

// check compares the messages with the reports table: every AA'd message is
// stored, each exactly once.
func (l *dpiLoad) check(t *testing.T, pool *pgxpool.Pool) faultSummary {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, 0, len(l.msgs))
	s := faultSummary{sent: len(l.msgs), refused: l.refusals}
	for _, m := range l.msgs {
		ids = append(ids, m.controlID)
		if !m.ackedAt.IsZero() {
			s.aa++
		}
	}
	stored := countBy(t, pool, `SELECT message_control_id, count(*) FROM reports GROUP BY 1`)
	for _, m := range l.msgs {
		switch n := stored[m.controlID]; {
		case n == 0 && !m.ackedAt.IsZero():
			s.lost++
			t.Errorf("message %s acknowledged AA, not stored", m.controlID)
		case n > 1:
			s.duplicated += n - 1
			t.Errorf("message %s stored %d times", m.controlID, n)
		}
	}
	s.stored = len(stored)
	require.Len(t, stored, len(ids), "every report stored comes from the DPI")
	return s
}

// sampleReports returns n fresh sample reports.
func sampleReports(t *testing.T, n int) [][]byte {
	t.Helper()
	msgs := make([][]byte, n)
	for i := range msgs {
		var err error
		msgs[i], _, err = sampleReport(time.Now())
		require.NoError(t, err)
	}
	return msgs
}

// pgCluster is a private PostgreSQL cluster (scripts/pgcluster) the test may stop.
type pgCluster struct {
	dir, port, url string
}

// startPGCluster initialises and starts a cluster in a temporary directory
// on a free port, stopped when t ends.
func startPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	dir := t.TempDir()
	// As root the script runs PostgreSQL as postgres, which must reach the directory.
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	require.NoError(t, os.Chmod(dir, 0o755))
	_, port, err := net.SplitHostPort(reservedAddr(t))
	require.NoError(t, err)
	c := &pgCluster{dir: filepath.Join(dir, "pg"), port: port}
	c.start(t)
	t.Cleanup(func() { c.stop(t) })
	return c
}

func (c *pgCluster) start(t *testing.T) {
	t.Helper()
	out, err := exec.Command("../../scripts/pgcluster", "start", c.dir, c.port).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		err = fmt.Errorf("%w: %s", err, exit.Stderr)
	}
	require.NoError(t, err, "scripts/pgcluster start")
	c.url = strings.TrimSpace(string(out))
}

// stop stops the cluster (pg_ctl stop -m fast: connections are cut, then a clean shutdown).
func (c *pgCluster) stop(t *testing.T) {
	t.Helper()
	out, err := exec.Command("../../scripts/pgcluster", "stop", c.dir).CombinedOutput()
	require.NoError(t, err, "scripts/pgcluster stop: %s", out)
}

// reservedAddr returns a free 127.0.0.1 address whose port is below the
// ephemeral range, so that no outgoing connection takes it while a test
// keeps it closed.
func reservedAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+rand.IntN(12000)))
		if ln, err := net.Listen("tcp", addr); err == nil {
			require.NoError(t, ln.Close())
			return addr
		}
	}
	t.Fatal("no free port between 20000 and 32000")
	return ""
}

// gate stands on a fixed address in front of a server: open, it forwards
// each connection; closed, nothing listens there (connection refused) and
// the connections it forwarded are cut.
type gate struct {
	addr, backend string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

// openGate opens a gate to backend on a reserved address, closed when t ends.
func openGate(t *testing.T, backend string) *gate {
	t.Helper()
	g := &gate{addr: reservedAddr(t), backend: backend, conns: map[net.Conn]bool{}}
	g.open(t)
	t.Cleanup(g.close)
	return g
}

// open listens on the gate's address again.
func (g *gate) open(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", g.addr)
	require.NoError(t, err, "listen again on %s", g.addr)
	g.mu.Lock()
	g.ln = ln
	g.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go g.forward(c)
		}
	}()
}

func (g *gate) forward(c net.Conn) {
	b, err := net.DialTimeout("tcp", g.backend, 10*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	if !g.track(c, b) {
		return
	}
	var wg sync.WaitGroup
	for _, p := range [][2]net.Conn{{b, c}, {c, b}} {
		wg.Go(func() {
			_, _ = io.Copy(p[0], p[1])
			_ = p[0].Close()
			_ = p[1].Close()
		})
	}
	wg.Wait()
	g.mu.Lock()
	delete(g.conns, c)
	delete(g.conns, b)
	g.mu.Unlock()
}

// track records a forwarded pair, or closes it when the gate closed meanwhile.
func (g *gate) track(conns ...net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln == nil {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	for _, c := range conns {
		g.conns[c] = true
	}
	return true
}

// close stops listening and cuts the forwarded connections.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		_ = g.ln.Close()
		g.ln = nil
	}
	for c := range g.conns {
		_ = c.Close()
	}
}
