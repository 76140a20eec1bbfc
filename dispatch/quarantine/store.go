package quarantine

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/mssdispatch/mssdispatch/dispatch"
)

// This file holds the SQL of the quarantine (dispatch.Service.Reject fills
// it, package retention purges it).

// seen is the quarantine q, each row with whether the viewer of the
// services $1 (NULL: every service) sees it whole (v.visible): a message
// of one of them, of a known service.
const seen = `quarantine q,
	LATERAL (SELECT $1::text[] IS NULL OR (q.service <> '' AND q.service = ANY($1::text[])) AS visible) v`

// columns are the columns of a Message, in order, from seen: the patient
// data only for a viewer who sees it whole.
const columns = `q.id, q.received_at, q.kind, q.source, q.sending_application, q.sending_facility,
	q.message_control_id, q.message_type, q.service, q.error_code, q.error_location,
	CASE WHEN v.visible THEN q.reason ELSE '' END, CASE WHEN v.visible THEN q.patient ELSE '' END,
	CASE WHEN v.visible THEN q.document ELSE '' END, NOT v.visible,
	octet_length(q.raw), q.purged_at IS NOT NULL, q.partial, q.status, coalesce(q.report_id, 0), q.acted_by, q.acted_at,
	CASE WHEN v.visible THEN q.note ELSE '' END`

// selectPage returns at most limit quarantined messages older than the id
// before (0: from the newest), in status (all when empty), newest first,
// without their bytes; the patient data of a message whose service is not
// among services (unless nil) stays in the database.
func selectPage(ctx context.Context, q dispatch.DB, before int64, limit int, status Status, services []string) ([]Message, error) {
	rows, err := q.Query(ctx, `SELECT `+columns+` FROM `+seen+`
		WHERE ($2 <= 0 OR q.id < $2) AND ($3 = '' OR q.status = $3)
		ORDER BY q.id DESC LIMIT $4`, services, before, status, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Message])
}

// selectMessage returns the quarantined message id as a viewer of services
// sees it, with its bytes (empty when purged), or dispatch.ErrNotFound.
func selectMessage(ctx context.Context, q dispatch.DB, id int64, services []string) (Message, []byte, error) {
	var m Message
	var raw []byte
	err := q.QueryRow(ctx, `SELECT `+columns+`, q.raw FROM `+seen+` WHERE q.id = $2`, services, id).Scan(
		&m.ID, &m.ReceivedAt, &m.Kind, &m.Source, &m.SendingApplication, &m.SendingFacility, &m.ControlID, &m.MessageType,
		&m.Service, &m.ErrorCode, &m.ErrorLocation, &m.Reason, &m.Patient, &m.Document, &m.Restricted, &m.Size, &m.Purged,
		&m.Partial, &m.Status, &m.ReportID, &m.ActedBy, &m.ActedAt, &m.Note, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, nil, dispatch.ErrNotFound
	}
	return m, raw, err
}

// selectRaw returns the bytes of the quarantined message id (empty when
// purged), or dispatch.ErrNotFound.
func selectRaw(ctx context.Context, q dispatch.DB, id int64) ([]byte, error) {
	var raw []byte
	err := q.QueryRow(ctx, `SELECT raw FROM quarantine WHERE id = $1`, id).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, dispatch.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if raw == nil {
		raw = []byte{}
	}
	return raw, nil
}

// lockMessage locks the row of the quarantined message id in tx, for a
// change to status to by a viewer of services (nil: all), and returns the
// id of the key it was refused with (0 when it had none of its own). It
// returns dispatch.ErrNotFound when the viewer does not see the message
// whole, an error wrapping ErrHandled when its status may not become to
// (next).
func lockMessage(ctx context.Context, tx pgx.Tx, id int64, services []string, to Status) (inboundID int64, err error) {
	var status Status
	var visible bool
	err = tx.QueryRow(ctx, `SELECT q.status, coalesce(q.inbound_id, 0), v.visible FROM `+seen+`
		WHERE q.id = $2 FOR UPDATE OF q`, services, id).Scan(&status, &inboundID, &visible)
	switch {
	case errors.Is(err, pgx.ErrNoRows), err == nil && !visible:
		return 0, dispatch.ErrNotFound
	case err != nil:
		return 0, fmt.Errorf("lock quarantined message: %w", err)
	case !slices.Contains(next[status], to):
		return 0, fmt.Errorf("%w: %s, not %s", ErrHandled, status, to)
	}
	return inboundID, nil
}

// actOn records that user took the quarantined message id to status,
// accepted as the report reportID (0: none) or set aside for note.
func actOn(ctx context.Context, tx pgx.Tx, id int64, status Status, user string, reportID int64, note string) error {
	_, err := tx.Exec(ctx, `UPDATE quarantine SET status = $2, report_id = NULLIF($3, 0), acted_by = $4, acted_at = now(), note = $5
		WHERE id = $1`, id, status, reportID, user, note)
	if err != nil {
		return fmt.Errorf("update quarantined message: %w", err)
	}
	return nil
}

// refuseAgain records that user processed the quarantined message id again
// and that it was refused for why.
func refuseAgain(ctx context.Context, tx pgx.Tx, id int64, user string, why dispatch.Refusal) error {
	_, err := tx.Exec(ctx, `UPDATE quarantine SET reason = $2, error_code = $3, error_location = $4,
			acted_by = $5, acted_at = now() WHERE id = $1`, id, why.Reason, why.Code, why.Location, user)
	if err != nil {
		return fmt.Errorf("update quarantined message: %w", err)
	}
	return nil
}

// keyOwner looks up the message recorded with in's key, without counting a
// transmission: its fingerprint, and whether it is the key the quarantined
// message id was refused with; found is false for a new key.
func keyOwner(ctx context.Context, q dispatch.DB, in dispatch.Inbound, id int64) (fingerprint []byte, own, found bool, err error) {
	err = q.QueryRow(ctx, `SELECT m.fingerprint, m.id IS NOT DISTINCT FROM (SELECT inbound_id FROM quarantine WHERE id = $5)
		FROM inbound_messages m
		WHERE kind = $1 AND sending_application = $2 AND sending_facility = $3 AND message_control_id = $4`,
		in.Kind, in.SendingApplication, in.SendingFacility, in.ControlID, id).Scan(&fingerprint, &own)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, false, nil
	}
	if err != nil {
		return nil, false, false, fmt.Errorf("look up inbound message: %w", err)
	}
	return fingerprint, own, true, nil
}
