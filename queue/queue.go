package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"github.com/robfig/cron/v3"

	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// Client is the River client the service uses.
type Client = river.Client[pgx.Tx]

// ActiveStates are the job states in which a unique job blocks another of
// the same kind and arguments: waiting or running, not finished (the
// UniqueOpts.ByState of the service's jobs).
var ActiveStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
	rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled}

// Periodic is a job inserted on a cron schedule; only the elected leader among
// the instances sharing a database inserts it.
type Periodic struct {
	// Spec is a standard five-field cron spec, e.g. "0 3 * * *".
	Spec string
	// Args builds the job's arguments at each run.
	Args func() river.JobArgs
	// RunOnStart also inserts the job when the client starts.
	RunOnStart bool
}

// DefaultConcurrency is the default Config.Concurrency.
const DefaultConcurrency = 20

// fetchCooldown is the least time between two fetches of jobs by the
// client (River's default is 100 ms): a report's four jobs take a few
// milliseconds each, and at River's default the workers, free, waited for
// the next fetch (end to end 43 reports/s on two CPUs that allow 63).
const fetchCooldown = 10 * time.Millisecond

// Config configures the River client.
type Config struct {
	// ID names the client among those sharing the database (River's
	// Config.ID): River records it in the attempted_by of every job the
	// client works, and leader election uses it. Give each process its own,
	// the same across its restarts, and hold it with Claim while the client
	// runs: then Instance.RescueOrphans takes up at start the jobs the
	// process's previous run left running. At most 100 characters
	// (CheckID). Defaults to River's, the host name and the time.
	ID string
	// Workers holds the workers of every job kind the client works. Required.
	Workers *river.Workers
	// Concurrency is the number of jobs worked at once on the default queue.
	// Defaults to DefaultConcurrency.
	Concurrency int
	// Periodic lists the periodic jobs.
	Periodic []Periodic
	// JobTimeout is the longest a job may run. Defaults to 2 minutes.
	JobTimeout time.Duration
	// RescueStuckJobsAfter is how long a job may stay running before it is
	// worked again, as after the crash of the process that ran it; longer
	// than every worker's timeout. Defaults to 15 minutes.
	RescueStuckJobsAfter time.Duration
	// FetchPollInterval is how often workers poll when no notification
	// arrives. Defaults to River's one second.
	FetchPollInterval time.Duration
	// Logger receives River's logs, patient data masked (internal/redact).
	// Defaults to slog.Default().
	Logger *slog.Logger
}

// New builds a River client on pool; call Start to work jobs.
func New(pool *pgxpool.Pool, cfg Config) (*Client, error) {
	if cfg.Workers == nil {
		return nil, errors.New("queue: Config.Workers is required")
	}
	if cfg.ID != "" {
		if err := CheckID(cfg.ID); err != nil {
			return nil, fmt.Errorf("queue: Config.ID %q: %w", cfg.ID, err)
		}
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.JobTimeout == 0 {
		cfg.JobTimeout = 2 * time.Minute
	}
	if cfg.RescueStuckJobsAfter == 0 {
		cfg.RescueStuckJobsAfter = 15 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	periodic := make([]*river.PeriodicJob, 0, len(cfg.Periodic))
	for _, p := range cfg.Periodic {
		schedule, err := cron.ParseStandard(p.Spec)
		if err != nil {
			return nil, fmt.Errorf("queue: cron spec %q: %w", p.Spec, err)
		}
		args := p.Args
		periodic = append(periodic, river.NewPeriodicJob(schedule,
			func() (river.JobArgs, *river.InsertOpts) { return args(), nil },
			&river.PeriodicJobOpts{RunOnStart: p.RunOnStart}))
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		ID:                   cfg.ID,
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Concurrency}},
		Workers:              cfg.Workers,
		PeriodicJobs:         periodic,
		JobTimeout:           cfg.JobTimeout,
		RescueStuckJobsAfter: cfg.RescueStuckJobsAfter,
		FetchPollInterval:    cfg.FetchPollInterval,
		FetchCooldown:        fetchCooldown,
		Logger:               redact.Logger(cfg.Logger),
	})
	if err != nil {
		return nil, fmt.Errorf("queue: new river client: %w", err)
	}
	return client, nil
}

// Migrate brings River's tables up to date, one transaction per River version.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("queue: river migrator: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("queue: migrate river: %w", err)
	}
	return nil
}

// CheckSchema returns an error when River's tables are not up to date.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool) error {
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("queue: river migrator: %w", err)
	}
	res, err := migrator.Validate(ctx, nil)
	if err != nil {
		return fmt.Errorf("queue: validate river schema: %w", err)
	}
	if !res.OK {
		return fmt.Errorf("river schema is out of date (%s): run `mssdispatch migrate`", strings.Join(res.Messages, "; "))
	}
	return nil
}
