package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// serverScope is the mail_domains key of the submission server itself: a
// failure before RCPT TO blocks every send, not one operator's.
const serverScope = "*"

type sendWorker struct {
	river.WorkerDefaults[dispatch.SendArgs]
	cfg         WorkerConfig
	sends       *prometheus.CounterVec
	interrupted prometheus.Counter
	docs        documentCache
}

// Work sends one queued MSSanté delivery, in three steps so that a crash
// never loses it and at most duplicates it once: (1) record the attempt
// (sending_at, attempt count, "sending" event) and commit; (2) hand the email
// to SMTP with the delivery's fixed Message-ID; (3) record "sent" (which
// sets the first acknowledgement deadline, ack_due_at). A job interrupted between (2) and (3) finds
// sending_at set when it runs again: it sends again, with the same
// Message-ID, and counts it (mssdispatch_send_interrupted_total).
//
// A delivery no longer queued is left alone. A permanent failure (documents
// that cannot be packaged, an email that cannot be composed, or one the mail
// server refuses for good) fails the delivery and applies its fallback. A
// temporary failure blocks the recipient's domain (or, before RCPT TO, the
// submission server) for a growing while: this job and the others of that
// domain snooze until then, or until a Prober finds the domain accepting
// again, so that one slow or refusing operator never holds up the others;
// past WorkerConfig.GiveUpAfter in the queue the delivery fails.
func (w *sendWorker) Work(ctx context.Context, job *river.Job[dispatch.SendArgs]) error {
	// Its two CPU-heavy parts, composing and handing to SMTP, each take
	// their turn with the reports being received.
	part := w.cfg.Foreground.Background(ctx, yieldMax)
	defer func() { part() }()
	o, err := loadOutgoing(ctx, w.cfg.Pool, job.Args.DeliveryID)
	if err != nil {
		return err
	}
	if o.Status != dispatch.StatusQueued || o.MessageID != job.Args.MessageID {
		return nil // sent, cancelled, or resent as another email meanwhile
	}
	if _, err := correspondents.ParseMailbox(o.Address); err != nil || !o.Trusted {
		return w.untrusted(ctx, job, o)
	}
	if o.Blocked > 0 {
		return river.JobSnooze(o.Blocked)
	}
	doc, err := w.docs.get(ctx, w.cfg.Pool, o.ReportID)
	if errors.Is(err, ErrUnpackable) {
		return w.fail(ctx, o, fmt.Errorf("delivery %d: %w", o.DeliveryID, err))
	}
	if err != nil {
		return err
	}
	m, err := composeEmail(w.cfg, o, doc, time.Now())
	if err != nil {
		return w.fail(ctx, o, err)
	}
	msg, err := m.Bytes()
	if err != nil {
		return w.fail(ctx, o, err)
	}
	interrupted, err := dispatch.MarkSending(ctx, w.cfg.Pool, o.DeliveryID, o.MessageID)
	if errors.Is(err, dispatch.ErrStale) {
		return nil // cancelled or superseded meanwhile
	}
	if err != nil {
		return err
	}
	if interrupted {
		w.interrupted.Inc()
		w.cfg.Logger.WarnContext(ctx, "previous send attempt was interrupted, sending again with the same Message-ID",
			"delivery_id", o.DeliveryID)
	}
	part()
	part = w.cfg.Foreground.Background(ctx, yieldMax)
	err = w.cfg.Transport.Send(ctx, envelope(m, o.DeliveryID), msg)
	part()
	switch {
	case mail.IsPermanent(err):
		return w.fail(ctx, o, err)
	case err != nil:
		return w.retry(ctx, o, err)
	}
	// The transition to sent also clears the attempt in flight (sending_at),
	// in one statement; River completes the job after it. A crash between
	// the two runs the job again, and it finds the delivery sent.
	if err := dispatch.Transition(ctx, w.cfg.Pool, o.DeliveryID, dispatch.StatusQueued, dispatch.StatusSent, dispatch.EventSent, dispatch.SystemActor, o.MessageID); err != nil {
		return err
	}
	if o.Failures { // none on record when loaded: nothing to forget (most sends)
		if err := unblock(ctx, w.cfg.Pool, o.Domain); err != nil {
			return err
		}
	}
	w.sends.WithLabelValues("sent").Inc()
	w.cfg.Logger.InfoContext(ctx, "delivery sent", "delivery_id", o.DeliveryID, "bytes", len(msg))
	return nil
}

