package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/queue"
)

// PurgeArgs is the periodic job that purges the patient data bytes kept
// past the retention period: the documents no delivery needs any more, and
// the raw messages of the quarantine. Reports, deliveries and their history stay.
type PurgeArgs struct{}

// Kind is the River job kind.
func (PurgeArgs) Kind() string { return "retention_purge" }

// InsertOpts allows one purge at a time, however many instances or schedules
// ask (a finished one does not block the next), and retries a failed one twice.
func (PurgeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByState: queue.ActiveStates}}
}

// MinDays is the shortest retention period Config accepts.
const MinDays = 7

// retainingStatuses are the delivery statuses in which a delivery may still
// need its document: not left yet (review, scheduled, queued, paper_pending),
// sent without a delivery notification (a bounce may still need the paper
// fallback), failed (a secretary may send it again or print it). A document
// of a resolved report whose deliveries are all delivered, read, paper_sent,
// cancelled or superseded (or that has none), and none of which has a
// follow-up yet to come (an acknowledgement deadline not swept yet, a
// deadline or fallback job yet to run: they may still give a delivery a
// paper fallback that prints the document; see the domain's follow-ups,
// deliveries.follow_ups and ack_due_at), is purged.
var retainingStatuses = []dispatch.Status{dispatch.StatusReview, dispatch.StatusScheduled, dispatch.StatusQueued,
	dispatch.StatusSent, dispatch.StatusFailed, dispatch.StatusPaperPending}

// Config configures the retention job.
type Config struct {
	// Pool is the database. Required.
	Pool *pgxpool.Pool
	// Days is the retention period: the bytes of a document are purged once
	// its report was received more than Days days ago and none of its
	// deliveries still needs it (none waits to leave, sent without
	// acknowledgement, failed, or with an acknowledgement deadline or a
	// fallback yet to run, and the report is resolved); those of a
	// quarantined message, once it was received more than Days days ago. At
	// least MinDays. Defaults to 90.
	Days int
	// AuditDays is the retention period of the audit log's entries, at
	// least audit.MinRetentionDays; defaults to audit.DefaultRetentionDays.
	AuditDays int
	// BatchSize is the number of rows purged per transaction. Defaults to 500.
	BatchSize int
	// Registerer receives the retention metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// AddPurge validates cfg, registers the retention worker and, with a
// Registerer, its metrics: mssdispatch_retention_purged_total{kind} (kind
// document or quarantine) and mssdispatch_retention_kept_documents (the
// documents past the period that the last run on this instance kept because
// a delivery still needs them).
func AddPurge(workers *river.Workers, cfg Config) error {
	if cfg.Pool == nil {
		return errors.New("retention: Config.Pool is required")
	}
	if cfg.Days == 0 {
		cfg.Days = 90
	}
	if cfg.Days < MinDays {
		return fmt.Errorf("retention: Config.Days %d: want at least %d", cfg.Days, MinDays)
	}
	if cfg.AuditDays == 0 {
		cfg.AuditDays = audit.DefaultRetentionDays
	}
	if cfg.AuditDays < audit.MinRetentionDays {
		return fmt.Errorf("retention: Config.AuditDays %d: want at least %d", cfg.AuditDays, audit.MinRetentionDays)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 500
	}
	if cfg.BatchSize < 0 {
		return fmt.Errorf("retention: Config.BatchSize %d: want a positive number", cfg.BatchSize)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &retentionWorker{cfg: cfg,
		purged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mssdispatch_retention_purged_total",
			Help: "Data purged past its retention period, by kind (document: a report's document bytes; quarantine: a refused message's raw bytes; audit: an audit log entry).",
		}, []string{"kind"}),
		kept: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mssdispatch_retention_kept_documents",
			Help: "Documents past the retention period that the last retention run kept because a delivery still needs them.",
		}),
	}
	for _, kind := range []string{retentionDocument, retentionQuarantine, retentionAudit} {
		w.purged.WithLabelValues(kind)
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{w.purged, w.kept} {
			if err := cfg.Registerer.Register(c); err != nil {
				return fmt.Errorf("retention: register metrics: %w", err)
			}
		}
	}
	if err := river.AddWorkerSafely(workers, w); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	return nil
}

