package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// This file holds every SQL statement of the package.

// dbtx is a pool or a transaction.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// insertReport stores r with its document and recipients. When the message was
// already stored (same sender and control id) it stores nothing and returns the
// existing report's id with duplicate true.
func insertReport(ctx context.Context, tx pgx.Tx, r Report) (id int64, duplicate bool, err error) {
	err = tx.QueryRow(ctx, `INSERT INTO reports (source, sending_application, sending_facility,
			message_control_id, message_type, document_id, document_code, document_title,
			patient_family, patient_given, patient_birth_date, patient_sex, patient_ins, patient_ins_oid,
			patient_ipp, status)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		ON CONFLICT (sending_application, sending_facility, message_control_id) DO NOTHING
		RETURNING id`,
		r.Source, r.SendingApplication, r.SendingFacility, r.ControlID, r.MessageType,
		r.Document.ID, r.Document.Code, r.Document.Title,
		r.Patient.Family, r.Patient.Given, r.Patient.BirthDate, r.Patient.Sex, r.Patient.INS, r.Patient.INSOID,
		r.Patient.IPP, ReportReceived).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		err = tx.QueryRow(ctx, `SELECT id FROM reports
			WHERE sending_application = $1 AND sending_facility = $2 AND message_control_id = $3`,
			r.SendingApplication, r.SendingFacility, r.ControlID).Scan(&id)
		if err != nil {
			return 0, false, fmt.Errorf("find retransmitted report: %w", err)
		}
		return id, true, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("insert report: %w", err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO documents (report_id, cda, pdf) VALUES ($1, $2, $3)",
		id, r.Document.CDA, r.Document.PDF); err != nil {
		return 0, false, fmt.Errorf("insert document: %w", err)
	}
	for i, rc := range r.Recipients {
		if _, err := tx.Exec(ctx, `INSERT INTO recipients (report_id, position, role, national_id, rpps, family, given, address)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			id, i+1, rc.Role, rc.NationalID, rc.RPPS, rc.Family, rc.Given, rc.Address); err != nil {
			return 0, false, fmt.Errorf("insert recipient %d: %w", i+1, err)
		}
	}
	return id, false, nil
}

// storedRecipient is a recipient row.
type storedRecipient struct {
	ID int64
	Recipient
}

// unresolvedRecipients returns the report's recipients that have no delivery yet.
func unresolvedRecipients(ctx context.Context, q dbtx, reportID int64) ([]storedRecipient, error) {
	rows, err := q.Query(ctx, `SELECT r.id, r.role, r.national_id, r.rpps, r.family, r.given, r.address
		FROM recipients r
		WHERE r.report_id = $1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.recipient_id = r.id)
		ORDER BY r.position`, reportID)
	if err != nil {
		return nil, fmt.Errorf("list recipients: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storedRecipient, error) {
		var s storedRecipient
		err := row.Scan(&s.ID, &s.Role, &s.NationalID, &s.RPPS, &s.Family, &s.Given, &s.Address)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("list recipients: %w", err)
	}
	return out, nil
}

// newDelivery is a delivery about to be created.
type newDelivery struct {
	RecipientID int64
	Channel     string
	Status      string
	Address     string
	Reason      string
	ReasonText  string
	MessageID   string // set for mssante deliveries
}

// insertDelivery creates d and returns its id; created is false when the
// recipient already had a delivery on that channel.
func insertDelivery(ctx context.Context, tx pgx.Tx, reportID int64, d newDelivery) (id int64, created bool, err error) {
	var messageID *string
	if d.MessageID != "" {
		messageID = &d.MessageID
	}
	err = tx.QueryRow(ctx, `INSERT INTO deliveries (report_id, recipient_id, channel, status, address, reason, reason_text, message_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (recipient_id, channel) DO NOTHING
		RETURNING id`,
		reportID, d.RecipientID, d.Channel, d.Status, d.Address, d.Reason, d.ReasonText, messageID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("insert delivery: %w", err)
	}
	return id, true, nil
}

func setReportStatus(ctx context.Context, q dbtx, reportID int64, status string) error {
	if _, err := q.Exec(ctx, "UPDATE reports SET status = $2, updated_at = now() WHERE id = $1", reportID, status); err != nil {
		return fmt.Errorf("set report status: %w", err)
	}
	return nil
}

// outgoing is everything the send job needs of a delivery.
type outgoing struct {
	DeliveryID int64
	Status     string
	Address    string
	MessageID  string
	Patient    Patient
	Document   Document
}

func loadOutgoing(ctx context.Context, q dbtx, deliveryID int64) (outgoing, error) {
	var o outgoing
	err := q.QueryRow(ctx, `SELECT d.id, d.status, d.address, d.message_id,
			r.patient_family, r.patient_given, r.patient_birth_date, r.patient_sex, r.patient_ins, r.patient_ins_oid, r.patient_ipp,
			r.document_id, r.document_code, r.document_title, doc.cda, doc.pdf
		FROM deliveries d JOIN reports r ON r.id = d.report_id JOIN documents doc ON doc.report_id = r.id
		WHERE d.id = $1`, deliveryID).Scan(&o.DeliveryID, &o.Status, &o.Address, &o.MessageID,
		&o.Patient.Family, &o.Patient.Given, &o.Patient.BirthDate, &o.Patient.Sex, &o.Patient.INS, &o.Patient.INSOID, &o.Patient.IPP,
		&o.Document.ID, &o.Document.Code, &o.Document.Title, &o.Document.CDA, &o.Document.PDF)
	if errors.Is(err, pgx.ErrNoRows) {
		return outgoing{}, fmt.Errorf("delivery %d: %w", deliveryID, ErrNotFound)
	}
	if err != nil {
		return outgoing{}, fmt.Errorf("load delivery %d: %w", deliveryID, err)
	}
	return o, nil
}

// setDeliveryStatus moves a delivery from one status to another and reports
// whether it was in the from status.
func setDeliveryStatus(ctx context.Context, q dbtx, deliveryID int64, from, to, lastError string) (bool, error) {
	tag, err := q.Exec(ctx, `UPDATE deliveries SET status = $3, last_error = $4, updated_at = now(),
			sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END
		WHERE id = $1 AND status = $2`, deliveryID, from, to, lastError)
	if err != nil {
		return false, fmt.Errorf("set delivery %d %s: %w", deliveryID, to, err)
	}
	return tag.RowsAffected() == 1, nil
}

// recordDeliveryError keeps the last transient error of a delivery.
func recordDeliveryError(ctx context.Context, q dbtx, deliveryID int64, lastError string) error {
	if _, err := q.Exec(ctx, "UPDATE deliveries SET last_error = $2, updated_at = now() WHERE id = $1", deliveryID, lastError); err != nil {
		return fmt.Errorf("record delivery %d error: %w", deliveryID, err)
	}
	return nil
}

// reportView loads a report by id, or the latest with a document id when id is 0.
func reportView(ctx context.Context, q dbtx, id int64, documentID string) (ReportView, error) {
	var v ReportView
	err := q.QueryRow(ctx, `SELECT id, document_id, status, received_at FROM reports
		WHERE ($1 <> 0 AND id = $1) OR ($1 = 0 AND document_id = $2)
		ORDER BY id DESC LIMIT 1`, id, documentID).Scan(&v.ID, &v.DocumentID, &v.Status, &v.ReceivedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return ReportView{}, ErrNotFound
	}
	if err != nil {
		return ReportView{}, fmt.Errorf("load report: %w", err)
	}
	rows, err := q.Query(ctx, `SELECT
			CASE WHEN d.channel = 'mssante' AND d.address <> '' THEN d.address
			     ELSE trim(both ' ' FROM r.given || ' ' || r.family) END,
			r.rpps, d.channel, d.status, d.reason, d.reason_text, d.updated_at, d.sent_at
		FROM deliveries d JOIN recipients r ON r.id = d.recipient_id
		WHERE d.report_id = $1 ORDER BY r.position, d.channel`, v.ID)
	if err != nil {
		return ReportView{}, fmt.Errorf("load deliveries: %w", err)
	}
	v.Deliveries, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeliveryView, error) {
		var d DeliveryView
		var sentAt *time.Time
		err := row.Scan(&d.Recipient, &d.RPPS, &d.Channel, &d.Status, &d.Reason, &d.ReasonText, &d.UpdatedAt, &sentAt)
		d.SentAt = sentAt
		return d, err
	})
	if err != nil {
		return ReportView{}, fmt.Errorf("load deliveries: %w", err)
	}
	return v, nil
}
