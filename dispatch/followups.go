package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/queue"
	"github.com/mssdispatch/mssdispatch/rules"
)

// This file holds the jobs that follow a delivery after its creation: the
// release of a delayed one, the acknowledgement deadlines of a sent one, and
// the fallback of a failed one.

// ReleaseArgs is the job that releases a scheduled delivery when the delay
// of its rule ends.
type ReleaseArgs struct {
	DeliveryID int64 `json:"delivery_id"`
}

// Kind is the River job kind.
func (ReleaseArgs) Kind() string { return "release_delivery" }

// InsertOpts makes the job unique per delivery.
func (ReleaseArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: queue.ActiveStates}}
}

// Deadlines of a sent email.
const (
	DeadlineDSN  = "dsn"  // a delivery notification is due
	DeadlineRead = "read" // a read notification is due
)

// DeadlineArgs is the job that checks, when a deadline of its rule passes,
// that a sent email was acknowledged, and applies the fallback if not.
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

// Causes of a fallback.
const (
	CauseFailed = "failed" // the email failed for good
	CauseNoDSN  = "no_dsn" // no delivery notification in time
	CauseUnread = "unread" // no read notification in time
)

// FallbackArgs is the job that applies the fallback policy of a delivery.
type FallbackArgs struct {
	DeliveryID int64  `json:"delivery_id"`
	Cause      string `json:"cause"` // CauseFailed, CauseNoDSN or CauseUnread
}

// Kind is the River job kind.
func (FallbackArgs) Kind() string { return "delivery_fallback" }

// InsertOpts makes the job unique per delivery and cause while it waits (a
// later failure of the same delivery, after a resend, gets its own).
func (FallbackArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: queue.ActiveStates}}
}

// followUpJob is a job that may yet give a delivery a paper fallback that
// prints its document: an acknowledgement deadline, a fallback. Each is
// unique per delivery and name while it waits or runs.
type followUpJob interface {
	river.JobArgs
	// followUp returns the job's delivery and its name among the
	// delivery's follow-ups: its kind and what else makes it unique.
	followUp() (deliveryID int64, name string)
}

func (a DeadlineArgs) followUp() (int64, string) { return a.DeliveryID, a.Kind() + ":" + a.Deadline }

func (a FallbackArgs) followUp() (int64, string) { return a.DeliveryID, a.Kind() + ":" + a.Cause }

// onFollowUp is onDelivery for a follow-up job: the transaction that makes
// its change and completes it also takes it off its delivery's follow-ups
// (deliveries.follow_ups), where insertJobs put it in the transaction that
// enqueued it. A delivery has a follow-up there exactly while the job has
// not run (it waits, runs, or was cancelled or discarded: River's UI may
// retry it), which keeps its document from the retention job.
func onFollowUp[T followUpJob](ctx context.Context, pool *pgxpool.Pool, job *river.Job[T],
	change func(pgx.Tx, storedDelivery) error) error {
	id, name := job.Args.followUp()
	return onDelivery(ctx, pool, job, id, func(tx pgx.Tx, d storedDelivery) error {
		if err := change(tx, d); err != nil {
			return err
		}
		// After the change: a job it enqueued under the same name (none
		// does) would have been skipped as a duplicate of this one.
		return followUpDone(ctx, tx, id, name)
	})
}

// deadlines are the deadline jobs of an email just sent, from its policy.
func deadlines(o outgoing, sentAt time.Time) []river.InsertManyParams {
	var jobs []river.InsertManyParams
	for _, d := range []struct {
		name  string
		hours int
	}{{DeadlineDSN, o.Policy.NoDSNHours}, {DeadlineRead, o.Policy.UnreadHours}} {
		if d.hours > 0 {
			jobs = append(jobs, river.InsertManyParams{Args: DeadlineArgs{DeliveryID: o.DeliveryID, Deadline: d.name},
				InsertOpts: &river.InsertOpts{ScheduledAt: sentAt.Add(time.Duration(d.hours) * time.Hour)}})
		}
	}
	return jobs
}

