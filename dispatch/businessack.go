package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// This file holds the business acknowledgements ("accusés métier") the DPI
// asks for with a report's flags: the domain decides which one a DSN or an
// MDN calls for, queues it, sends it through a DPINotifier (the HL7 edge
// says it as a ZAM over MLLP) and keeps the DPI's answer in the delivery's
// history.

// Business acknowledgement events, named as the volet names the ZAM's
// events (MSH-9.2).
const (
	BusinessAckDelivery = "Z02" // accusé de réception MSSanté, from a DSN
	BusinessAckRead     = "Z03" // accusé de lecture MSSanté, from an MDN
)

// Events of the delivery history about business acknowledgements.
const (
	EventBusinessAckSent    Event = "business_ack_sent"    // the DPI accepted it
	EventBusinessAckRefused Event = "business_ack_refused" // the DPI refused it for good
)

// businessAckMaxAttempts bounds the sends of one acknowledgement: with the
// default backoff (one minute doubling to 30 minutes) the DPI may be
// unreachable for about a day before it is given up.
const businessAckMaxAttempts = 50

// ErrUnsendable is wrapped by the error of a DPINotifier that cannot say a
// notice at all: the acknowledgement is given up, not retried.
var ErrUnsendable = errors.New("business acknowledgement cannot be sent")

// DPINotifier sends the DPI one business acknowledgement and reads its
// answer (package hl7intake's Notifier: a ZAM over MLLP). An error (the
// DPI unreachable, silent, or refusing for now) is retried with backoff,
// unless it wraps ErrUnsendable.
type DPINotifier interface {
	NotifyDPI(ctx context.Context, n DPINotice) (DPIAnswer, error)
}

// DPINotice is one business acknowledgement of a delivery: what the DPI
// asked to know, about which message and recipient.
type DPINotice struct {
	DeliveryID int64
	// Event is BusinessAckDelivery or BusinessAckRead.
	Event string
	// Failed says the delivery or the reading failed; Detail is then what
	// the DSN or MDN said ("DSN failed 5.1.1 smtp; 550 …", "MDN … 902 …").
	Failed bool
	Detail string
	// At is when the email was delivered or read, else the delivery's last change.
	At time.Time
	// Address is the recipient's MSSanté address; RecipientID the
	// recipient's id as the DPI gave it (national id, else RPPS), if any.
	Address, RecipientID string
	// SendingApplication, SendingFacility and ControlID are the MSH-3, MSH-4
	// and MSH-10 of the message that carried the report;
	// ReceivingApplication and ReceivingFacility its MSH-5 and MSH-6.
	SendingApplication, SendingFacility, ControlID string
	ReceivingApplication, ReceivingFacility        string
}

// DPIAnswer is what the DPI answered to a notice it took: accepted, or
// refused for good. Detail says it for the delivery's history.
type DPIAnswer struct {
	Refused bool
	Detail  string
}

