package ingest

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// This file holds the Acknowledger of the database: what becomes of a
// message once classified, and the reader's checkpoint.

// EmailAck is what the mailbox's reader made of one message: for a DSN, of
// one of its recipient blocks.
type EmailAck struct {
	// Recipient is the DSN's recipient block; nil for any other message.
	Recipient *mail.RecipientStatus
	// Ack is dispatch.AckDelivered, AckRead, AckFailed, AckDelayed or
	// AckReply; empty when the message changes nothing (a DSN relayed, an
	// MDN deleted, a message of unknown kind).
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

// Domain applies an acknowledgement to a delivery: a *dispatch.Service.
type Domain interface {
	// Acknowledge applies ack (dispatch.AckDelivered, …) to the delivery,
	// detail saying what the message said (dispatch.Service.Acknowledge).
	Acknowledge(ctx context.Context, deliveryID int64, ack, detail string) error
}

// Ledger is the Acknowledger of the database: it finds the delivery a
// message concerns, has the domain apply the acknowledgement, records the
// message in mail_notifications, and keeps the checkpoint in
// imap_checkpoints.
type Ledger struct {
	pool   *pgxpool.Pool
	domain Domain
	logger *slog.Logger
}

// NewLedger returns the Ledger of pool's database, applying the
// acknowledgements through domain; logger defaults to slog.Default().
func NewLedger(pool *pgxpool.Pool, domain Domain, logger *slog.Logger) *Ledger {
	if logger == nil {
		logger = slog.Default()
	}
	return &Ledger{pool: pool, domain: domain, logger: logger}
}

// AcknowledgeEmail applies and records message n of the BAL applicative's
// mailbox, as its reader classified it (a). It finds the delivery a DSN, MDN
// or reply concerns, by the DSN's envelope id (checked against the
// recipient the DSN names), else by the Message-ID of the email it answers
// (Original-Message-ID, In-Reply-To, References); a message of unknown kind
// concerns none. It applies a.Ack to that delivery (Domain.Acknowledge; a
// delivery deleted meanwhile is skipped) and records the message in
// mail_notifications. An error means the acknowledgement was not applied:
// the message is to be read again. A failure to record the message or to
// read the delay is logged.
func (l *Ledger) AcknowledgeEmail(ctx context.Context, n *mail.Notification, a EmailAck) (AckRecord, error) {
	rec := AckRecord{Outcome: a.Outcome}
	if n.Kind != mail.KindUnknown {
		id, err := l.deliveryOf(ctx, n, a.Recipient)
		if err != nil {
			return AckRecord{}, err
		}
		rec.DeliveryID = id
		if id == 0 {
			rec.Outcome = "unmatched"
		}
	}
	if rec.DeliveryID != 0 && a.Ack != "" {
		err := l.domain.Acknowledge(ctx, rec.DeliveryID, a.Ack, a.Detail)
		switch {
		case err == nil:
			rec.Delay, rec.First = l.ackDelay(ctx, rec.DeliveryID, a.Ack)
		case !errors.Is(err, dispatch.ErrNotFound):
			return AckRecord{}, err
		}
	}
	err := insertNotification(ctx, l.pool, notificationRecord{Kind: n.Kind, MessageID: n.MessageID,
		DeliveryID: rec.DeliveryID, Outcome: rec.Outcome, Detail: a.Detail})
	if err != nil {
		l.logger.WarnContext(ctx, "record notification", "error", redact.Text(err.Error()))
	}
	return rec, nil
}

// ackDelay returns the delay of the acknowledgement ack just recorded for
// delivery id, and whether it is the first of its kind since the email was
// sent (a duplicate DSN is not). Only the instance holding the mailbox's
// lock applies acknowledgements, so each is first once (were two to apply
// the same one at once, each reading after its own commit, at most one
// would be first). A failure to read the delay is logged.
func (l *Ledger) ackDelay(ctx context.Context, id int64, ack string) (time.Duration, bool) {
	delay, first, err := firstAckDelay(ctx, l.pool, id, dispatch.AckEvent(ack))
	if err != nil {
		l.logger.WarnContext(ctx, "acknowledgement delay", "delivery_id", id, "error", redact.Text(err.Error()))
		return 0, false
	}
	return delay, first
}

// deliveryOf returns the delivery n concerns, or 0: by the envelope id of a
// DSN (checked against recipient r when the DSN names one), else by the
// Message-ID of the email it answers.
func (l *Ledger) deliveryOf(ctx context.Context, n *mail.Notification, r *mail.RecipientStatus) (int64, error) {
	if v, ok := mail.EnvelopeDelivery(n.EnvelopeID); ok {
		var final, original string
		if r != nil {
			final, original = r.FinalRecipient, r.OriginalRecipient
		}
		found, err := deliveryForEnvelope(ctx, l.pool, v, final, original)
		if err != nil || found != 0 {
			return found, err
		}
	}
	ids := append([]string{n.OriginalMessageID}, n.InReplyTo...)
	ids = append(ids, n.References...)
	return deliveryForMessageIDs(ctx, l.pool, ids)
}

// LoadCheckpoint returns the UIDVALIDITY and the last UID read of the IMAP
// mailbox, zero when it was never read: the mailbox reader's
// mail.Checkpoint, kept in the database.
func (l *Ledger) LoadCheckpoint(ctx context.Context, mailbox string) (uidValidity, lastUID uint32, err error) {
	return loadCheckpoint(ctx, l.pool, mailbox)
}

// SaveCheckpoint records the UIDVALIDITY and the last UID read of the IMAP
// mailbox.
func (l *Ledger) SaveCheckpoint(ctx context.Context, mailbox string, uidValidity, lastUID uint32) error {
	return saveCheckpoint(ctx, l.pool, mailbox, uidValidity, lastUID)
}
