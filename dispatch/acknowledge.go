package dispatch

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// This file holds what the acknowledgements of an email (its DSN, its MDN,
// a reply) do to its delivery; what people do is package dispatch/desk's.

// Acknowledgements of an email, from its DSN or MDN.
const (
	AckDelivered = string(StatusDelivered) // a DSN "delivered"
	AckRead      = string(StatusRead)      // an MDN "displayed" or "processed"
	AckFailed    = string(StatusFailed)    // a DSN "failed", or an MDN with an error
	AckDelayed   = "delayed"               // a DSN "delayed": the operator is still trying (no status change)
	AckReply     = "reply"                 // a human reply to the email (no status change)
)

// ackEvents maps each acknowledgement to the event Acknowledge records for
// it; its keys are also the ack label of mssdispatch_ack_delay_seconds (the
// mailbox's reader, package dispatch/mail/ingest).
var ackEvents = map[string]Event{AckDelivered: EventDelivered, AckRead: EventRead, AckFailed: EventFailed,
	AckDelayed: EventDelayed, AckReply: EventReply}

// AckEvent returns the event Acknowledge records for ack, "" for none.
func AckEvent(ack string) Event { return ackEvents[ack] }

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
	event, ok := ackEvents[ack]
	if !ok {
		return fmt.Errorf("delivery %d: acknowledgement %q: want delivered, read, failed, delayed or reply", deliveryID, ack)
	}
	return Act(ctx, s.pool, deliveryID, func(tx pgx.Tx, d StoredDelivery) error {
		switch ack {
		case AckDelayed:
			return InsertEvent(ctx, tx, d.ID, d.Status, d.Status, event, SystemActor, detail)
		case AckReply:
			if err := SetAttention(ctx, tx, d.ID, AckReply); err != nil {
				return err
			}
			return InsertEvent(ctx, tx, d.ID, d.Status, d.Status, event, SystemActor, detail)
		}
		to := Status(ack) // AckDelivered, AckRead and AckFailed are the statuses they lead to
		var err error
		switch {
		case Allowed(d.Status, to) != nil:
			err = InsertEvent(ctx, tx, d.ID, d.Status, d.Status, event, SystemActor, detail+" (sans effet: "+string(d.Status)+")")
		case ack == AckFailed:
			err = FailDelivery(ctx, tx, d.ID, d.Status, event, detail, CauseFailed, s.jobs)
		case ack == AckRead:
			err = SetAttention(ctx, tx, d.ID, "")
			if err == nil {
				err = transition(ctx, tx, d.ID, d.Status, to, event, SystemActor, detail)
			}
		default:
			err = transition(ctx, tx, d.ID, d.Status, to, event, SystemActor, detail)
		}
		if err != nil {
			return err
		}
		// A late DSN (after the MDN) still earns the DPI its Z02.
		return businessAcksFor(ctx, tx, s.jobs, s.businessAcks, d.ID, ack, detail)
	})
}
