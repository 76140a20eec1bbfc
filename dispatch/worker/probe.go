package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// DefaultProbeInterval is the default WorkerConfig.ProbeInterval.
const DefaultProbeInterval = 5 * time.Second

const (
	// probeTimeout bounds one probe. A prober holds the scope it probes
	// for probeLease: no other probes it meanwhile, and when the prober
	// dies another takes the scope up after it.
	probeTimeout = 30 * time.Second
	probeLease   = probeTimeout + 10*time.Second
	// maxProbes is the most probes under way at once in one instance.
	maxProbes = 4
	// minProbeWait is the least time between two looks for a scope to
	// probe: a probe due now may be held by another prober's claim being
	// committed.
	minProbeWait = 50 * time.Millisecond
	// stragglerDelay is when the jobs of a scope are made available a
	// second time after its block was lifted: a send that read the block
	// just before snoozes just after, and would wait for the block's end.
	stragglerDelay = time.Second
)

// Prober lifts the blocks of the send job as soon as what they block
// accepts again. A temporary failure blocks a recipient's domain, or the
// submission server, for a growing while (WorkerConfig.RetryBackoff, up to
// 30 times it) and the domain's emails snooze until then; meanwhile one
// Prober among the instances probes the scope every
// WorkerConfig.ProbeInterval through the transport (mail.Prober): the
// server with a connection and its greeting, a domain with MAIL FROM and
// RCPT TO one of its emails' address, then RSET. A probe uses up nothing of
// an email's (no attempt, no history). The first probe passed lifts the
// block for every instance: the scope's failures are forgotten, each email
// it held that says so in its history gets a dispatch.EventResumed, and
// the snoozed send jobs are worked at once. A probe failed changes nothing
// but the time of the next one: the backoff still spaces the emails'
// attempts on a server that keeps failing.
//
// It runs in a goroutine of each process (Run), not as a periodic River
// job: River's periodic jobs here have a minute's granularity, and a job
// every few seconds would add a row to River's table each time, blocked
// scope or not. Which instance probes a scope is decided in PostgreSQL
// (mail_domains.next_probe_at, claimed with SKIP LOCKED).
type Prober struct {
	cfg    WorkerConfig
	probe  mail.Prober // nil: the transport never blocks (the outbox)
	probes *prometheus.CounterVec
}

// NewProber validates cfg and returns the prober of its blocked scopes,
// registering its metrics with cfg.Registerer: mssdispatch_smtp_probes_total
// and mssdispatch_smtp_blocked_scopes. Only cfg's Pool, Transport, Sender,
// ProbeInterval, Registerer and Logger serve it.
func NewProber(cfg WorkerConfig) (*Prober, error) {
	cfg, _, err := cfg.complete()
	if err != nil {
		return nil, err
	}
	p := &Prober{cfg: cfg, probes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mssdispatch_smtp_probes_total",
		Help: "Probes of a blocked domain or of the submission server, by result: ok (the block is lifted) or failed.",
	}, []string{"result"})}
	p.probe, _ = cfg.Transport.(mail.Prober)
	for _, result := range []string{"ok", "failed"} {
		p.probes.WithLabelValues(result)
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{p.probes, newBlockedScopes(cfg.Pool)} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("worker: register metrics: %w", err)
			}
		}
	}
	return p, nil
}

