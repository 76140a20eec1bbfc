package worker

import (
	"errors"

	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/retention"
	"github.com/mssdispatch/mssdispatch/queue"
)

// watchdogCron is when the acknowledgement watchdog sweeps the deadlines
// come: every minute, one indexed read when none has.
const watchdogCron = "* * * * *"

// Config is the domain of a process, given once: its workers (resolve,
// send, follow up, business acknowledgements, retention), their periodic
// jobs and the Service. What several parts share is set once (Workers'
// Pool, Resolver, Sender, Registerer and Logger serve them all), and what
// one part implies of another is derived, not repeated: the Service
// enqueues business acknowledgements exactly when there is a Notifier.
type Config struct {
	// Workers configures resolving and sending; its Pool, Resolver,
	// Sender, Registerer and Logger are the whole domain's. Required.
	Workers WorkerConfig
	// Notifier sends the DPI the business acknowledgements it asks for;
	// nil turns them off (a job left from before is cancelled unsent).
	Notifier dispatch.DPINotifier
	// Custodian is the hospital, custodian of the CDA built around a report
	// sent as a bare PDF.
	Custodian dispatch.Organisation
	// Retention configures the purge (its Pool, Registerer and Logger are
	// Workers'); RetentionCron is when it runs, required.
	Retention     retention.Config
	RetentionCron string
}

// Domain is the domain registered with a process's River workers.
type Domain struct {
	cfg    Config
	prober *Prober
}

// Install validates cfg and registers every worker of the domain with
// workers: the one call that wires the domain into a process (the Add…
// functions register one part, for tests). The Service comes once the
// queue is built from workers (Domain.Service), with the periodic jobs
// (Domain.Periodic) and the prober of the blocked scopes (Domain.Prober).
func Install(workers *river.Workers, cfg Config) (*Domain, error) {
	cfg.Workers.Foreground = &queue.Foreground{} // the Service's receipts, which the jobs yield to
	w := cfg.Workers
	if cfg.RetentionCron == "" {
		return nil, errors.New("worker: Config.RetentionCron is required")
	}
	if err := AddWorkers(workers, w); err != nil {
		return nil, err
	}
	err := AddBusinessAcks(workers, BusinessAckConfig{Pool: w.Pool, Notifier: cfg.Notifier,
		Registerer: w.Registerer, Logger: w.Logger})
	if err != nil {
		return nil, err
	}
	r := cfg.Retention
	r.Pool, r.Registerer, r.Logger = w.Pool, w.Registerer, w.Logger
	if err := retention.AddPurge(workers, r); err != nil {
		return nil, err
	}
	prober, err := NewProber(w)
	if err != nil {
		return nil, err
	}
	return &Domain{cfg: cfg, prober: prober}, nil
}

// Prober returns the prober of the scopes the send job blocks, which the
// process runs beside its River client (Prober.Run).
func (d *Domain) Prober() *Prober { return d.prober }

// Periodic returns the domain's periodic jobs: the retention purge and the
// acknowledgement watchdog.
func (d *Domain) Periodic() []queue.Periodic {
	return []queue.Periodic{
		{Spec: d.cfg.RetentionCron, Args: func() river.JobArgs { return retention.PurgeArgs{} }},
		{Spec: watchdogCron, Args: func() river.JobArgs { return WatchdogArgs{} }},
	}
}

// Service returns the domain's Service, which enqueues its jobs with jobs
// (the River client built with the workers Install registered).
func (d *Domain) Service(jobs dispatch.JobInserter) (*dispatch.Service, error) {
	w := d.cfg.Workers
	return dispatch.NewService(dispatch.ServiceConfig{Pool: w.Pool, Jobs: jobs, Custodian: d.cfg.Custodian,
		BusinessAcks: d.cfg.Notifier != nil, Foreground: w.Foreground, Logger: w.Logger})
}