// BusinessAckArgs is the job that sends the DPI one business acknowledgement
// of a delivery. It is unique per delivery and event for as long as River
// keeps the job (a DPI gets each acknowledgement once); the history of the
// delivery keeps that guarantee after River deleted the finished job.
type BusinessAckArgs struct {
	DeliveryID int64 `json:"delivery_id" river:"unique"`
	// Event is BusinessAckDelivery or BusinessAckRead.
	Event string `json:"event" river:"unique"`
	// Failed makes the acknowledgement say the delivery or the reading
	// failed; Detail is what the DSN or MDN said.
	Failed bool   `json:"failed,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Kind is the River job kind.
func (BusinessAckArgs) Kind() string { return "business_ack" }

// InsertOpts makes the job unique per delivery and event in River's default
// unique states (every state but cancelled and discarded), and gives it many
// attempts: the DPI may be down for hours.
func (BusinessAckArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: businessAckMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// BusinessAckConfig configures the sending of business acknowledgements.
type BusinessAckConfig struct {
	// Pool is the database. Required.
	Pool *pgxpool.Pool
	// Notifier sends them. Nil turns them off: nothing is enqueued (give
	// the Service Enabled()) and a job left from before is cancelled unsent.
	Notifier DPINotifier
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

// Enabled reports whether acknowledgements are sent: the value to give the
// enqueue hook.
func (c BusinessAckConfig) Enabled() bool { return c.Notifier != nil }

// AddBusinessAcks validates cfg and registers the worker of BusinessAckArgs
// (even when acknowledgements are off, so that a job left from before is
// cancelled rather than unknown), and, with a Registerer, the metric
// mssdispatch_business_acks_total{event,result}.
func AddBusinessAcks(workers *river.Workers, cfg BusinessAckConfig) error {
	if cfg.Pool == nil {
		return errors.New("dispatch: BusinessAckConfig.Pool is required")
	}
	if cfg.RetryBackoff < 0 {
		return errors.New("dispatch: BusinessAckConfig.RetryBackoff must not be negative")
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
	for _, event := range []string{BusinessAckDelivery, BusinessAckRead} {
		for _, result := range []string{"accepted", "refused", "retry"} {
			w.acks.WithLabelValues(event, result)
		}
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(w.acks); err != nil {
			return fmt.Errorf("dispatch: register business ack metrics: %w", err)
		}
	}
	if err := river.AddWorkerSafely(workers, w); err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	return nil
}

// businessAcksFor enqueues with ins, in tx, the business acknowledgement the
// DPI asked for about an acknowledgement ack (AckDelivered, AckRead,
// AckFailed) just recorded for delivery deliveryID, whose detail is what the
// DSN or MDN said; on is BusinessAckConfig.Enabled(). It enqueues:
//
//   - on AckDelivered, a Z02 when the report said ACK_RECEPTION=Y and the
//     delivery is delivered (or already read);
//   - on AckRead, a Z03 when it said ACK_LECTURE_MSS=Y and the delivery is read;
//   - on AckFailed of a failed delivery, the Z02 (a DSN) or Z03 (an MDN,
//     detail "MDN …") saying so, with the detail, under the same flags;
//
// and nothing for a paper delivery, a report that did not come as HL7 (the
// REST JSON API), or an acknowledgement the DPI already got or refused.
func businessAcksFor(ctx context.Context, tx pgx.Tx, ins JobInserter, on bool, deliveryID int64, ack, detail string) error {
	if !on {
		return nil
	}
	b, err := loadBusinessAck(ctx, tx, deliveryID)
	if err != nil {
		return err
	}
	if b.Channel != correspondents.ChannelMSSante || !b.FromHL7 {
		return nil
	}
	var args BusinessAckArgs
	switch {
	case ack == AckDelivered && (b.Status == StatusDelivered || b.Status == StatusRead):
		args = BusinessAckArgs{Event: BusinessAckDelivery}
	case ack == AckRead && b.Status == StatusRead:
		args = BusinessAckArgs{Event: BusinessAckRead}
	case ack == AckFailed && b.Status == StatusFailed:
		args = BusinessAckArgs{Event: BusinessAckDelivery, Failed: true, Detail: strings.TrimSpace(detail)}
		if strings.HasPrefix(args.Detail, "MDN") {
			args.Event = BusinessAckRead
		}
	default:
		return nil
	}
	wanted := map[string]bool{BusinessAckDelivery: b.Flags.DeliveryAck, BusinessAckRead: b.Flags.ReadAck}[args.Event]
	if !wanted || slices.Contains(b.Sent, args.Event) || slices.Contains(b.Refused, args.Event) {
		return nil
	}
	args.DeliveryID = deliveryID
	return insertJobs(ctx, tx, ins, []river.InsertManyParams{{Args: args}})
}

type businessAckWorker struct {
	river.WorkerDefaults[BusinessAckArgs]
	cfg  BusinessAckConfig
	acks *prometheus.CounterVec
}

// NextRetry spaces the attempts: RetryBackoff, doubling, at most 30 times it.
func (w *businessAckWorker) NextRetry(job *river.Job[BusinessAckArgs]) time.Time {
	return time.Now().Add(domainBackoff(w.cfg.RetryBackoff, job.Attempt))
}

// Work sends one business acknowledgement through the notifier: accepted,
// it completes the job and is recorded in the delivery's history; refused
// for good, the refusal is recorded and the job cancelled, for the DPI
// would refuse it again; an error is retried with backoff.
func (w *businessAckWorker) Work(ctx context.Context, job *river.Job[BusinessAckArgs]) error {
	a := job.Args
	log := w.cfg.Logger.With("delivery_id", a.DeliveryID, "event", a.Event, "job_id", job.ID)
	if w.cfg.Notifier == nil {
		w.acks.WithLabelValues(a.Event, "off").Inc()
		log.WarnContext(ctx, "business acknowledgements are off (no DPI address): not sent")
		return river.JobCancel(errors.New("business acknowledgements are off: no DPI address"))
	}
	b, err := loadBusinessAck(ctx, w.cfg.Pool, a.DeliveryID)
	if errors.Is(err, ErrNotFound) {
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
	answer, err := w.cfg.Notifier.NotifyDPI(ctx, b.notice(a))
	switch {
	case errors.Is(err, ErrUnsendable):
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
			if err := recordBusinessAck(ctx, tx, a.DeliveryID, EventBusinessAckSent, detail); err != nil {
				return err
			}
			return completeTx(ctx, tx, job)
		}); err != nil {
			return err
		}
		log.InfoContext(ctx, "business acknowledgement accepted by the DPI")
		return nil
	}
	if err := recordBusinessAck(ctx, w.cfg.Pool, a.DeliveryID, EventBusinessAckRefused, detail); err != nil {
		return err
	}
	w.acks.WithLabelValues(a.Event, "refused").Inc()
	log.WarnContext(ctx, "business acknowledgement refused by the DPI, given up")
	return river.JobCancel(fmt.Errorf("%s: refused by the DPI", detail))
}

// notice is the DPINotice of acknowledgement a about delivery b.
func (b storedBusinessAck) notice(a BusinessAckArgs) DPINotice {
	at := b.UpdatedAt
	switch {
	case a.Event == BusinessAckDelivery && b.DeliveredAt != nil && !a.Failed:
		at = *b.DeliveredAt
	case a.Event == BusinessAckRead && b.ReadAt != nil && !a.Failed:
		at = *b.ReadAt
	}
	return DPINotice{DeliveryID: a.DeliveryID, Event: a.Event, Failed: a.Failed, Detail: a.Detail, At: at,
		Address: b.Address, RecipientID: cmp.Or(b.NationalID, b.RPPS),
		SendingApplication: b.SendingApplication, SendingFacility: b.SendingFacility, ControlID: b.ControlID,
		ReceivingApplication: b.ReceivingApplication, ReceivingFacility: b.ReceivingFacility}
}