// untrusted puts back in review, unsent, an email whose address is not in the
// MSSanté trust space now (the whitelist changed since the delivery was
// decided, an address from before it was checked) or not a mailbox: patient
// data never leaves the trust space, whoever approved the email. The
// address is taken off the delivery (its history keeps it): a secretary
// chooses a trusted one or paper.
func (w *sendWorker) untrusted(ctx context.Context, job *river.Job[dispatch.SendArgs], o outgoing) error {
	w.sends.WithLabelValues("untrusted").Inc()
	w.cfg.Logger.WarnContext(ctx, "delivery not sent: its address is outside the trust space", "delivery_id", o.DeliveryID)
	text := fmt.Sprintf("L'adresse %s n'était pas dans l'espace de confiance MSSanté au moment de l'envoi : rien n'a été envoyé. "+
		"Choisissez une adresse de l'annuaire, ou envoyez par courrier.", o.Address)
	return pgx.BeginFunc(ctx, w.cfg.Pool, func(tx pgx.Tx) error {
		if err := dispatch.Transition(ctx, tx, o.DeliveryID, dispatch.StatusQueued, dispatch.StatusReview, dispatch.EventUntrusted, dispatch.SystemActor, o.Address); err != nil {
			return err
		}
		if err := dispatch.WithdrawAddress(ctx, tx, o.DeliveryID, correspondents.ReasonUntrustedAddress, text); err != nil {
			return err
		}
		return completeTx(ctx, tx, job)
	})
}

// retry records a temporary failure and snoozes the job while the domain is
// blocked, or fails the delivery when it has waited too long.
func (w *sendWorker) retry(ctx context.Context, o outgoing, cause error) error {
	scope := serverScope
	if mail.IsRecipientError(cause) {
		scope = o.Domain
	}
	if time.Since(o.QueuedAt) > w.cfg.GiveUpAfter {
		return w.fail(ctx, o, fmt.Errorf("temporary failures for %s, giving up: %w", w.cfg.GiveUpAfter, cause))
	}
	w.sends.WithLabelValues("retry").Inc()
	var wait time.Duration
	err := pgx.BeginFunc(ctx, w.cfg.Pool, func(tx pgx.Tx) error {
		var err error
		if wait, err = block(ctx, tx, scope, cause.Error(), w.cfg.RetryBackoff); err != nil {
			return err
		}
		if err := dispatch.ClearSending(ctx, tx, o.DeliveryID); err != nil {
			return err
		}
		if err := dispatch.RecordDeliveryError(ctx, tx, o.DeliveryID, cause.Error()); err != nil {
			return err
		}
		return dispatch.InsertEvent(ctx, tx, o.DeliveryID, dispatch.StatusQueued, dispatch.StatusQueued, dispatch.EventRetry, dispatch.SystemActor,
			fmt.Sprintf("%s (nouvel essai dans %s)", cause, wait.Round(time.Second)))
	})
	if err != nil {
		return errors.Join(cause, err)
	}
	w.cfg.Logger.WarnContext(ctx, "send failed, will retry", "delivery_id", o.DeliveryID, "scope", scope,
		"wait", wait.Round(time.Second), "error", redact.Text(cause.Error()))
	return river.JobSnooze(wait)
}

// fail fails the delivery for good, enqueues its fallback and cancels the job.
func (w *sendWorker) fail(ctx context.Context, o outgoing, cause error) error {
	w.sends.WithLabelValues("failed").Inc()
	w.cfg.Logger.WarnContext(ctx, "delivery failed", "delivery_id", o.DeliveryID, "error", redact.Text(cause.Error()))
	ins, err := workerJobs(ctx)
	if err != nil {
		return errors.Join(cause, err)
	}
	err = pgx.BeginFunc(ctx, w.cfg.Pool, func(tx pgx.Tx) error {
		return dispatch.FailDelivery(ctx, tx, o.DeliveryID, dispatch.StatusQueued, dispatch.EventFailed, cause.Error(), dispatch.CauseFailed, ins)
	})
	if err != nil && !errors.Is(err, dispatch.ErrStale) {
		return errors.Join(cause, err)
	}
	return river.JobCancel(cause)
}

// envelope is the SMTP envelope of m: the BAL applicative to m's one
// recipient, with the delivery's id as ENVID so that its DSNs find it.
func envelope(m mail.Message, deliveryID int64) mail.Envelope {
	return mail.Envelope{From: m.From, To: m.To, EnvelopeID: mail.EnvelopeID(deliveryID)}
}

// domainBackoff is how long a domain (or the server) is blocked after n
// consecutive temporary failures: base, doubling, at most 30 times base.
func domainBackoff(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < 30*base; i++ {
		d *= 2
	}
	return min(d, 30*base)
}