type releaseWorker struct {
	river.WorkerDefaults[ReleaseArgs]
	cfg    WorkerConfig
	domain string
}

// Work moves a scheduled delivery to queued (with its send job) or to
// paper_pending; anything else (a secretary acted first) is left alone.
func (w *releaseWorker) Work(ctx context.Context, job *river.Job[ReleaseArgs]) error {
	ins, err := workerJobs(ctx)
	if err != nil {
		return err
	}
	return onDelivery(ctx, w.cfg.Pool, job, job.Args.DeliveryID, func(tx pgx.Tx, d storedDelivery) error {
		if d.Status != StatusScheduled {
			return nil
		}
		return release(ctx, tx, ins, d, EventReleased, actorSystem, "fin du délai de la règle")
	})
}

// onDelivery is withDelivery for a job: the transaction that makes the
// change also completes job, so that the job is done exactly when its change is.
func onDelivery[T river.JobArgs](ctx context.Context, pool *pgxpool.Pool, job *river.Job[T], id int64,
	change func(pgx.Tx, storedDelivery) error) error {
	return withDelivery(ctx, pool, id, func(tx pgx.Tx, d storedDelivery) error {
		if err := change(tx, d); err != nil {
			return err
		}
		return completeTx(ctx, tx, job)
	})
}

// release sends a scheduled or reviewed delivery on its way: queued with a
// send job inserted with ins (an MSSanté delivery with an address), or paper_pending.
func release(ctx context.Context, tx pgx.Tx, ins JobInserter, d storedDelivery, event Event, actor Actor, detail string) error {
	if d.Channel == correspondents.ChannelMSSante {
		if d.Address == "" {
			return fmt.Errorf("delivery %d has no MSSanté address: %w", d.ID, ErrNoAddress)
		}
		if err := transition(ctx, tx, d.ID, d.Status, StatusQueued, event, actor, detail); err != nil {
			return err
		}
		return insertJobs(ctx, tx, ins, []river.InsertManyParams{{Args: SendArgs{DeliveryID: d.ID, MessageID: d.MessageID}}})
	}
	if !d.PostalAddress.Known() {
		return fmt.Errorf("delivery %d has no postal address: %w", d.ID, ErrNoAddress)
	}
	return transition(ctx, tx, d.ID, d.Status, StatusPaperPending, event, actor, detail)
}

// ErrNoAddress is returned when a delivery cannot go out for want of an
// address (MSSanté, or postal for paper).
var ErrNoAddress = errors.New("no address to send to")

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
	return onFollowUp(ctx, w.cfg.Pool, job, func(tx pgx.Tx, d storedDelivery) error {
		switch {
		case job.Args.Deadline == DeadlineDSN && d.Status == StatusSent:
			detail := fmt.Sprintf("pas d'accusé de réception %d h après l'envoi", d.Policy.NoDSNHours)
			return failDelivery(ctx, tx, d.ID, StatusSent, EventNoDSN, detail, CauseNoDSN, ins)
		case job.Args.Deadline == DeadlineRead && (d.Status == StatusSent || d.Status == StatusDelivered):
			detail := fmt.Sprintf("pas d'accusé de lecture %d h après l'envoi", d.Policy.UnreadHours)
			if err := setAttention(ctx, tx, d.ID, CauseUnread); err != nil {
				return err
			}
			if err := insertEvent(ctx, tx, d.ID, d.Status, d.Status, EventUnread, actorSystem, detail); err != nil {
				return err
			}
			return insertJobs(ctx, tx, ins, []river.InsertManyParams{{Args: FallbackArgs{DeliveryID: d.ID, Cause: CauseUnread}}})
		}
		return nil
	})
}

type fallbackWorker struct {
	river.WorkerDefaults[FallbackArgs]
	cfg WorkerConfig
}

