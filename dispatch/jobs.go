package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
)

// ResolveArgs is the job that turns a report's recipients without a
// delivery into deliveries.
type ResolveArgs struct {
	ReportID int64 `json:"report_id"`
	// Inbound is the message that sent the report's documents again with new
	// recipients, for the job that serves them (0 for the report's first).
	Inbound int64 `json:"inbound,omitempty"`
}

// Kind is the River job kind.
func (ResolveArgs) Kind() string { return "resolve_report" }

// InsertOpts makes the job unique per report and message.
func (ResolveArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Resolver decides the routes of a listed recipient.
type Resolver interface {
	Resolve(ctx context.Context, r correspondents.Recipient) ([]correspondents.Route, error)
}

// WorkerConfig configures the workers.
type WorkerConfig struct {
	// Pool is the database. Required.
	Pool *pgxpool.Pool
	// Resolver decides recipients' routes. Required.
	Resolver Resolver
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
	// to 30 times itself. Defaults to 30 seconds (so at most 15 minutes).
	RetryBackoff time.Duration
	// Registerer receives the workers' metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// AddWorkers validates cfg and registers the package's workers.
func AddWorkers(workers *river.Workers, cfg WorkerConfig) error {
	switch {
	case cfg.Pool == nil:
		return errors.New("dispatch: WorkerConfig.Pool is required")
	case cfg.Resolver == nil:
		return errors.New("dispatch: WorkerConfig.Resolver is required")
	case cfg.Transport == nil:
		return errors.New("dispatch: WorkerConfig.Transport is required")
	}
	_, domain, ok := strings.Cut(cfg.Sender, "@")
	if !ok || domain == "" {
		return fmt.Errorf("dispatch: sender %q is not an email address", cfg.Sender)
	}
	if cfg.NIL == "" {
		cfg.NIL = DefaultNIL
	}
	for _, c := range cfg.NIL {
		if c < ' ' || c > '~' {
			return fmt.Errorf("dispatch: NIL %q: want printable ASCII", cfg.NIL)
		}
	}
	if cfg.SourceID == "" {
		cfg.SourceID = DemoSourceID
	}
	if !IsOID(cfg.SourceID) {
		return fmt.Errorf("dispatch: SourceID %q is not an OID", cfg.SourceID)
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
				return fmt.Errorf("dispatch: register metrics: %w", err)
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
			return fmt.Errorf("dispatch: %w", err)
		}
	}
	return nil
}

type resolveWorker struct {
	river.WorkerDefaults[ResolveArgs]
	cfg    WorkerConfig
	domain string
}

// Work creates the deliveries of the report's recipients that have none yet,
// as the rules in force decide, and enqueues their sends and releases,
// completing the job in the same transaction.
func (w *resolveWorker) Work(ctx context.Context, job *river.Job[ResolveArgs]) error {
	reportID := job.Args.ReportID
	rf, recipients, err := unresolvedRecipients(ctx, w.cfg.Pool, reportID)
	if err != nil {
		return err
	}
	rules, err := activeRuleSet(ctx, w.cfg.Pool)
	if err != nil {
		return err
	}
	useFallbacks := w.cfg.FallbackRecipients && !hasRole(recipients, RoleResultCopiesTo)
	plan, err := planReport(ctx, w.cfg.Resolver, rules, rf, recipients, useFallbacks)
	if err != nil {
		return fmt.Errorf("resolve report %d: %w", reportID, err)
	}
	ins, err := workerJobs(ctx)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, w.cfg.Pool, func(tx pgx.Tx) error {
		var jobs []river.InsertManyParams
		for _, p := range plan {
			d := p.newDelivery
			if d.Channel == correspondents.ChannelMSSante {
				d.MessageID = newMessageID(w.domain)
			}
			id, created, err := insertDelivery(ctx, tx, reportID, d, actorRule(p.Rule))
			if err != nil {
				return err
			}
			if created {
				jobs = append(jobs, followUp(id, d)...)
			}
		}
		if err := insertJobs(ctx, tx, ins, jobs); err != nil {
			return err
		}
		if err := setReportStatus(ctx, tx, reportID, ReportResolved); err != nil {
			return err
		}
		if err := completeTx(ctx, tx, job); err != nil {
			return err
		}
		w.cfg.Logger.InfoContext(ctx, "report resolved", "report_id", reportID, "deliveries", len(plan),
			"jobs", len(jobs), "rules_version", rules.Version)
		return nil
	})
}

// followUp is the job that takes a new delivery further: its send when
// queued, its release when scheduled.
func followUp(id int64, d newDelivery) []river.InsertManyParams {
	switch {
	case d.Status == StatusQueued:
		return []river.InsertManyParams{{Args: SendArgs{DeliveryID: id, MessageID: d.MessageID}}}
	case d.Status == StatusScheduled && d.ScheduledFor != nil:
		return []river.InsertManyParams{{Args: ReleaseArgs{DeliveryID: id}, InsertOpts: &river.InsertOpts{ScheduledAt: *d.ScheduledFor}}}
	}
	return nil
}

// insertJobs inserts jobs in tx with ins, after adding the follow-up jobs
// among them to their deliveries' follow-ups (see onFollowUp). Adding first
// locks those deliveries before the insert: a job of the same name running
// meanwhile, which takes its name off in a transaction that locks its
// delivery too, either commits before (the insert is then no duplicate of
// it and the name is added again) or after (the insert is skipped as a
// duplicate and the job takes the name off): the name stays from the
// enqueueing until a job of that name has run.
func insertJobs(ctx context.Context, tx pgx.Tx, ins JobInserter, jobs []river.InsertManyParams) error {
	if len(jobs) == 0 {
		return nil
	}
	var ids []int64
	var names []string
	for _, j := range jobs {
		if f, ok := j.Args.(followUpJob); ok {
			id, name := f.followUp()
			ids, names = append(ids, id), append(names, name)
		}
	}
	if err := addFollowUps(ctx, tx, ids, names); err != nil {
		return err
	}
	if _, err := ins.InsertManyTx(ctx, tx, jobs); err != nil {
		return fmt.Errorf("enqueue jobs: %w", err)
	}
	return nil
}

// workerJobs is the River client a worker runs in, to insert jobs with.
func workerJobs(ctx context.Context) (JobInserter, error) {
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return client, nil
}

func hasRole(rs []storedRecipient, role string) bool {
	for _, r := range rs {
		if r.Role == role {
			return true
		}
	}
	return false
}

// isFallbackRole reports whether role is a correspondent listed outside PRT RCT.
func isFallbackRole(role string) bool {
	switch role {
	case RoleGP, RoleReferring, RoleAttending, RoleAdmitting, RoleConsulting, RoleResultsCopy, RolePrimaryCare:
		return true
	}
	return false
}

// newMessageID returns a unique Message-ID (without angle brackets) in domain.
func newMessageID(domain string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b) + "@" + domain
}