// Kinds of purged data (the kind label of mssdispatch_retention_purged_total).
const (
	retentionDocument   = "document"
	retentionQuarantine = "quarantine"
	retentionAudit      = "audit"
)

// keptSample is how many ids of kept reports a run logs.
const keptSample = 20

type retentionWorker struct {
	river.WorkerDefaults[PurgeArgs]
	cfg    Config
	purged *prometheus.CounterVec
	kept   prometheus.Gauge
}

// Timeout lets a run go through many batches, below the queue's rescue of
// stuck jobs (15 minutes by default); each batch is committed, so a run cut
// short loses nothing and the next one goes on.
func (w *retentionWorker) Timeout(*river.Job[PurgeArgs]) time.Duration {
	return 10 * time.Minute
}

// Work purges, batch after batch, the documents past the period that no
// delivery needs, then the quarantined messages past the period, then the
// audit log's entries past theirs, and counts and logs the documents kept
// past the period.
func (w *retentionWorker) Work(ctx context.Context, job *river.Job[PurgeArgs]) error {
	start := time.Now()
	cutoff, err := retentionCutoff(ctx, w.cfg.Pool, w.cfg.Days)
	if err != nil {
		return err
	}
	rq := retentionQuery{Cutoff: cutoff, Statuses: retainingStatuses, Unresolved: dispatch.ReportReceived}

	documents, err := w.purgeAll(ctx, retentionDocument, func(after int64) (int, int64, error) {
		return purgeDocumentBatch(ctx, w.cfg.Pool, rq, after, w.cfg.BatchSize)
	})
	if err != nil {
		return err
	}
	quarantined, err := w.purgeAll(ctx, retentionQuarantine, func(after int64) (int, int64, error) {
		return purgeQuarantineBatch(ctx, w.cfg.Pool, cutoff, after, w.cfg.BatchSize)
	})
	if err != nil {
		return err
	}

	audited, err := audit.NewLog(w.cfg.Pool).Purge(ctx, w.cfg.AuditDays, w.cfg.BatchSize)
	w.purged.WithLabelValues(retentionAudit).Add(float64(audited))
	if err != nil {
		return fmt.Errorf("retention purge of the audit log stopped after %d: %w", audited, err)
	}

	kept, err := keptPastPeriod(ctx, w.cfg.Pool, rq, keptSample)
	if err != nil {
		return err
	}
	w.kept.Set(float64(kept.Count))
	w.cfg.Logger.InfoContext(ctx, "retention purge done", "days", w.cfg.Days, "cutoff", cutoff,
		"documents_purged", documents, "quarantine_purged", quarantined, "audit_purged", audited, "audit_days", w.cfg.AuditDays,
		"documents_kept", kept.Count,
		"attempt", job.Attempt, "duration", time.Since(start).Round(time.Millisecond))
	if kept.Count > 0 {
		attrs := []any{"count", kept.Count, "oldest_report_ids", kept.Sample}
		whys := make([]string, 0, len(retainingStatuses)+2)
		for _, status := range retainingStatuses {
			whys = append(whys, string(status))
		}
		for _, why := range append(whys, "follow_up", "unresolved") {
			if n := kept.ByStatus[why]; n > 0 {
				attrs = append(attrs, "with_"+why, n)
			}
		}
		w.cfg.Logger.InfoContext(ctx, "documents kept past the retention period: a delivery still needs them", attrs...)
	}
	return nil
}

// purgeAll runs batch from the start until a batch finds nothing, counting
// what it purges under kind, and returns the total. It stops early, with
// the error, when ctx ends: what the committed batches purged stays purged.
func (w *retentionWorker) purgeAll(ctx context.Context, kind string, batch func(after int64) (int, int64, error)) (int, error) {
	total := 0
	for after := int64(0); ; {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("retention purge of %s stopped after %d: %w", kind, total, err)
		}
		n, last, err := batch(after)
		if err != nil {
			return total, fmt.Errorf("retention purge of %s stopped after %d: %w", kind, total, err)
		}
		total += n
		w.purged.WithLabelValues(kind).Add(float64(n))
		if last == 0 {
			return total, nil
		}
		after = last
	}
}