// Run probes the blocked scopes until ctx ends, then waits for the probes
// under way. It returns at once when the transport cannot probe.
func (p *Prober) Run(ctx context.Context) {
	if p.probe == nil {
		return
	}
	var probes sync.WaitGroup
	defer probes.Wait()
	slots := make(chan struct{}, maxProbes)
	for {
		// Nothing blocked: look every interval. A scope blocked: look
		// again when its next probe is due.
		wait := min(max(p.startDue(ctx, &probes, slots), minProbeWait), p.cfg.ProbeInterval)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// startDue claims each scope due for a probe, as long as a slot is free,
// and probes it in a goroutine of probes; it returns how long until the
// next probe is due (the interval when nothing is blocked).
func (p *Prober) startDue(ctx context.Context, probes *sync.WaitGroup, slots chan struct{}) time.Duration {
	for {
		select {
		case slots <- struct{}{}:
		default:
			return 0 // as many probes under way as slots
		}
		c, err := claimProbe(ctx, p.cfg.Pool, probeLease)
		if err != nil || c.scope == "" {
			<-slots
			switch {
			case err != nil && ctx.Err() == nil:
				p.cfg.Logger.WarnContext(ctx, "cannot claim a blocked scope to probe", "error", err)
			case err == nil && c.blocked && c.next != nil:
				return *c.next
			}
			return p.cfg.ProbeInterval
		}
		probes.Go(func() {
			defer func() { <-slots }()
			p.probeScope(ctx, c.scope)
		})
	}
}

// probeScope probes scope, claimed, and lifts its block when it accepts again.
func (p *Prober) probeScope(ctx context.Context, scope string) {
	probeCtx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	env := mail.Envelope{} // the server: a connection and its greeting
	if scope != serverScope {
		to, found, err := probeAddress(probeCtx, p.cfg.Pool, scope)
		if err != nil {
			p.cfg.Logger.WarnContext(ctx, "cannot probe a blocked domain", "scope", scope, "error", err)
			return // probed again once the claim lapses
		}
		if !found { // nothing of the domain's waits any more: forget its failures
			p.resume(ctx, scope)
			return
		}
		env = mail.Envelope{From: p.cfg.Sender, To: []string{to}}
	}
	err := p.probe.Probe(probeCtx, env)
	if ctx.Err() != nil {
		return // shutting down: the claim lapses, another instance probes it
	}
	// A refusal for good of the address probed is an answer of its
	// domain, which refuses for now no more: the email will fail, the
	// others go.
	if err != nil && !(scope != serverScope && mail.IsRecipientError(err) && mail.IsPermanent(err)) {
		p.probes.WithLabelValues("failed").Inc()
		p.cfg.Logger.DebugContext(ctx, "blocked scope probed, still refusing", "scope", scope, "error", redact.Text(err.Error()))
		if err := probeFailed(ctx, p.cfg.Pool, scope, p.cfg.ProbeInterval); err != nil {
			p.cfg.Logger.WarnContext(ctx, "cannot record a probe", "scope", scope, "error", err)
		}
		return
	}
	p.probes.WithLabelValues("ok").Inc()
	p.resume(ctx, scope)
}

// resume lifts the block of scope and makes the jobs it held available, then
// again after stragglerDelay.
func (p *Prober) resume(ctx context.Context, scope string) {
	detail := "le serveur de messagerie accepte de nouveau les envois : nouvel essai immédiat"
	if scope != serverScope {
		detail = fmt.Sprintf("le domaine %s accepte de nouveau les envois : nouvel essai immédiat", scope)
	}
	held, resumed, err := resumeScope(ctx, p.cfg.Pool, scope, detail)
	if err != nil {
		p.cfg.Logger.WarnContext(ctx, "cannot lift the block of a scope that accepts again", "scope", scope, "error", err)
		return
	}
	p.cfg.Logger.InfoContext(ctx, "blocked scope accepts again: block lifted", "scope", scope, "emails", held, "resumed", resumed)
	select {
	case <-ctx.Done():
		return
	case <-time.After(stragglerDelay):
	}
	if _, err := wakeHeld(ctx, p.cfg.Pool, scope); err != nil && !errors.Is(err, context.Canceled) {
		p.cfg.Logger.WarnContext(ctx, "cannot make the jobs of a scope available again", "scope", scope, "error", err)
	}
}

// blockedScopes exports the scopes blocked now (mssdispatch_smtp_blocked_scopes),
// read from mail_domains at each scrape: every instance reports the same.
type blockedScopes struct {
	pool *pgxpool.Pool
	desc *prometheus.Desc
}

func newBlockedScopes(pool *pgxpool.Pool) *blockedScopes {
	return &blockedScopes{pool: pool, desc: prometheus.NewDesc("mssdispatch_smtp_blocked_scopes",
		"Recipients' domains, and the submission server, blocked now after temporary failures: their emails wait.", nil, nil)}
}

// Describe implements prometheus.Collector.
func (c *blockedScopes) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector; a database error reports it as
// an invalid metric, which the scrape shows.
func (c *blockedScopes) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := countBlocked(ctx, c.pool)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
}
