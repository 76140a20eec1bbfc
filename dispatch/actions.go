package dispatch

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/correspondents"
)

// This file holds what people and the acknowledgements do to a delivery;
// each action is one transaction through the state machine, recorded with
// its actor.

// Acknowledgements of an email, from its DSN or MDN.
const (
	AckDelivered = StatusDelivered // a DSN "delivered"
	AckRead      = StatusRead      // an MDN "displayed" or "processed"
	AckFailed    = StatusFailed    // a DSN "failed", or an MDN with an error
	AckDelayed   = "delayed"       // a DSN "delayed": the operator is still trying (no status change)
	AckReply     = "reply"         // a human reply to the email (no status change)
)

// Approve sends a delivery a secretary reviewed, or a scheduled one at once:
// an MSSanté delivery is queued with its send job, a paper one goes to
// paper_pending. It returns ErrNoAddress when the delivery has no address to
// go to, and an error wrapping ErrTransition from another status.
func (s *Service) Approve(ctx context.Context, deliveryID int64, user string) error {
	return s.act(ctx, deliveryID, func(tx pgx.Tx, d storedDelivery) error {
		if d.Status != StatusReview && d.Status != StatusScheduled {
			return allowedAction(d, "approve")
		}
		return release(ctx, tx, s.jobs, d, EventApproved, userActor(user), "")
	})
}

// Hold puts a scheduled or paper_pending delivery back in review.
func (s *Service) Hold(ctx context.Context, deliveryID int64, user, why string) error {
	return s.act(ctx, deliveryID, func(tx pgx.Tx, d storedDelivery) error {
		if d.Status != StatusScheduled && d.Status != StatusPaperPending {
			return allowedAction(d, "hold")
		}
		return transition(ctx, tx, d.ID, d.Status, StatusReview, EventApproved, userActor(user), why)
	})
}

// Cancel stops a delivery that has not left. An email being sent cannot be
// cancelled any more (ErrStale).
func (s *Service) Cancel(ctx context.Context, deliveryID int64, user, why string) error {
	return s.act(ctx, deliveryID, func(tx pgx.Tx, d storedDelivery) error {
		if d.SendingAt {
			return fmt.Errorf("delivery %d is being sent: %w", d.ID, ErrStale)
		}
		return transition(ctx, tx, d.ID, d.Status, StatusCancelled, EventCancelled, userActor(user), why)
	})
}

// Resend queues a failed MSSanté delivery again, with a new Message-ID (a new
// email: its acknowledgements must not be mistaken for the old one's).
func (s *Service) Resend(ctx context.Context, deliveryID int64, user string) error {
	return s.act(ctx, deliveryID, func(tx pgx.Tx, d storedDelivery) error {
		if d.Status != StatusFailed || d.Channel != correspondents.ChannelMSSante {
			return allowedAction(d, "resend")
		}
		messageID := newMessageID(domainOf(d.MessageID))
		if err := setMessageID(ctx, tx, d.ID, messageID); err != nil {
			return err
		}
		if err := transition(ctx, tx, d.ID, StatusFailed, StatusQueued, EventResent, userActor(user), messageID); err != nil {
			return err
		}
		return insertJobs(ctx, tx, s.jobs, []river.InsertManyParams{{Args: SendArgs{DeliveryID: d.ID, MessageID: messageID}}})
	})
}

// MarkPaperSent records that a paper delivery was posted.
func (s *Service) MarkPaperSent(ctx context.Context, deliveryID int64, user string) error {
	return s.act(ctx, deliveryID, func(tx pgx.Tx, d storedDelivery) error {
		return transition(ctx, tx, d.ID, d.Status, StatusPaperSent, EventPaperSent, userActor(user), "")
	})
}

// PostalReturn records a letter that came back (NPAI): the delivery goes
// back to review, for a secretary to correct the address.
func (s *Service) PostalReturn(ctx context.Context, deliveryID int64, user, why string) error {
	return s.act(ctx, deliveryID, func(tx pgx.Tx, d storedDelivery) error {
		return transition(ctx, tx, d.ID, d.Status, StatusReview, EventReturned, userActor(user), why)
	})
}

// Acknowledge records a DSN, an MDN or a reply of an email: ack is
// AckDelivered, AckRead, AckFailed, AckDelayed or AckReply, detail says what
// the notification said. A failure applies the fallback of the delivery's
// policy; a read clears the unread flag; a delay is only recorded; a reply
// flags the delivery for a secretary. An acknowledgement the delivery is
// past (a DSN after the MDN) is recorded in the history without a change.
// A delivery, read or failure the DPI asked to hear of (ACK_RECEPTION,
// ACK_LECTURE_MSS) enqueues its business acknowledgement in the same
// transaction.
func (s *Service) Acknowledge(ctx context.Context, deliveryID int64, ack, detail string) error {
	return s.act(ctx, deliveryID, func(tx pgx.Tx, d storedDelivery) error {
		switch ack {
		case AckDelayed:
			return insertEvent(ctx, tx, d.ID, d.Status, d.Status, EventDelayed, actorSystem, detail)
		case AckReply:
			if err := setAttention(ctx, tx, d.ID, AckReply); err != nil {
				return err
			}
			return insertEvent(ctx, tx, d.ID, d.Status, d.Status, EventReply, actorSystem, detail)
		}
		event := map[string]string{AckDelivered: EventDelivered, AckRead: EventRead, AckFailed: EventFailed}[ack]
		if event == "" {
			return fmt.Errorf("acknowledgement %q: want delivered, read, failed, delayed or reply", ack)
		}
		var err error
		switch {
		case allowed(d.Status, ack) != nil:
			err = insertEvent(ctx, tx, d.ID, d.Status, d.Status, event, actorSystem, detail+" (sans effet: "+d.Status+")")
		case ack == AckFailed:
			err = failDelivery(ctx, tx, d.ID, d.Status, event, detail, CauseFailed, s.jobs)
		case ack == AckRead:
			err = setAttention(ctx, tx, d.ID, "")
			if err == nil {
				err = transition(ctx, tx, d.ID, d.Status, ack, event, actorSystem, detail)
			}
		default:
			err = transition(ctx, tx, d.ID, d.Status, ack, event, actorSystem, detail)
		}
		if err != nil {
			return err
		}
		// A late DSN (after the MDN) still earns the DPI its Z02.
		return businessAcksFor(ctx, tx, s.jobs, s.businessAcks, d.ID, ack, detail)
	})
}

// act runs change on the locked delivery in one transaction.
func (s *Service) act(ctx context.Context, deliveryID int64, change func(pgx.Tx, storedDelivery) error) error {
	if err := withDelivery(ctx, s.pool, deliveryID, change); err != nil {
		return fmt.Errorf("delivery %d: %w", deliveryID, err)
	}
	return nil
}

// withDelivery runs change on the delivery id, loaded and locked in a
// transaction of its own that commits the change.
func withDelivery(ctx context.Context, pool *pgxpool.Pool, id int64, change func(pgx.Tx, storedDelivery) error) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		d, err := loadDelivery(ctx, tx, id)
		if err != nil {
			return err
		}
		return change(tx, d)
	})
}

// allowedAction is the error of an action that does not apply to d's status.
func allowedAction(d storedDelivery, action string) error {
	return fmt.Errorf("%w: %s a %s %s delivery", ErrTransition, action, d.Status, d.Channel)
}

// userActor is the person user.
func userActor(user string) Actor { return Actor{Kind: ActorUser, Name: user} }
