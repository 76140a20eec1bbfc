package dispatch_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/worker"
	"github.com/mssdispatch/mssdispatch/internal/smtptest"
)

// unavailable is a submission server's or an operator's "not now".
var unavailable = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service not available, try later"}

// probeBlockBackoff is the block of a scope after its first failure in the
// probe tests: far longer than they wait, so that only a probe lifts it.
const probeBlockBackoff = time.Minute

// TestProbeLiftsBlock blocks a scope (the submission server refusing every
// session; an operator's domain refusing at RCPT TO) with a block of a
// minute, and probes it every 100 ms: while it refuses, the probes fail
// and change nothing (the block, its failures, the emails' attempts and
// jobs); the first probe after it accepts again lifts the block, writes
// "resumed" in the history of each email that waited, and the emails go
// within seconds, not after the minute.
func TestProbeLiftsBlock(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, scope string
		// options make the server refuse the scope while down is true.
		options func(down *atomic.Bool) smtptest.Options
		reports []dispatch.Report
		held    int // the emails the block holds; the others are sent meanwhile
		detail  string
	}{
		{"server", "*", func(down *atomic.Bool) smtptest.Options {
			return smtptest.Options{Hello: func() *smtp.SMTPError {
				if down.Load() {
					return unavailable
				}
				return nil
			}}
		}, []dispatch.Report{testReport(t)}, 2, "le serveur de messagerie accepte de nouveau"},
		{"domain", "medecin-demo.mssante.fr", func(down *atomic.Bool) smtptest.Options {
			return smtptest.Options{Rcpt: func(to string) *smtp.SMTPError {
				if down.Load() && strings.HasSuffix(to, "@medecin-demo.mssante.fr") {
					return unavailable
				}
				return nil
			}}
		}, []dispatch.Report{twoDomainReport(t, 1), twoDomainReport(t, 2), twoDomainReport(t, 3)}, 3,
			"le domaine medecin-demo.mssante.fr accepte de nouveau"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var down atomic.Bool
			down.Store(true)
			srv := smtptest.Start(t, tt.options(&down))
			b := setup(t, smtpTransport(t, srv), func(c *worker.WorkerConfig) { c.RetryBackoff = probeBlockBackoff })
			for _, r := range tt.reports {
				b.receive(t, r)
			}
			sent := len(tt.reports)*2 - tt.held
			srv.WaitMessages(t, sent, 30*time.Second)
			b.waitHeld(t, tt.held)
			before := b.blockOf(t, tt.scope)
			attempts := b.sendAttempts(t)

			registry := prometheus.NewRegistry()
			b.runProber(t, registry, 100*time.Millisecond)
			require.Eventually(t, func() bool { return gathered(t, registry, "mssdispatch_smtp_probes_total", "failed") >= 3 },
				10*time.Second, 20*time.Millisecond, "the blocked scope is probed")
			require.Equal(t, before, b.blockOf(t, tt.scope), "a failed probe changes neither the block nor its failures")
			require.Equal(t, attempts, b.sendAttempts(t), "a probe uses up no email's attempt")
			require.Len(t, srv.Messages(), sent, "a probe sends nothing")
			require.Len(t, b.jobs(t, dispatch.SendArgs{}.Kind(), rivertype.JobStateScheduled), tt.held, "the emails wait")
			require.Equal(t, 1.0, gathered(t, registry, "mssdispatch_smtp_blocked_scopes", ""))
			require.Zero(t, gathered(t, registry, "mssdispatch_smtp_probes_total", "ok"))

			down.Store(false)
			back := time.Now()
			srv.WaitMessages(t, sent+tt.held, 15*time.Second)
			t.Logf("%s accepts again: its %d emails received %s after", tt.scope, tt.held, time.Since(back).Round(time.Millisecond))
			require.Less(t, time.Since(back), probeBlockBackoff/4, "the emails went long before the block's end")
			require.Equal(t, 1.0, gathered(t, registry, "mssdispatch_smtp_probes_total", "ok"))
			require.Zero(t, gathered(t, registry, "mssdispatch_smtp_blocked_scopes", ""))
			var left int
			require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM mail_domains`).Scan(&left))
			require.Zero(t, left, "the block is lifted")

			// The emails that said they waited say they go again, once, then go.
			require.Eventually(t, func() bool {
				var queued int
				require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM deliveries WHERE status = 'queued'`).Scan(&queued))
				return queued == 0
			}, 10*time.Second, 20*time.Millisecond, "every email recorded sent")
			resumed := 0
			for id, events := range b.sendHistories(t) {
				retried := false
				for i, e := range events {
					if e.event != dispatch.EventResumed {
						retried = retried || e.event == dispatch.EventRetry
						continue
					}
					resumed++
					require.True(t, retried, "delivery %d: resumed without a retry before: %v", id, events)
					require.Equal(t, dispatch.EventRetry, events[i-1].event, "delivery %d: %v", id, events)
					require.Contains(t, e.detail, tt.detail)
					require.Greater(t, len(events), i+2, "delivery %d: %v", id, events)
					require.Equal(t, []dispatch.Event{dispatch.EventSending, dispatch.EventSent},
						[]dispatch.Event{events[i+1].event, events[i+2].event}, "delivery %d", id)
				}
				if retried {
					require.Equal(t, 1, b.eventCount(t, id, dispatch.EventResumed), "delivery %d: %v", id, events)
				}
			}
			require.Positive(t, resumed, "the emails that failed say they go again")
		})
	}
}

