package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	_ "time/tzdata" // Europe/Paris must load on hosts without a zoneinfo database.

	"github.com/jackc/pgx/v5"

	"github.com/mssdispatch/mssdispatch/rules"
)

// Status is the status of a delivery (deliveries.status): where it stands
// in the state machine of transitions.
type Status string

// Delivery statuses.
const (
	StatusReview       Status = "review"        // a secretary must decide
	StatusScheduled    Status = "scheduled"     // waiting for the delay of a rule
	StatusQueued       Status = "queued"        // to be sent (or being sent) by MSSanté
	StatusSent         Status = "sent"          // accepted by the BAL applicative's submission server
	StatusDelivered    Status = "delivered"     // a DSN says it reached the mailbox
	StatusRead         Status = "read"          // an MDN says it was read or integrated
	StatusFailed       Status = "failed"        // refused, bounced, or not delivered in time
	StatusPaperPending Status = "paper_pending" // to be printed and posted
	StatusPaperSent    Status = "paper_sent"    // posted
	StatusCancelled    Status = "cancelled"     // will not go (document deleted, excluded, cancelled by a user)
	StatusSuperseded   Status = "superseded"    // replaced by a newer version of the document before it left
)

// transitions lists, for each status, the statuses a delivery may move to;
// "" is a delivery being created. It is the one place that says what may
// happen to a delivery: every status change goes through Allowed.
var transitions = map[Status][]Status{
	"":                 {StatusReview, StatusScheduled, StatusQueued, StatusPaperPending, StatusCancelled},
	StatusReview:       {StatusQueued, StatusPaperPending, StatusCancelled, StatusSuperseded},
	StatusScheduled:    {StatusQueued, StatusPaperPending, StatusReview, StatusCancelled, StatusSuperseded},
	StatusQueued:       {StatusSent, StatusFailed, StatusReview, StatusCancelled, StatusSuperseded}, // review: outside the trust space when it was to go
	StatusSent:         {StatusDelivered, StatusRead, StatusFailed},
	StatusDelivered:    {StatusRead, StatusFailed},
	StatusFailed:       {StatusQueued, StatusDelivered, StatusRead}, // a resend; a late acknowledgement
	StatusPaperPending: {StatusPaperSent, StatusReview, StatusCancelled, StatusSuperseded},
	StatusPaperSent:    {StatusReview}, // a postal return (NPAI)
	StatusRead:         nil,
	StatusCancelled:    nil,
	StatusSuperseded:   nil,
}

// Known reports whether s is a delivery status (not "", a delivery being
// created).
func (s Status) Known() bool {
	_, ok := transitions[s]
	return ok && s != ""
}

// pendingStatuses are the statuses of deliveries that have not left yet:
// those a replacement supersedes and a deletion cancels.
var pendingStatuses = []Status{StatusReview, StatusScheduled, StatusQueued, StatusPaperPending}

// Pending reports whether a delivery in status s has not left yet (one of
// pendingStatuses).
func (s Status) Pending() bool { return slices.Contains(pendingStatuses, s) }

// ErrTransition is wrapped by the error of a status change the state machine forbids.
var ErrTransition = errors.New("delivery status change not allowed")

// ErrStale is returned when a delivery is no longer in the status an action expected.
var ErrStale = errors.New("the delivery changed meanwhile")

// CanSwitchToPaper reports whether an email in status may be replaced or
// doubled by a letter: not once cancelled or superseded, nor while handed
// to SMTP (sending).
func CanSwitchToPaper(status Status, sending bool) bool {
	return !sending && status != StatusCancelled && status != StatusSuperseded
}

// Allowed returns an error wrapping ErrTransition unless a delivery may move from to.
func Allowed(from, to Status) error {
	next, known := transitions[from]
	if !known || !slices.Contains(next, to) {
		if from == "" {
			from = "(new)"
		}
		return fmt.Errorf("%w: %s -> %s", ErrTransition, from, to)
	}
	return nil
}

