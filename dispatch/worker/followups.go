package worker

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/queue"
	"github.com/mssdispatch/mssdispatch/rules"
)

// This file holds the jobs that follow a delivery after its creation: the
// release of a delayed one, the acknowledgement deadlines of a sent one, and
// the fallback of a failed one.

// Deadlines of a sent email.
const (
	DeadlineDSN  = "dsn"  // a delivery notification is due
	DeadlineRead = "read" // a read notification is due
)

// DeadlineArgs is the job that applies an acknowledgement deadline passed
// (the watchdog enqueues it when it sweeps the delivery's ack_due_at): an
// email still unacknowledged gets the fallback of its rule.
type DeadlineArgs struct {
	DeliveryID int64  `json:"delivery_id"`
	Deadline   string `json:"deadline"` // DeadlineDSN or DeadlineRead
}

// Kind is the River job kind.
func (DeadlineArgs) Kind() string { return "ack_deadline" }

// InsertOpts makes the job unique per delivery and deadline.
func (DeadlineArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: queue.ActiveStates}}
}

// FollowUp is the delivery and the name of the deadline job (dispatch.FollowUpJob).
func (a DeadlineArgs) FollowUp() (int64, string) { return a.DeliveryID, a.Kind() + ":" + a.Deadline }

// WatchdogArgs is the periodic job that sweeps the acknowledgement
// deadlines come (deliveries.ack_due_at, set when an email is sent) and
// enqueues the DeadlineArgs of each one passed that still applies: one
// indexed read a minute instead of a job per deadline and email.
type WatchdogArgs struct{}

// Kind is the River job kind.
func (WatchdogArgs) Kind() string { return "ack_watchdog" }

// InsertOpts allows one watchdog at a time.
func (WatchdogArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByState: queue.ActiveStates}}
}

// onFollowUp is onDelivery for a follow-up job (dispatch.FollowUpJob): the
// transaction that makes its change and completes it also takes it off its
// delivery's follow-ups (deliveries.follow_ups), where dispatch.InsertJobs
// put it in the transaction that enqueued it.
func onFollowUp[T dispatch.FollowUpJob](ctx context.Context, pool *pgxpool.Pool, job *river.Job[T],
	change func(pgx.Tx, dispatch.StoredDelivery) error) error {
	id, name := job.Args.FollowUp()
	return onDelivery(ctx, pool, job, id, func(tx pgx.Tx, d dispatch.StoredDelivery) error {
		if err := change(tx, d); err != nil {
			return err
		}
		// After the change: a job it enqueued under the same name (none
		// does) would have been skipped as a duplicate of this one.
		return dispatch.FollowUpDone(ctx, tx, id, name)
	})
}

type releaseWorker struct {
	river.WorkerDefaults[dispatch.ReleaseArgs]
	cfg    WorkerConfig
	domain string
}

// Work moves a scheduled delivery to queued (with its send job) or to
// paper_pending; anything else (a secretary acted first) is left alone.
func (w *releaseWorker) Work(ctx context.Context, job *river.Job[dispatch.ReleaseArgs]) error {
	ins, err := workerJobs(ctx)
	if err != nil {
		return err
	}
	return onDelivery(ctx, w.cfg.Pool, job, job.Args.DeliveryID, func(tx pgx.Tx, d dispatch.StoredDelivery) error {
		if d.Status != dispatch.StatusScheduled {
			return nil
		}
		return dispatch.Release(ctx, tx, ins, d, dispatch.EventReleased, dispatch.SystemActor, "fin du délai de la règle")
	})
}

// onDelivery is dispatch.WithDelivery for a job: the transaction that makes
// the change also completes job, so that the job is done exactly when its
// change is.
func onDelivery[T river.JobArgs](ctx context.Context, pool *pgxpool.Pool, job *river.Job[T], id int64,
	change func(pgx.Tx, dispatch.StoredDelivery) error) error {
	return dispatch.WithDelivery(ctx, pool, id, func(tx pgx.Tx, d dispatch.StoredDelivery) error {
		if err := change(tx, d); err != nil {
			return err
		}
		return completeTx(ctx, tx, job)
	})
}

type deadlineWorker struct {
	river.WorkerDefaults[DeadlineArgs]
	cfg WorkerConfig
}

// Work applies a passed deadline: an email still only sent fails (no DSN),
// an email sent or delivered but not read is flagged unread; both get the
// fallback of their policy. An acknowledged email is left alone.
func (w *deadlineWorker) Work(ctx context.Context, job *river.Job[DeadlineArgs]) error {
	ins, err := workerJobs(ctx)
	if err != nil {
		return err
	}
	return onFollowUp(ctx, w.cfg.Pool, job, func(tx pgx.Tx, d dispatch.StoredDelivery) error {
		switch {
		case job.Args.Deadline == DeadlineDSN && d.Status == dispatch.StatusSent:
			detail := fmt.Sprintf("pas d'accusé de réception %d h après l'envoi", d.Policy.NoDSNHours)
			return dispatch.FailDelivery(ctx, tx, d.ID, dispatch.StatusSent, dispatch.EventNoDSN, detail, dispatch.CauseNoDSN, ins)
		case job.Args.Deadline == DeadlineRead && (d.Status == dispatch.StatusSent || d.Status == dispatch.StatusDelivered):
			detail := fmt.Sprintf("pas d'accusé de lecture %d h après l'envoi", d.Policy.UnreadHours)
			if err := dispatch.SetAttention(ctx, tx, d.ID, dispatch.CauseUnread); err != nil {
				return err
			}
			if err := dispatch.InsertEvent(ctx, tx, d.ID, d.Status, d.Status, dispatch.EventUnread, dispatch.SystemActor, detail); err != nil {
				return err
			}
			return dispatch.InsertJobs(ctx, tx, ins,
				[]river.InsertManyParams{{Args: dispatch.FallbackArgs{DeliveryID: d.ID, Cause: dispatch.CauseUnread}}})
		}
		return nil
	})
}

