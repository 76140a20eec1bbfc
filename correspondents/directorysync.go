package correspondents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	logredact "github.com/mssdispatch/mssdispatch/internal/redact"
	"github.com/mssdispatch/mssdispatch/queue"
)

// DirectorySyncArgs is the periodic job that imports the MSSanté whitelist,
// then the national directory, from their configured sources.
type DirectorySyncArgs struct{}

// Kind is the River job kind.
func (DirectorySyncArgs) Kind() string { return "directory_sync" }

// InsertOpts allows one sync at a time, however many instances or schedules
// ask (a finished one does not block the next), and retries a failed sync twice.
func (DirectorySyncArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByState: queue.ActiveStates}}
}

// DirectorySyncConfig configures the directory sync job.
type DirectorySyncConfig struct {
	// Store runs the imports and keeps their statuses. Required.
	Store *Store
	// DirectorySource and WhitelistSource are file paths or https:// URLs of
	// the Extraction_Correspondance_MSSante (.txt or .zip) and of the
	// whitelist XML; an empty one is not synced.
	DirectorySource, WhitelistSource string
	// Timeout bounds one sync (download and import). Defaults to 10 minutes,
	// below the queue's rescue of stuck jobs; the 1M-row national directory
	// imports in under 20 seconds.
	Timeout time.Duration
	// Registerer receives the import metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// AddDirectorySync validates cfg, registers the sync worker and, with a
// Registerer, the import metrics (read from the database at each scrape, so
// every instance reports the same): mssdispatch_directory_import_last_failed
// (1 while the latest attempt of a kind failed: alert on it),
// mssdispatch_directory_import_last_success_timestamp_seconds and
// mssdispatch_directory_entries.
func AddDirectorySync(workers *river.Workers, cfg DirectorySyncConfig) error {
	if cfg.Store == nil {
		return errors.New("correspondents: DirectorySyncConfig.Store is required")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(importCollector{store: cfg.Store, logger: cfg.Logger}); err != nil {
			return fmt.Errorf("correspondents: register directory metrics: %w", err)
		}
	}
	if err := river.AddWorkerSafely(workers, &directorySyncWorker{cfg: cfg}); err != nil {
		return fmt.Errorf("correspondents: %w", err)
	}
	return nil
}

type directorySyncWorker struct {
	river.WorkerDefaults[DirectorySyncArgs]
	cfg DirectorySyncConfig
}

// Timeout lets a sync download and import the whole national directory.
func (w *directorySyncWorker) Timeout(*river.Job[DirectorySyncArgs]) time.Duration {
	return w.cfg.Timeout
}

// Work imports the whitelist first (a new operator's domain is trusted before
// its mailboxes arrive), then the directory. A failed import keeps the data
// in use and is recorded; the job then fails and River retries it.
func (w *directorySyncWorker) Work(ctx context.Context, job *river.Job[DirectorySyncArgs]) error {
	opts := ImportOptions{Trigger: TriggerSchedule}
	var errs []error
	for _, imp := range []struct {
		kind, src string
		run       func(context.Context, string, ImportOptions) (ImportSummary, error)
	}{
		{"whitelist", w.cfg.WhitelistSource, w.cfg.Store.ImportWhitelistFrom},
		{"directory", w.cfg.DirectorySource, w.cfg.Store.ImportDirectoryFrom},
	} {
		if imp.src == "" {
			continue
		}
		start := time.Now()
		sum, err := imp.run(ctx, imp.src, opts)
		if err != nil {
			w.cfg.Logger.ErrorContext(ctx, "directory sync failed, the previous data stays in use", "kind", imp.kind,
				"attempt", job.Attempt, "error", logredact.Text(err.Error()))
			errs = append(errs, fmt.Errorf("sync %s: %w", imp.kind, err))
			continue
		}
		w.cfg.Logger.InfoContext(ctx, "directory sync done", "kind", imp.kind, "rows", sum.Rows, "skipped", sum.Skipped,
			"added", sum.Added, "removed", sum.Removed, "changed", sum.Changed, "duration", time.Since(start).Round(time.Millisecond))
	}
	return errors.Join(errs...)
}

var (
	importFailedDesc = prometheus.NewDesc("mssdispatch_directory_import_last_failed",
		"1 when the latest import attempt of the kind (directory, whitelist) failed: the previous data is still in use.",
		[]string{"kind"}, nil)
	importSuccessDesc = prometheus.NewDesc("mssdispatch_directory_import_last_success_timestamp_seconds",
		"Time of the latest successful import of the kind.", []string{"kind"}, nil)
	entriesDesc = prometheus.NewDesc("mssdispatch_directory_entries",
		"Entries in use: mailboxes of the national directory, domains of the whitelist.", []string{"kind"}, nil)
)

// importCollector reports the import statuses from the database at each scrape.
type importCollector struct {
	store  *Store
	logger *slog.Logger
}

func (c importCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- importFailedDesc
	ch <- importSuccessDesc
	ch <- entriesDesc
}

func (c importCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	statuses, err := c.store.ImportStatuses(ctx)
	if err != nil {
		c.logger.Warn("directory import metrics", "error", logredact.Text(err.Error()))
		ch <- prometheus.NewInvalidMetric(importFailedDesc, err)
		return
	}
	for _, st := range statuses {
		failed := 0.0
		if st.LastFailed {
			failed = 1
		}
		ch <- prometheus.MustNewConstMetric(importFailedDesc, prometheus.GaugeValue, failed, st.Kind)
		if !st.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(importSuccessDesc, prometheus.GaugeValue, float64(st.LastSuccess.Unix()), st.Kind)
		}
		ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(st.Entries), st.Kind)
	}
}