// Work applies the fallback of a delivery's policy for the cause: paper
// creates a paper delivery for the same recipient (paper_pending with a
// postal address, else review), unless the recipient has one already;
// worklist leaves it to the secretaries' worklist. Either way the history of
// the delivery says so.
func (w *fallbackWorker) Work(ctx context.Context, job *river.Job[FallbackArgs]) error {
	return onFollowUp(ctx, w.cfg.Pool, job, func(tx pgx.Tx, d storedDelivery) error {
		action := d.Policy.action(job.Args.Cause)
		detail := "liste des échecs à traiter"
		if action == rules.FallbackPaper {
			paper := newDelivery{RecipientID: d.RecipientID, Channel: correspondents.ChannelPaper, Status: StatusPaperPending,
				Name: d.Name, PostalAddress: d.PostalAddress, Reason: ReasonFallbackPaper,
				ReasonText: "Envoi papier de secours: " + causeText[job.Args.Cause] + ".",
				RuleName:   d.RuleName, RuleVersion: d.RuleVersion, Policy: d.Policy, FallbackOf: d.ID}
			if !d.PostalAddress.Known() {
				paper.Status = StatusReview
				paper.ReasonText += " Adresse postale inconnue: à compléter."
			}
			id, created, err := insertDelivery(ctx, tx, d.ReportID, paper, actorRule(rules.Rule{Name: d.RuleName}))
			switch {
			case err != nil:
				return err
			case created:
				detail = fmt.Sprintf("envoi papier créé (%d)", id)
			default:
				detail = "le destinataire a déjà un envoi papier"
			}
		}
		return insertEvent(ctx, tx, d.ID, d.Status, d.Status, EventFallback, actorRule(rules.Rule{Name: d.RuleName}),
			causeText[job.Args.Cause]+": "+detail)
	})
}

// ReasonFallbackPaper is the reason of a paper delivery created by a fallback.
const ReasonFallbackPaper correspondents.Reason = "fallback_paper"

// causeText says each cause of a fallback to a secretary.
var causeText = map[string]string{
	CauseFailed: "échec de l'envoi MSSanté",
	CauseNoDSN:  "pas d'accusé de réception MSSanté",
	CauseUnread: "pas d'accusé de lecture MSSanté",
}

// action is the fallback p applies for cause.
func (p Policy) action(cause string) string {
	a := p.OnFailure
	switch cause {
	case CauseNoDSN:
		a = p.NoDSNAction
	case CauseUnread:
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

// WatchdogArgs is the periodic job that finds the sent emails past a
// deadline of their rule whose deadline job is missing (the rule changed,
// a job was lost) and enqueues it: a safety net under DeadlineArgs.
type WatchdogArgs struct{}

// Kind is the River job kind.
func (WatchdogArgs) Kind() string { return "ack_watchdog" }

// InsertOpts allows one watchdog at a time.
func (WatchdogArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByState: queue.ActiveStates}}
}

type watchdogWorker struct {
	river.WorkerDefaults[WatchdogArgs]
	cfg WorkerConfig
}

// Work enqueues the overdue deadline jobs (unique: one already waiting is
// not doubled) and completes in the same transaction.
func (w *watchdogWorker) Work(ctx context.Context, job *river.Job[WatchdogArgs]) error {
	ins, err := workerJobs(ctx)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, w.cfg.Pool, func(tx pgx.Tx) error {
		overdue, err := overdueDeadlines(ctx, tx)
		if err != nil {
			return err
		}
		var jobs []river.InsertManyParams
		for _, d := range overdue {
			jobs = append(jobs, river.InsertManyParams{Args: d})
		}
		if err := insertJobs(ctx, tx, ins, jobs); err != nil {
			return err
		}
		if len(jobs) > 0 {
			w.cfg.Logger.InfoContext(ctx, "acknowledgement deadlines enqueued by the watchdog", "count", len(jobs))
		}
		return completeTx(ctx, tx, job)
	})
}