type fallbackWorker struct {
	river.WorkerDefaults[dispatch.FallbackArgs]
	cfg WorkerConfig
}

// Work applies the fallback of a delivery's policy for the cause: paper
// creates a paper delivery for the same recipient (paper_pending with a
// postal address, else review), unless the recipient has one already;
// worklist leaves it to the secretaries' worklist. Either way the history of
// the delivery says so.
func (w *fallbackWorker) Work(ctx context.Context, job *river.Job[dispatch.FallbackArgs]) error {
	return onFollowUp(ctx, w.cfg.Pool, job, func(tx pgx.Tx, d dispatch.StoredDelivery) error {
		action := fallbackAction(d.Policy, job.Args.Cause)
		detail := "liste des échecs à traiter"
		if action == rules.FallbackPaper {
			paper := dispatch.NewDelivery{RecipientID: d.RecipientID, Channel: correspondents.ChannelPaper, Status: dispatch.StatusPaperPending,
				Name: d.Name, PostalAddress: d.PostalAddress, Reason: dispatch.ReasonFallbackPaper,
				ReasonText: "Envoi papier de secours: " + causeText[job.Args.Cause] + ".",
				RuleName:   d.RuleName, RuleVersion: d.RuleVersion, Policy: d.Policy, FallbackOf: d.ID}
			if !d.PostalAddress.Known() {
				paper.Status = dispatch.StatusReview
				paper.ReasonText += " Adresse postale inconnue: à compléter."
			}
			id, created, err := dispatch.InsertDelivery(ctx, tx, d.ReportID, paper, dispatch.RuleActor(rules.Rule{Name: d.RuleName}))
			switch {
			case err != nil:
				return err
			case created:
				detail = fmt.Sprintf("envoi papier créé (%d)", id)
			default:
				detail = "le destinataire a déjà un envoi papier"
			}
		}
		return dispatch.InsertEvent(ctx, tx, d.ID, d.Status, d.Status, dispatch.EventFallback, dispatch.RuleActor(rules.Rule{Name: d.RuleName}),
			causeText[job.Args.Cause]+": "+detail)
	})
}

// causeText says each cause of a fallback to a secretary.
var causeText = map[string]string{
	dispatch.CauseFailed: "échec de l'envoi MSSanté",
	dispatch.CauseNoDSN:  "pas d'accusé de réception MSSanté",
	dispatch.CauseUnread: "pas d'accusé de lecture MSSanté",
}

// fallbackAction is the fallback p applies for cause.
func fallbackAction(p dispatch.Policy, cause string) string {
	a := p.OnFailure
	switch cause {
	case dispatch.CauseNoDSN:
		a = p.NoDSNAction
	case dispatch.CauseUnread:
		a = p.UnreadAction
	}
	if a == "" {
		return rules.FallbackWorklist
	}
	return a
}

// completeTx completes job in tx, with the changes it made.
func completeTx[T river.JobArgs](ctx context.Context, tx pgx.Tx, job *river.Job[T]) error {
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
		return fmt.Errorf("complete %s job: %w", job.Kind, err)
	}
	return nil
}

type watchdogWorker struct {
	river.WorkerDefaults[WatchdogArgs]
	cfg WorkerConfig
}

// sweepBatch is how many deliveries one transaction of the watchdog takes.
const sweepBatch = 500

// Work sweeps the acknowledgement deadlines that have come
// (sweepDeadlines): it enqueues the ack_deadline job of each one passed that
// still applies (unique: one already waiting, enqueued with an email sent by
// a version from before the sweep, is not doubled), a batch at a time, each
// batch in one transaction, the last one with the job's completion.
func (w *watchdogWorker) Work(ctx context.Context, job *river.Job[WatchdogArgs]) error {
	ins, err := workerJobs(ctx)
	if err != nil {
		return err
	}
	for {
		var jobs []river.InsertManyParams
		full := false
		err := pgx.BeginFunc(ctx, w.cfg.Pool, func(tx pgx.Tx) error {
			due, swept, err := sweepDeadlines(ctx, tx, sweepBatch)
			if err != nil {
				return err
			}
			for _, d := range due {
				jobs = append(jobs, river.InsertManyParams{Args: d})
			}
			if err := dispatch.InsertJobs(ctx, tx, ins, jobs); err != nil {
				return err
			}
			if full = swept == sweepBatch; full {
				return nil
			}
			return completeTx(ctx, tx, job)
		})
		if err != nil {
			return err
		}
		if len(jobs) > 0 {
			w.cfg.Logger.InfoContext(ctx, "acknowledgement deadlines enqueued", "count", len(jobs))
		}
		if !full {
			return nil
		}
	}
}
