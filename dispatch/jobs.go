package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/queue"
)

// This file holds the jobs the domain declares, their args, kinds and
// insert options (package dispatch/worker does them), and the changes of a
// delivery that enqueue them, which the Service and the workers share.

// ResolveArgs is the job that turns a report's recipients without a
// delivery into deliveries.
type ResolveArgs struct {
	ReportID int64 `json:"report_id"`
	// Inbound is the message that sent the report's documents again with new
	// recipients, for the job that serves them (0 for the report's first).
	Inbound int64 `json:"inbound,omitempty"`
}

// Kind is the River job kind.
func (ResolveArgs) Kind() string { return "resolve_report" }

// InsertOpts makes the job unique per report and message.
func (ResolveArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// SendArgs is the job that sends one email of an MSSanté delivery.
type SendArgs struct {
	DeliveryID int64 `json:"delivery_id"`
	// MessageID is the email's: a resend is a new email with a new one.
	MessageID string `json:"message_id"`
}

// Kind is the River job kind.
func (SendArgs) Kind() string { return "send_delivery" }

// InsertOpts makes the job unique per email while it is waiting or running.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: queue.ActiveStates}}
}

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

// ReasonFallbackPaper is the reason of a paper delivery created by a fallback.
const ReasonFallbackPaper correspondents.Reason = "fallback_paper"

// FollowUpJob is a job that may yet give a delivery a paper fallback that
// prints its document: an acknowledgement deadline, a fallback. Each is
// unique per delivery and name while it waits or runs. InsertJobs adds it to
// its delivery's follow-ups (deliveries.follow_ups); the transaction that
// makes its change and completes it takes it off (FollowUpDone). A delivery
// has a follow-up there exactly while the job has not run (it waits, runs,
// or was cancelled or discarded: River's UI may retry it), which keeps its
// document from the retention job.
type FollowUpJob interface {
	river.JobArgs
	// FollowUp returns the job's delivery and its name among the
	// delivery's follow-ups: its kind and what else makes it unique.
	FollowUp() (deliveryID int64, name string)
}

// FollowUp is the delivery and the name of the fallback job (FollowUpJob).
func (a FallbackArgs) FollowUp() (int64, string) { return a.DeliveryID, a.Kind() + ":" + a.Cause }

// businessAckMaxAttempts bounds the sends of one acknowledgement: with the
// default backoff (one minute doubling to 30 minutes) the DPI may be
// unreachable for about a day before it is given up.
const businessAckMaxAttempts = 50

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

// followUp is the job that takes a new delivery further: its send when
// queued, its release when scheduled.
func followUp(id int64, d NewDelivery) []river.InsertManyParams {
	switch {
	case d.Status == StatusQueued:
		return []river.InsertManyParams{{Args: SendArgs{DeliveryID: id, MessageID: d.MessageID}}}
	case d.Status == StatusScheduled && d.ScheduledFor != nil:
		return []river.InsertManyParams{{Args: ReleaseArgs{DeliveryID: id}, InsertOpts: &river.InsertOpts{ScheduledAt: *d.ScheduledFor}}}
	}
	return nil
}

// InsertJobs inserts jobs in tx with ins, after adding the follow-up jobs
// among them to their deliveries' follow-ups (see FollowUpJob). Adding first
// locks those deliveries before the insert: a job of the same name running
// meanwhile, which takes its name off in a transaction that locks its
// delivery too, either commits before (the insert is then no duplicate of
// it and the name is added again) or after (the insert is skipped as a
// duplicate and the job takes the name off): the name stays from the
// enqueueing until a job of that name has run.
func InsertJobs(ctx context.Context, tx pgx.Tx, ins JobInserter, jobs []river.InsertManyParams) error {
	if len(jobs) == 0 {
		return nil
	}
	var ids []int64
	var names []string
	for _, j := range jobs {
		if f, ok := j.Args.(FollowUpJob); ok {
			id, name := f.FollowUp()
			ids, names = append(ids, id), append(names, name)
		}
	}
	if err := addFollowUps(ctx, tx, ids, names); err != nil {
		return err
	}
	if _, err := ins.InsertManyTx(ctx, tx, jobs); err != nil {
		return fmt.Errorf("enqueue jobs: %w", err)
	}
	return nil
}

// Release sends a scheduled or reviewed delivery on its way, in tx: queued
// with a send job inserted with ins (an MSSanté delivery with an address),
// or paper_pending; the change is recorded with event, actor and detail.
func Release(ctx context.Context, tx pgx.Tx, ins JobInserter, d StoredDelivery, event Event, actor Actor, detail string) error {
	if d.Channel == correspondents.ChannelMSSante {
		if d.Address == "" {
			return fmt.Errorf("delivery %d has no MSSanté address: %w", d.ID, ErrNoAddress)
		}
		if err := transition(ctx, tx, d.ID, d.Status, StatusQueued, event, actor, detail); err != nil {
			return err
		}
		return InsertJobs(ctx, tx, ins, []river.InsertManyParams{{Args: SendArgs{DeliveryID: d.ID, MessageID: d.MessageID}}})
	}
	if !d.PostalAddress.Known() {
		return fmt.Errorf("delivery %d has no postal address: %w", d.ID, ErrNoAddress)
	}
	return transition(ctx, tx, d.ID, d.Status, StatusPaperPending, event, actor, detail)
}

// ErrNoAddress is returned when a delivery cannot go out for want of an
// address (MSSanté, or postal for paper).
var ErrNoAddress = errors.New("no address to send to")

// FailDelivery moves a delivery from its status to failed and enqueues, with
// ins, the fallback of its policy for cause, in tx.
func FailDelivery(ctx context.Context, tx pgx.Tx, deliveryID int64, from Status, event Event, detail, cause string, ins JobInserter) error {
	// The transition to failed also clears the attempt in flight (sending_at).
	if err := transition(ctx, tx, deliveryID, from, StatusFailed, event, SystemActor, detail); err != nil {
		return err
	}
	return InsertJobs(ctx, tx, ins, []river.InsertManyParams{{Args: FallbackArgs{DeliveryID: deliveryID, Cause: cause}}})
}

// NewMessageID returns a unique Message-ID (without angle brackets) in domain.
func NewMessageID(domain string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b) + "@" + domain
}
