package dispatch

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// This file holds what the domain does with a message of the BAL
// applicative's mailbox once its reader (package dispatch/mail/ingest) has
// classified it, and the reader's checkpoint.

// EmailAck is what the mailbox's reader made of one message: for a DSN, of
// one of its recipient blocks.
type EmailAck struct {
	// Recipient is the DSN's recipient block; nil for any other message.
	Recipient *mail.RecipientStatus
	// Ack is AckDelivered, AckRead, AckFailed, AckDelayed or AckReply;
	// empty when the message changes nothing (a DSN relayed, an MDN
	// deleted, a message of unknown kind).
	Ack string
	// Outcome is recorded with the message: delivered, read, failed,
	// delayed, reply, ignored, unknown or unreadable.
	Outcome string
	// Detail is what the message says, for the delivery's history and the
	// record of the message.
	Detail string
}

// AckRecord is what AcknowledgeEmail did with a message.
type AckRecord struct {
	// DeliveryID is the delivery the message concerns, 0 when none.
	DeliveryID int64
	// Outcome is the outcome recorded: EmailAck.Outcome, or "unmatched"
	// when a DSN, MDN or reply concerns no delivery of this service.
	Outcome string
	// First is true when the acknowledgement was applied and is the first
	// of its kind since the email was sent; Delay is then the time from the
	// sending (accepted by SMTP) to it. An email whose sending time is
	// unknown has no first.
	First bool
	Delay time.Duration
}

// AcknowledgeEmail applies and records message n of the BAL applicative's
// mailbox, as its reader classified it (a). It finds the delivery a DSN, MDN
// or reply concerns, by the DSN's envelope id (checked against the
// recipient the DSN names), else by the Message-ID of the email it answers
// (Original-Message-ID, In-Reply-To, References); a message of unknown kind
// concerns none. It applies a.Ack to that delivery (Acknowledge; a
// delivery deleted meanwhile is skipped) and records the message in
// mail_notifications. An error means the acknowledgement was not applied:
// the message is to be read again. A failure to record the message or to
// read the delay is logged.
func (s *Service) AcknowledgeEmail(ctx context.Context, n *mail.Notification, a EmailAck) (AckRecord, error) {
	rec := AckRecord{Outcome: a.Outcome}
	if n.Kind != mail.KindUnknown {
		id, err := s.deliveryOf(ctx, n, a.Recipient)
		if err != nil {
			return AckRecord{}, err
		}
		rec.DeliveryID = id
		if id == 0 {
			rec.Outcome = "unmatched"
		}
	}
	if rec.DeliveryID != 0 && a.Ack != "" {
		err := s.Acknowledge(ctx, rec.DeliveryID, a.Ack, a.Detail)
		switch {
		case err == nil:
			rec.Delay, rec.First = s.ackDelay(ctx, rec.DeliveryID, a.Ack)
		case !errors.Is(err, ErrNotFound):
			return AckRecord{}, err
		}
	}
	err := insertNotification(ctx, s.pool, notificationRecord{Kind: n.Kind, MessageID: n.MessageID,
		DeliveryID: rec.DeliveryID, Outcome: rec.Outcome, Detail: a.Detail})
	if err != nil {
		s.logger.WarnContext(ctx, "record notification", "error", redact.Text(err.Error()))
	}
	return rec, nil
}

// ackDelay returns the delay of the acknowledgement ack just recorded for
// delivery id, and whether it is the first of its kind since the email was
// sent (a duplicate DSN is not). Only the instance holding the mailbox's
// lock applies acknowledgements, so each is first once (were two to apply
// the same one at once, each reading after its own commit, at most one
// would be first). A failure to read the delay is logged.
func (s *Service) ackDelay(ctx context.Context, id int64, ack string) (time.Duration, bool) {
	delay, first, err := firstAckDelay(ctx, s.pool, id, ackEvents[ack])
	if err != nil {
		s.logger.WarnContext(ctx, "acknowledgement delay", "delivery_id", id, "error", redact.Text(err.Error()))
		return 0, false
	}
	return delay, first
}

// deliveryOf returns the delivery n concerns, or 0: by the envelope id of a
// DSN (checked against recipient r when the DSN names one), else by the
// Message-ID of the email it answers.
func (s *Service) deliveryOf(ctx context.Context, n *mail.Notification, r *mail.RecipientStatus) (int64, error) {
	if id, ok := strings.CutPrefix(n.EnvelopeID, "mssdispatch-"); ok {
		if v, err := strconv.ParseInt(id, 10, 64); err == nil {
			var final, original string
			if r != nil {
				final, original = r.FinalRecipient, r.OriginalRecipient
			}
			found, err := deliveryForEnvelope(ctx, s.pool, v, final, original)
			if err != nil || found != 0 {
				return found, err
			}
		}
	}
	ids := append([]string{n.OriginalMessageID}, n.InReplyTo...)
	ids = append(ids, n.References...)
	return deliveryForMessageIDs(ctx, s.pool, ids)
}

// LoadCheckpoint returns the UIDVALIDITY and the last UID read of the IMAP
// mailbox, zero when it was never read: the mailbox reader's
// mail.Checkpoint, kept in the database.
func (s *Service) LoadCheckpoint(ctx context.Context, mailbox string) (uidValidity, lastUID uint32, err error) {
	return loadCheckpoint(ctx, s.pool, mailbox)
}

// SaveCheckpoint records the UIDVALIDITY and the last UID read of the IMAP
// mailbox.
func (s *Service) SaveCheckpoint(ctx context.Context, mailbox string, uidValidity, lastUID uint32) error {
	return saveCheckpoint(ctx, s.pool, mailbox, uidValidity, lastUID)
}
