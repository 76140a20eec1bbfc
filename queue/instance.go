package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrInstanceHeld is Claim's error when another session holds the identity:
// another process runs as the same instance, or the session of one that
// died has not ended yet.
var ErrInstanceHeld = errors.New("another process holds this instance's identity")

// maxIDLen is the longest client ID River accepts.
const maxIDLen = 100

// CheckID returns why id cannot name an instance (Config.ID, InstanceConfig.ID),
// or nil: it must be 1 to 100 characters, printable.
func CheckID(id string) error {
	switch {
	case id == "":
		return errors.New("empty")
	case len(id) > maxIDLen:
		return fmt.Errorf("%d bytes long: want at most %d", len(id), maxIDLen)
	case strings.ContainsFunc(id, func(r rune) bool { return !unicode.IsPrint(r) }):
		return errors.New("want printable characters")
	}
	return nil
}

// InstanceConfig configures Claim.
type InstanceConfig struct {
	// ID is the instance's identity, the same as its client's Config.ID.
	// Required (CheckID).
	ID string
	// Wait is how long Claim waits for another session holding ID to end
	// before it gives up: a host that died leaves its session open on the
	// server until TCP keepalives end it (the lock's session asks for them
	// after 10 s of silence: about 25 s). Defaults to 0: no wait.
	Wait time.Duration
	// Registerer receives mssdispatch_jobs_rescued_at_start_total. Defaults
	// to none.
	Registerer prometheus.Registerer
	// Logger receives the waits, the rescue at start and the losses of the
	// lock's connection. Defaults to slog.Default().
	Logger *slog.Logger
}

// Instance is a process's hold on its identity among the processes that
// share the database: the ID its River client records on every job it
// works, guarded by a PostgreSQL session advisory lock on a connection of
// its own, so that two live processes never run as one, and a process that
// holds it knows that the jobs running under its ID were left by a previous
// run (RescueOrphans).
type Instance struct {
	id       string
	pool     *pgxpool.Pool
	connConf *pgx.ConnConfig // the lock's connection's
	logger   *slog.Logger
	rescued  *prometheus.CounterVec
	stop     context.CancelFunc
	released chan struct{}
}

// Claim takes the identity cfg.ID for this process until Release, waiting
// up to cfg.Wait for another session that holds it to end; it returns
// ErrInstanceHeld when that session lasts longer. The lock's connection is
// opened with pool's settings, beside its connections; lost (a restart of
// PostgreSQL), it is opened again and the lock taken again, and an error
// logged while another session holds it.
func Claim(ctx context.Context, pool *pgxpool.Pool, cfg InstanceConfig) (*Instance, error) {
	if err := CheckID(cfg.ID); err != nil {
		return nil, fmt.Errorf("queue: instance %q: %w", cfg.ID, err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	in := &Instance{id: cfg.ID, pool: pool, connConf: pool.Config().ConnConfig, logger: cfg.Logger,
		rescued: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mssdispatch_jobs_rescued_at_start_total",
			Help: "Jobs a previous run of this instance left running, taken up at its start, by what became of them (available, discarded, cancelled)."},
			[]string{"outcome"}),
		released: make(chan struct{})}
	for _, outcome := range []string{"available", "discarded", "cancelled"} {
		in.rescued.WithLabelValues(outcome)
	}
	conn, held, err := lockInstance(ctx, in.connConf, in.id, 0)
	if err == nil && !held && cfg.Wait > 0 {
		in.logger.WarnContext(ctx, "another session holds this instance's identity: waiting for it to end",
			"instance", in.id, "wait", cfg.Wait)
		conn, held, err = lockInstance(ctx, in.connConf, in.id, cfg.Wait)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: instance %s: %w", in.id, err)
	}
	if !held {
		return nil, fmt.Errorf("queue: instance %s: %w", in.id, ErrInstanceHeld)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(in.rescued); err != nil {
			_ = conn.Close(ctx)
			return nil, fmt.Errorf("queue: instance %s: %w", in.id, err)
		}
	}
	holdCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	in.stop = stop
	go in.hold(holdCtx, conn)
	return in, nil
}

// ID is the instance's identity.
func (in *Instance) ID() string { return in.id }

// Release gives up the identity: it closes the lock's connection. Call it
// once the instance's River client stopped.
func (in *Instance) Release() {
	in.stop()
	<-in.released
}

// hold keeps the lock until ctx ends: it waits on the lock's connection,
// which says nothing until it fails, then takes the lock again on a new one.
func (in *Instance) hold(ctx context.Context, conn *pgx.Conn) {
	defer close(in.released)
	for conn != nil {
		err := conn.PgConn().WaitForNotification(ctx) // no LISTEN: returns when the connection fails, or ctx ends
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if ctx.Err() != nil {
			// Released: unlocked before Release returns (the session's end,
			// which would release it too, comes a little after the close).
			_ = unlock(closeCtx, conn, in.id)
		}
		_ = conn.Close(closeCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		in.logger.WarnContext(ctx, "instance lock: connection lost, taking the lock again", "instance", in.id, "error", err)
		conn = in.retake(ctx)
	}
}

// retake takes the lock again on a new connection, trying after 1 s, then
// doubling up to 30 s, until it holds it (the connection) or ctx ends (nil).
func (in *Instance) retake(ctx context.Context) *pgx.Conn {
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		conn, held, err := lockInstance(ctx, in.connConf, in.id, 0)
		switch {
		case held:
			in.logger.InfoContext(ctx, "instance lock taken again", "instance", in.id)
			return conn
		case err != nil:
			in.logger.WarnContext(ctx, "instance lock: cannot take it again", "instance", in.id, "error", err)
		default:
			in.logger.ErrorContext(ctx, "another process runs as this instance: give each its own identity", "instance", in.id)
		}
	}
}

// Rescued counts the jobs RescueOrphans took up, by what became of them.
type Rescued struct {
	// Available are worked again at once: attempts remained.
	Available int
	// Discarded had used up their attempts.
	Discarded int
	// Cancelled were being cancelled (River's JobCancel) when they were left.
	Cancelled int
}

// Total is how many jobs were taken up.
func (r Rescued) Total() int { return r.Available + r.Discarded + r.Cancelled }

// RescueOrphans takes up the jobs a previous run of this instance left
// running (killed, or its host died), before the instance's client works
// jobs: as River's rescuer does after Config.RescueStuckJobsAfter, without
// waiting, since no live process runs as this instance. A job with attempts
// left is available at once, one without is discarded, one being cancelled
// is cancelled; each gets an error saying it was rescued at the instance's
// restart. Other instances' running jobs are left to River's rescuer. It
// logs and counts what it did.
func (in *Instance) RescueOrphans(ctx context.Context) (Rescued, error) {
	r, err := rescueOrphans(ctx, in.pool, in.id)
	if err != nil {
		return Rescued{}, fmt.Errorf("queue: take up the jobs instance %s left running: %w", in.id, err)
	}
	in.rescued.WithLabelValues("available").Add(float64(r.Available))
	in.rescued.WithLabelValues("discarded").Add(float64(r.Discarded))
	in.rescued.WithLabelValues("cancelled").Add(float64(r.Cancelled))
	in.logger.InfoContext(ctx, "took up the jobs the previous run of this instance left running", "instance", in.id,
		"available", r.Available, "discarded", r.Discarded, "cancelled", r.Cancelled)
	return r, nil
}