// Transition moves the delivery deliveryID from one status to another
// (through q, a transaction or the pool: the change and its event are one
// statement), if the state machine allows it (an error wrapping ErrTransition
// otherwise), and records the change with event, actor and detail in its
// history; it returns ErrStale when the delivery is no longer in from. It
// is the door of the packages beside the domain (letters) to a status
// change.
func Transition(ctx context.Context, q DB, deliveryID int64, from, to Status, event Event, actor Actor, detail string) error {
	return transition(ctx, q, deliveryID, from, to, event, actor, detail)
}

// PutInBatch records in tx that the letters ids (paper deliveries,
// paper_pending) are in the paper batch batchID, an EventBatched in the
// history of each. A letter leaves its batch at its next status change,
// unless that is to paper_sent (see transition).
func PutInBatch(ctx context.Context, tx pgx.Tx, batchID int64, ids []int64) error {
	if err := setPaperBatch(ctx, tx, batchID, ids); err != nil {
		return err
	}
	return InsertEvents(ctx, tx, ids, StatusPaperPending, StatusPaperPending, EventBatched, SystemActor, fmt.Sprintf("lot n° %d", batchID))
}

// Actor kinds of a delivery event.
const (
	ActorSystem = "system" // the service itself (a job, an acknowledgement)
	ActorRule   = "rule"   // a CME rule, named in Actor.Name
	ActorUser   = "user"   // a person, named in Actor.Name
)

// Actor is who caused a delivery event.
type Actor struct {
	Kind string
	Name string
}

// SystemActor is the service acting on its own (a job, an acknowledgement).
var SystemActor = Actor{Kind: ActorSystem}

// RuleActor is the rule r acting.
func RuleActor(r rules.Rule) Actor { return Actor{Kind: ActorRule, Name: r.Name} }

// Event is the kind of an entry of a delivery's history
// (delivery_events.event), or of a report's as a whole (report_events.event:
// the ReportEvent constants).
type Event string

// Events of the delivery history (delivery_events.event).
const (
	EventCreated    Event = "created"
	EventReleased   Event = "released"   // the delay of a rule ended
	EventApproved   Event = "approved"   // a secretary approved it
	EventHeld       Event = "held"       // a secretary put it back in review
	EventSending    Event = "sending"    // handed to SMTP (recorded before, with the attempt)
	EventSent       Event = "sent"       // 250 from the submission server
	EventRetry      Event = "retry"      // a temporary failure; it will be tried again
	EventResumed    Event = "resumed"    // what refused it for now (its domain, the server) accepts again: it goes now
	EventFailed     Event = "failed"     // a permanent failure
	EventNoDSN      Event = "no_dsn"     // no delivery notification in time
	EventUnread     Event = "unread"     // no read notification in time
	EventFallback   Event = "fallback"   // the fallback of its rule applied
	EventSuperseded Event = "superseded" // a newer version of the document came
	EventCancelled  Event = "cancelled"
	EventResent     Event = "resent"      // a user sent it again
	EventPaperSent  Event = "paper_sent"  // posted
	EventReturned   Event = "returned"    // a postal return (NPAI)
	EventDelivered  Event = "delivered"   // a DSN
	EventRead       Event = "read"        // an MDN
	EventDelayed    Event = "delayed"     // a DSN "delayed": the operator keeps trying
	EventReply      Event = "reply"       // a human reply came back
	EventPurged     Event = "doc_purged"  // the document's bytes were purged
	EventDomainWait Event = "domain_wait" // its operator is refusing for now; it waits its turn
	EventUntrusted  Event = "untrusted"   // its address was outside the trust space when it was to go: not sent
	EventBatched    Event = "batched"     // a letter put in a paper batch to print (package letters)
)

// Zone is the hospital's time zone: the rules' delays, the statistics' months, the paper batches' days.
var Zone = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(fmt.Sprintf("dispatch: load Europe/Paris: %v", err)) // unreachable: time/tzdata is embedded
	}
	return loc
}()
