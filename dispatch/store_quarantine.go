package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// This file holds the SQL of the quarantine (store_retention.go purges it).

// insertQuarantine keeps the message in refused for why, in tx.
func insertQuarantine(ctx context.Context, tx pgx.Tx, in Inbound, inboundID *int64, raw []byte, why Refusal) error {
	_, err := tx.Exec(ctx, `INSERT INTO quarantine (kind, source, inbound_id, sending_application, sending_facility,
			message_control_id, message_type, service, reason, error_code, error_location, patient, document, partial, raw)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		in.Kind, in.Source, inboundID, in.SendingApplication, in.SendingFacility, in.ControlID, in.MessageType, in.Service,
		why.Reason, why.Code, why.Location, why.Patient, why.Document, why.Partial, raw)
	if err != nil {
		return fmt.Errorf("insert quarantine: %w", err)
	}
	return nil
}

// quarantineSeen is the quarantine q, each row with whether the viewer of
// the services $1 (NULL: every service) sees it whole (v.visible): a
// message of one of them, of a known service.
const quarantineSeen = `quarantine q,
	LATERAL (SELECT $1::text[] IS NULL OR (q.service <> '' AND q.service = ANY($1::text[])) AS visible) v`

// quarantineColumns are the columns of a QuarantinedMessage, in order, from
// quarantineSeen: the patient data only for a viewer who sees it whole.
const quarantineColumns = `q.id, q.received_at, q.kind, q.source, q.sending_application, q.sending_facility,
	q.message_control_id, q.message_type, q.service, q.error_code, q.error_location,
	CASE WHEN v.visible THEN q.reason ELSE '' END, CASE WHEN v.visible THEN q.patient ELSE '' END,
	CASE WHEN v.visible THEN q.document ELSE '' END, NOT v.visible,
	octet_length(q.raw), q.purged_at IS NOT NULL, q.partial, q.status, coalesce(q.report_id, 0), q.acted_by, q.acted_at,
	CASE WHEN v.visible THEN q.note ELSE '' END`

// listQuarantine returns at most limit quarantined messages older than the
// id before (0: from the newest), in status (all when empty), newest first,
// without their bytes; the patient data of a message whose service is not
// among services (unless nil) stays in the database.
func listQuarantine(ctx context.Context, q DB, before int64, limit int, status QuarantineStatus, services []string) ([]QuarantinedMessage, error) {
	rows, err := q.Query(ctx, `SELECT `+quarantineColumns+` FROM `+quarantineSeen+`
		WHERE ($2 <= 0 OR q.id < $2) AND ($3 = '' OR q.status = $3)
		ORDER BY q.id DESC LIMIT $4`, services, before, status, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[QuarantinedMessage])
}

// quarantinedMessage returns the quarantined message id as a viewer of
// services sees it, with its bytes (empty when purged), or ErrNotFound.
func quarantinedMessage(ctx context.Context, q DB, id int64, services []string) (QuarantinedMessage, []byte, error) {
	var m QuarantinedMessage
	var raw []byte
	err := q.QueryRow(ctx, `SELECT `+quarantineColumns+`, q.raw FROM `+quarantineSeen+` WHERE q.id = $2`, services, id).Scan(
		&m.ID, &m.ReceivedAt, &m.Kind, &m.Source, &m.SendingApplication, &m.SendingFacility, &m.ControlID, &m.MessageType,
		&m.Service, &m.ErrorCode, &m.ErrorLocation, &m.Reason, &m.Patient, &m.Document, &m.Restricted, &m.Size, &m.Purged,
		&m.Partial, &m.Status, &m.ReportID, &m.ActedBy, &m.ActedAt, &m.Note, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return QuarantinedMessage{}, nil, ErrNotFound
	}
	return m, raw, err
}

// quarantineRaw returns the bytes of the quarantined message id (empty when
// purged), or ErrNotFound.
func quarantineRaw(ctx context.Context, q DB, id int64) ([]byte, error) {
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

// lockQuarantined locks the row of the quarantined message id in tx, for a
// change to status to by a viewer of services (nil: all), and returns the
// id of the key it was refused with (0 when it had none of its own). It
// returns ErrNotFound when the viewer does not see the message whole, an
// error wrapping ErrQuarantineHandled when its status may not become to
// (quarantineNext).
func lockQuarantined(ctx context.Context, tx pgx.Tx, id int64, services []string, to QuarantineStatus) (inboundID int64, err error) {
	var status QuarantineStatus
	var visible bool
	err = tx.QueryRow(ctx, `SELECT q.status, coalesce(q.inbound_id, 0), v.visible FROM `+quarantineSeen+`
		WHERE q.id = $2 FOR UPDATE OF q`, services, id).Scan(&status, &inboundID, &visible)
	switch {
	case errors.Is(err, pgx.ErrNoRows), err == nil && !visible:
		return 0, ErrNotFound
	case err != nil:
		return 0, fmt.Errorf("lock quarantined message: %w", err)
	case !slices.Contains(quarantineNext[status], to):
		return 0, fmt.Errorf("%w: %s, not %s", ErrQuarantineHandled, status, to)
	}
	return inboundID, nil
}

// actOnQuarantined records that user took the quarantined message id to
// status, accepted as the report reportID (0: none) or set aside for note.
func actOnQuarantined(ctx context.Context, tx pgx.Tx, id int64, status QuarantineStatus, user string, reportID int64, note string) error {
	_, err := tx.Exec(ctx, `UPDATE quarantine SET status = $2, report_id = NULLIF($3, 0), acted_by = $4, acted_at = now(), note = $5
		WHERE id = $1`, id, status, reportID, user, note)
	if err != nil {
		return fmt.Errorf("update quarantined message: %w", err)
	}
	return nil
}

// refuseAgain records that user processed the quarantined message id again
// and that it was refused for why.
func refuseAgain(ctx context.Context, tx pgx.Tx, id int64, user string, why Refusal) error {
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
func keyOwner(ctx context.Context, q DB, in Inbound, id int64) (fingerprint []byte, own, found bool, err error) {
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

// acceptInbound records that the message with key id, refused until now, is
// accepted (its response is set once its report is stored).
func acceptInbound(ctx context.Context, tx pgx.Tx, id int64, in Inbound) error {
	_, err := tx.Exec(ctx, `UPDATE inbound_messages SET outcome = 'accepted', fingerprint = $2, response = ''::bytea
		WHERE id = $1`, id, in.Fingerprint)
	if err != nil {
		return fmt.Errorf("accept inbound message: %w", err)
	}
	return nil
}
