package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// This file holds the SQL of the quarantine (store_retention.go purges it).

// insertQuarantine keeps the message in refused for why, in tx.
func insertQuarantine(ctx context.Context, tx pgx.Tx, in Inbound, inboundID *int64, raw []byte, why Refusal) error {
	_, err := tx.Exec(ctx, `INSERT INTO quarantine (kind, source, inbound_id, message_control_id, message_type, service,
			reason, error_code, error_location, raw)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		in.Kind, in.Source, inboundID, in.ControlID, in.MessageType, in.Service, why.Reason, why.Code, why.Location, raw)
	if err != nil {
		return fmt.Errorf("insert quarantine: %w", err)
	}
	return nil
}

// listQuarantine returns at most limit quarantined messages older than the
// id before (0: from the newest), newest first, without their bytes; the
// reason of a message whose service is not among services (unless nil)
// stays in the database.
func listQuarantine(ctx context.Context, q dbtx, before int64, limit int, services []string) ([]QuarantinedMessage, error) {
	rows, err := q.Query(ctx, `SELECT id, received_at, kind, source, message_control_id, message_type, service,
			error_code, error_location, CASE WHEN v.visible THEN reason ELSE '' END, NOT v.visible,
			octet_length(raw), purged_at IS NOT NULL
		FROM quarantine,
			LATERAL (SELECT $3::text[] IS NULL OR (service <> '' AND service = ANY($3::text[])) AS visible) v
		WHERE ($1 <= 0 OR id < $1)
		ORDER BY id DESC LIMIT $2`, before, limit, services)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[QuarantinedMessage])
}

// quarantineRaw returns the bytes of the quarantined message id (empty when
// purged), or ErrNotFound.
func quarantineRaw(ctx context.Context, q dbtx, id int64) ([]byte, error) {
	var raw []byte
	err := q.QueryRow(ctx, `SELECT raw FROM quarantine WHERE id = $1`, id).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if raw == nil {
		raw = []byte{}
	}
	return raw, nil
}