// TestProbersTakeTurns runs two probers (two instances, each its own
// transport) on one blocked domain whose every RCPT TO takes 200 ms, with
// an interval of 20 ms: never do two probes of the domain overlap.
func TestProbersTakeTurns(t *testing.T) {
	t.Parallel()
	var probing atomic.Bool
	var inFlight, most, rcpts atomic.Int64
	srv := smtptest.Start(t, smtptest.Options{Rcpt: func(to string) *smtp.SMTPError {
		if !strings.HasSuffix(to, "@medecin-demo.mssante.fr") {
			return nil
		}
		if probing.Load() {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			rcpts.Add(1)
			time.Sleep(200 * time.Millisecond)
		}
		return unavailable
	}})
	b := setup(t, smtpTransport(t, srv), func(c *worker.WorkerConfig) { c.RetryBackoff = probeBlockBackoff })
	b.receive(t, twoDomainReport(t, 1))
	srv.WaitMessages(t, 1, 30*time.Second)
	b.waitHeld(t, 1)

	probing.Store(true)
	var registries []*prometheus.Registry
	ctx, stop := context.WithCancel(b.ctx)
	var probers sync.WaitGroup
	for range 2 {
		registry := prometheus.NewRegistry()
		registries = append(registries, registry)
		cfg := b.env.Workers
		cfg.Transport, cfg.ProbeInterval, cfg.Registerer = smtpTransport(t, srv), 20*time.Millisecond, registry
		p, err := worker.NewProber(cfg)
		require.NoError(t, err)
		probers.Go(func() { p.Run(ctx) })
	}
	time.Sleep(2 * time.Second) // the behaviour under test: ten probes' time
	stop()
	probers.Wait()
	failed := 0.0
	for _, r := range registries {
		failed += gathered(t, r, "mssdispatch_smtp_probes_total", "failed")
	}
	t.Logf("%d probes in 2 s (%v failed as counted), at most %d at once", rcpts.Load(), failed, most.Load())
	require.GreaterOrEqual(t, failed, 4.0, "probed again and again")
	require.LessOrEqual(t, failed, float64(rcpts.Load()))
	require.Equal(t, int64(1), most.Load(), "never two probes of the domain at once")
}

// smtpTransport is an SMTP client of srv.
func smtpTransport(t *testing.T, srv *smtptest.Server) *mail.SMTP {
	t.Helper()
	transport, err := mail.NewSMTP(mail.SMTPConfig{Addr: srv.Addr, CAFile: srv.CA.File, Timeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = transport.Close() })
	return transport
}

// runProber runs a prober of the test's domain, probing every interval and
// counting in registry, until the test ends.
func (b *testBundle) runProber(t *testing.T, registry *prometheus.Registry, interval time.Duration) {
	t.Helper()
	cfg := b.env.Workers
	cfg.ProbeInterval, cfg.Registerer = interval, registry
	p, err := worker.NewProber(cfg)
	require.NoError(t, err)
	ctx, stop := context.WithCancel(b.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	t.Cleanup(func() {
		stop()
		<-done
	})
}

// waitHeld waits until n send jobs have snoozed and none runs: the emails a
// block holds.
func (b *testBundle) waitHeld(t *testing.T, n int) {
	t.Helper()
	kind := dispatch.SendArgs{}.Kind()
	require.Eventually(t, func() bool {
		return len(b.jobs(t, kind, rivertype.JobStateScheduled)) == n && len(b.jobs(t, kind, rivertype.JobStateRunning,
			rivertype.JobStateAvailable)) == 0
	}, 30*time.Second, 20*time.Millisecond, "%d send jobs snoozed", n)
}

// block is a row of mail_domains.
type block struct {
	until    time.Time
	failures int
}

// blockOf returns the block of scope.
func (b *testBundle) blockOf(t *testing.T, scope string) block {
	t.Helper()
	var k block
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT blocked_until, failures FROM mail_domains WHERE domain = $1`, scope).
		Scan(&k.until, &k.failures))
	return k
}

// sendAttempts is the attempts of every email so far.
func (b *testBundle) sendAttempts(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT coalesce(sum(send_attempts), 0) FROM deliveries`).Scan(&n))
	return n
}

// historyEvent is an entry of a delivery's history.
type historyEvent struct {
	event  dispatch.Event
	detail string
}

// sendHistories returns the history of each email, in order.
func (b *testBundle) sendHistories(t *testing.T) map[int64][]historyEvent {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, `SELECT e.delivery_id, e.event, e.detail FROM delivery_events e
		JOIN deliveries d ON d.id = e.delivery_id WHERE d.channel = 'mssante' ORDER BY e.id`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[int64][]historyEvent{}
	for rows.Next() {
		var id int64
		var e historyEvent
		require.NoError(t, rows.Scan(&id, &e.event, &e.detail))
		out[id] = append(out[id], e)
	}
	require.NoError(t, rows.Err())
	return out
}
