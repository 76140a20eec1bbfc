package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mssdispatch/mssdispatch/dispatch"
)

// This file holds the SQL of the Ledger (ledger.go): the messages read from
// the mailbox, the deliveries they concern, the checkpoint.

// notificationRecord is one message read from the mailbox, as recorded.
type notificationRecord struct {
	Kind, MessageID string
	DeliveryID      int64 // 0 when none was found
	Outcome, Detail string
}

func insertNotification(ctx context.Context, q *pgxpool.Pool, r notificationRecord) error {
	var delivery *int64
	if r.DeliveryID != 0 {
		delivery = &r.DeliveryID
	}
	if _, err := q.Exec(ctx, `INSERT INTO mail_notifications (kind, message_id, delivery_id, outcome, detail)
		VALUES ($1, $2, $3, $4, $5)`, r.Kind, r.MessageID, delivery, r.Outcome, r.Detail); err != nil {
		return fmt.Errorf("record notification: %w", err)
	}
	return nil
}

// deliveryForEnvelope returns the delivery id when it exists and, when the
// DSN names a recipient (final or original), that recipient is its address;
// 0 otherwise.
func deliveryForEnvelope(ctx context.Context, q *pgxpool.Pool, id int64, final, original string) (int64, error) {
	var address string
	err := q.QueryRow(ctx, `SELECT address FROM deliveries WHERE id = $1 AND channel = 'mssante'`, id).Scan(&address)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("find delivery %d: %w", id, err)
	}
	for _, r := range []string{original, final} {
		if r != "" && !strings.EqualFold(r, address) {
			return 0, nil
		}
	}
	return id, nil
}

// deliveryForMessageIDs returns the delivery whose email had one of
// messageIDs (with or without angle brackets), or 0.
func deliveryForMessageIDs(ctx context.Context, q *pgxpool.Pool, messageIDs []string) (int64, error) {
	var ids []string
	for _, m := range messageIDs {
		if m = strings.Trim(strings.TrimSpace(m), "<>"); m != "" {
			ids = append(ids, m)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	var id int64
	err := q.QueryRow(ctx, `SELECT id FROM deliveries WHERE message_id = ANY ($1) ORDER BY id LIMIT 1`, ids).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("find delivery by Message-ID: %w", err)
	}
	return id, nil
}

// firstAckDelay returns the time from the sending of delivery id's email
// (sent_at, its last acceptance by SMTP) to its event, when that event is
// the only one since; first is false after a duplicate, or when the email
// has no sending time.
func firstAckDelay(ctx context.Context, q *pgxpool.Pool, id int64, event dispatch.Event) (delay time.Duration, first bool, err error) {
	var seconds float64
	var n int
	err = q.QueryRow(ctx, `SELECT extract(epoch FROM min(e.at) - d.sent_at)::float8, count(*)
		FROM deliveries d JOIN delivery_events e ON e.delivery_id = d.id AND e.event = $2 AND e.at >= d.sent_at
		WHERE d.id = $1 GROUP BY d.sent_at`, id, event).Scan(&seconds, &n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("acknowledgement delay of delivery %d: %w", id, err)
	}
	return time.Duration(seconds * float64(time.Second)), n == 1, nil
}

func loadCheckpoint(ctx context.Context, q *pgxpool.Pool, mailbox string) (validity, last uint32, err error) {
	var v, l int64
	err = q.QueryRow(ctx, `SELECT uid_validity, last_uid FROM imap_checkpoints WHERE mailbox = $1`, mailbox).Scan(&v, &l)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("load mailbox checkpoint: %w", err)
	}
	return uint32(v), uint32(l), nil
}

func saveCheckpoint(ctx context.Context, q *pgxpool.Pool, mailbox string, validity, last uint32) error {
	if _, err := q.Exec(ctx, `INSERT INTO imap_checkpoints (mailbox, uid_validity, last_uid) VALUES ($1, $2, $3)
		ON CONFLICT (mailbox) DO UPDATE SET uid_validity = $2, last_uid = $3, updated_at = now()`,
		mailbox, int64(validity), int64(last)); err != nil {
		return fmt.Errorf("save mailbox checkpoint: %w", err)
	}
	return nil
}
