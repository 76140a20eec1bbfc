package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// This file holds the worker of the business acknowledgements the domain
// queues (dispatch.BusinessAckArgs): it sends each through the
// dispatch.DPINotifier and records the DPI's answer in the delivery's history.

// BusinessAckConfig configures the sending of business acknowledgements.
type BusinessAckConfig struct {
	// Pool is the database. Required.
	Pool *pgxpool.Pool
	// Notifier sends them. Nil turns them off: nothing is enqueued
	// (dispatch.ServiceConfig.BusinessAcks is false, as Install derives it)
	// and a job left from before is cancelled unsent.
	Notifier dispatch.DPINotifier
	// RetryBackoff is the wait before the second attempt after a network
	// failure or no answer; it doubles with each further one, up to 30 times
	// itself. Defaults to one minute (so at most 30 minutes).
	RetryBackoff time.Duration
	// Registerer receives the metric mssdispatch_business_acks_total; nil
	// registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// AddBusinessAcks validates cfg and registers the worker of dispatch.BusinessAckArgs
// (even when acknowledgements are off, so that a job left from before is
// cancelled rather than unknown), and, with a Registerer, the metric
// mssdispatch_business_acks_total{event,result}.
func AddBusinessAcks(workers *river.Workers, cfg BusinessAckConfig) error {
	if cfg.Pool == nil {
		return errors.New("worker: BusinessAckConfig.Pool is required")
	}
	if cfg.RetryBackoff < 0 {
		return errors.New("worker: BusinessAckConfig.RetryBackoff must not be negative")
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &businessAckWorker{cfg: cfg}
	w.acks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mssdispatch_business_acks_total",
		Help: "Business acknowledgements (ZAM) to the DPI by event (Z02, Z03) and result " +
			"(accepted, refused, retry, off, invalid, duplicate).",
	}, []string{"event", "result"})
	for _, event := range []string{dispatch.BusinessAckDelivery, dispatch.BusinessAckRead} {
		for _, result := range []string{"accepted", "refused", "retry"} {
			w.acks.WithLabelValues(event, result)
		}
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(w.acks); err != nil {
			return fmt.Errorf("worker: register business ack metrics: %w", err)
		}
	}
	if err := river.AddWorkerSafely(workers, w); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	return nil
}

type businessAckWorker struct {
	river.WorkerDefaults[dispatch.BusinessAckArgs]
	cfg  BusinessAckConfig
	acks *prometheus.CounterVec
}

// NextRetry spaces the attempts: RetryBackoff, doubling, at most 30 times it.
func (w *businessAckWorker) NextRetry(job *river.Job[dispatch.BusinessAckArgs]) time.Time {
	return time.Now().Add(domainBackoff(w.cfg.RetryBackoff, job.Attempt))
}

// Work sends one business acknowledgement through the notifier: accepted,
// it completes the job and is recorded in the delivery's history; refused
// for good, the refusal is recorded and the job cancelled, for the DPI
// would refuse it again; an error is retried with backoff.
func (w *businessAckWorker) Work(ctx context.Context, job *river.Job[dispatch.BusinessAckArgs]) error {
	a := job.Args
	log := w.cfg.Logger.With("delivery_id", a.DeliveryID, "event", a.Event, "job_id", job.ID)
	if w.cfg.Notifier == nil {
		w.acks.WithLabelValues(a.Event, "off").Inc()
		log.WarnContext(ctx, "business acknowledgements are off (no DPI address): not sent")
		return river.JobCancel(errors.New("business acknowledgements are off: no DPI address"))
	}
	b, err := dispatch.LoadBusinessAck(ctx, w.cfg.Pool, a.DeliveryID)
	if errors.Is(err, dispatch.ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if slices.Contains(b.Sent, a.Event) {
		w.acks.WithLabelValues(a.Event, "duplicate").Inc()
		log.InfoContext(ctx, "business acknowledgement already accepted by the DPI: not sent again")
		return nil
	}
	answer, err := w.cfg.Notifier.NotifyDPI(ctx, notice(b, a))
	switch {
	case errors.Is(err, dispatch.ErrUnsendable):
		w.acks.WithLabelValues(a.Event, "invalid").Inc()
		log.ErrorContext(ctx, "business acknowledgement cannot be sent", "error", redact.Text(err.Error()))
		return river.JobCancel(err)
	case err != nil:
		w.acks.WithLabelValues(a.Event, "retry").Inc()
		log.WarnContext(ctx, "business acknowledgement not accepted by the DPI, will retry",
			"attempt", job.Attempt, "error", redact.Text(err.Error()))
		return err
	}
	detail := fmt.Sprintf("ZAM^%s %s", a.Event, answer.Detail)
	if !answer.Refused {
		// Counted before the job completes (what a test or a scrape sees
		// next): the DPI accepted it, whatever the recording below.
		w.acks.WithLabelValues(a.Event, "accepted").Inc()
		if err := pgx.BeginFunc(ctx, w.cfg.Pool, func(tx pgx.Tx) error {
			if err := dispatch.RecordBusinessAck(ctx, tx, a.DeliveryID, dispatch.EventBusinessAckSent, detail); err != nil {
				return err
			}
			return completeTx(ctx, tx, job)
		}); err != nil {
			return err
		}
		log.InfoContext(ctx, "business acknowledgement accepted by the DPI")
		return nil
	}
	if err := dispatch.RecordBusinessAck(ctx, w.cfg.Pool, a.DeliveryID, dispatch.EventBusinessAckRefused, detail); err != nil {
		return err
	}
	w.acks.WithLabelValues(a.Event, "refused").Inc()
	log.WarnContext(ctx, "business acknowledgement refused by the DPI, given up")
	return river.JobCancel(fmt.Errorf("%s: refused by the DPI", detail))
}

// notice is the DPINotice of acknowledgement a about delivery b.
func notice(b dispatch.StoredBusinessAck, a dispatch.BusinessAckArgs) dispatch.DPINotice {
	at := b.UpdatedAt
	switch {
	case a.Event == dispatch.BusinessAckDelivery && b.DeliveredAt != nil && !a.Failed:
		at = *b.DeliveredAt
	case a.Event == dispatch.BusinessAckRead && b.ReadAt != nil && !a.Failed:
		at = *b.ReadAt
	}
	return dispatch.DPINotice{DeliveryID: a.DeliveryID, Event: a.Event, Failed: a.Failed, Detail: a.Detail, At: at,
		Address: b.Address, RecipientID: cmp.Or(b.NationalID, b.RPPS),
		SendingApplication: b.SendingApplication, SendingFacility: b.SendingFacility, ControlID: b.ControlID,
		ReceivingApplication: b.ReceivingApplication, ReceivingFacility: b.ReceivingFacility}
}
