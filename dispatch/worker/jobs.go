package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/ruleset"
	"github.com/mssdispatch/mssdispatch/queue"
)

// WorkerConfig configures the workers.
type WorkerConfig struct {
	// Pool is the database. Required.
	Pool *pgxpool.Pool
	// Resolver decides recipients' routes. Required.
	Resolver dispatch.Resolver
	// Transport transmits emails. Required.
	Transport mail.Transport
	// Sender is the BAL applicative's address, the From of every email. Required.
	Sender string
	// NIL is the product reference written in the X-MSS-NIL header of every
	// email (printable ASCII). Defaults to DefaultNIL.
	NIL string
	// SourceID is the OID written as the sourceId of the XDM submission set:
	// the sending organisation's or application's OID. Defaults to
	// DemoSourceID, which is fit for tests and demonstrations only.
	SourceID string
	// HealthcareFacilityType and PracticeSetting override the XDS codes of
	// the sending organisation in METADATA.XML. Zero (the default) takes them
	// from the CDA header, else cda.DefaultHealthcareFacilityType and
	// cda.DefaultPracticeSetting.
	HealthcareFacilityType, PracticeSetting cda.Code
	// PatientNoReply adds X-MSS-MES: FIN to the emails sent to patients, who
	// are then told not to reply. Defaults to false.
	PatientNoReply bool
	// FallbackRecipients sends to the correspondents a DPI lists outside the
	// volet (ROL, PV1-8, OBR-28, PD1-4) when a message has no PRT RCT.
	// Defaults to false: they are kept but not sent to.
	FallbackRecipients bool
	// GiveUpAfter is how long an email may wait in the queue through
	// temporary failures before it fails (and its fallback applies).
	// Defaults to 48 hours.
	GiveUpAfter time.Duration
	// RetryBackoff is how long a domain (or the submission server) is blocked
	// after its first temporary failure; it doubles with each further one, up
	// to 30 times itself. Defaults to 30 seconds (so at most 15 minutes). A
	// Prober lifts a block as soon as its scope accepts again.
	RetryBackoff time.Duration
	// ProbeInterval is how often a blocked domain (or the submission
	// server) is probed while its block lasts, by one Prober among the
	// instances: the first probe it passes lifts the block. Defaults to
	// DefaultProbeInterval.
	ProbeInterval time.Duration
	// Registerer receives the workers' metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Foreground, when not nil, is the reports being received: while one
	// is, the CPU-heavy parts of the resolve and send jobs run one at a time
	// (the others wait, at most yieldMax each), so that the DPI's ACKs come
	// first. Install shares one with the Service.
	Foreground *queue.Foreground
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// AddWorkers validates cfg and registers the package's workers.
func AddWorkers(workers *river.Workers, cfg WorkerConfig) error {
	cfg, domain, err := cfg.complete()
	if err != nil {
		return err
	}
	sends := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mssdispatch_sends_total",
		Help: "Emails to send, by result: sent, failed, retry, or untrusted (not handed to the transport: its address was outside the trust space).",
	}, []string{"result"})
	for _, result := range []string{"sent", "failed", "retry", "untrusted"} {
		sends.WithLabelValues(result)
	}
	interrupted := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mssdispatch_send_interrupted_total",
		Help: "Send attempts that found the previous one interrupted between SMTP and its record: possible duplicates (same Message-ID).",
	})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{sends, interrupted} {
			if err := cfg.Registerer.Register(c); err != nil {
				return fmt.Errorf("worker: register metrics: %w", err)
			}
		}
	}
	for _, add := range []func() error{
		func() error { return river.AddWorkerSafely(workers, &resolveWorker{cfg: cfg, domain: domain}) },
		func() error {
			return river.AddWorkerSafely(workers, &sendWorker{cfg: cfg, sends: sends, interrupted: interrupted})
		},
		func() error { return river.AddWorkerSafely(workers, &releaseWorker{cfg: cfg, domain: domain}) },
		func() error { return river.AddWorkerSafely(workers, &deadlineWorker{cfg: cfg}) },
		func() error { return river.AddWorkerSafely(workers, &fallbackWorker{cfg: cfg}) },
		func() error { return river.AddWorkerSafely(workers, &watchdogWorker{cfg: cfg}) },
	} {
		if err := add(); err != nil {
			return fmt.Errorf("worker: %w", err)
		}
	}
	return nil
}

// complete validates cfg and returns it with its defaults, and the sender's domain.
func (cfg WorkerConfig) complete() (WorkerConfig, string, error) {
	switch {
	case cfg.Pool == nil:
		return cfg, "", errors.New("worker: WorkerConfig.Pool is required")
	case cfg.Resolver == nil:
		return cfg, "", errors.New("worker: WorkerConfig.Resolver is required")
	case cfg.Transport == nil:
		return cfg, "", errors.New("worker: WorkerConfig.Transport is required")
	case cfg.ProbeInterval < 0:
		return cfg, "", errors.New("worker: WorkerConfig.ProbeInterval must not be negative")
	}
	_, domain, ok := strings.Cut(cfg.Sender, "@")
	if !ok || domain == "" {
		return cfg, "", fmt.Errorf("worker: sender %q is not an email address", cfg.Sender)
	}
	if cfg.NIL == "" {
		cfg.NIL = DefaultNIL
	}
	for _, c := range cfg.NIL {
		if c < ' ' || c > '~' {
			return cfg, "", fmt.Errorf("worker: NIL %q: want printable ASCII", cfg.NIL)
		}
	}
	if cfg.SourceID == "" {
		cfg.SourceID = DemoSourceID
	}
	if !IsOID(cfg.SourceID) {
		return cfg, "", fmt.Errorf("worker: SourceID %q is not an OID", cfg.SourceID)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.GiveUpAfter == 0 {
		cfg.GiveUpAfter = 48 * time.Hour
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = 30 * time.Second
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	return cfg, domain, nil
}

// yieldMax bounds how long a job's part waits for its turn beside the
// reports being received (WorkerConfig.Foreground): under a steady intake
// the jobs still go on, one at a time and each after at most this.
const yieldMax = time.Second

type resolveWorker struct {
	river.WorkerDefaults[dispatch.ResolveArgs]
	cfg    WorkerConfig
	domain string
}

// Work creates the deliveries of the report's recipients that have none yet,
// as the rules in force decide (ruleset.InForce, dispatch.PlanReport), and
// enqueues their sends and releases, in one transaction. River completes
// the job after it: run again, the job finds every recipient with its
// deliveries and creates nothing.
func (w *resolveWorker) Work(ctx context.Context, job *river.Job[dispatch.ResolveArgs]) error {
	defer w.cfg.Foreground.Background(ctx, yieldMax)()
	reportID := job.Args.ReportID
	rs, err := ruleset.InForce(ctx, w.cfg.Pool)
	if err != nil {
		return err
	}
	plan, err := dispatch.PlanReport(ctx, w.cfg.Pool, w.cfg.Resolver, rs, reportID, w.cfg.FallbackRecipients)
	if err != nil {
		return err
	}
	ins, err := workerJobs(ctx)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, w.cfg.Pool, func(tx pgx.Tx) error {
		jobs, err := plan.Apply(ctx, tx, ins, w.domain)
		if err != nil {
			return err
		}
		w.cfg.Logger.InfoContext(ctx, "report resolved", "report_id", reportID, "deliveries", plan.Deliveries(),
			"jobs", jobs, "rules_version", plan.RulesVersion())
		return nil
	})
}

// workerJobs is the River client a worker runs in, to insert jobs with.
func workerJobs(ctx context.Context) (dispatch.JobInserter, error) {
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return client, nil
}
