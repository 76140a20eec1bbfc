package dispatch

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// This file holds the SQL of the quarantine's reads (insertQuarantine, in
// store.go, writes it; store_retention.go purges it).

// listQuarantine returns at most limit quarantined messages older than the
// id before (0: from the newest), newest first, without their bytes.
func listQuarantine(ctx context.Context, q dbtx, before int64, limit int) ([]QuarantinedMessage, error) {
	rows, err := q.Query(ctx, `SELECT id, received_at, kind, source, message_control_id, reason,
			octet_length(raw), purged_at IS NOT NULL
		FROM quarantine WHERE ($1 <= 0 OR id < $1)
		ORDER BY id DESC LIMIT $2`, before, limit)
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
