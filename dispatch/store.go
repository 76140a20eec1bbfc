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

// storedInbound is a message already received.
type storedInbound struct {
	fingerprint []byte
	answer      Answer
	reportID    int64
}

// insertInbound records in, or returns the message already recorded with its
// key (dup not nil), after that message's transaction committed.
func insertInbound(ctx context.Context, tx pgx.Tx, in Inbound, a Answer) (id int64, dup *storedInbound, err error) {
	outcome := "rejected"
	if a.Accepted {
		outcome = "accepted"
	}
	err = tx.QueryRow(ctx, `INSERT INTO inbound_messages (kind, source, sending_application, sending_facility,
			message_control_id, message_type, fingerprint, outcome, response)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, ''::bytea))
		ON CONFLICT (kind, sending_application, sending_facility, message_control_id) DO NOTHING
		RETURNING id`,
		in.Kind, in.Source, in.SendingApplication, in.SendingFacility, in.ControlID, in.MessageType,
		in.Fingerprint, outcome, a.Response).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		prev, found, err := previousInbound(ctx, tx, in)
		if err != nil {
			return 0, nil, err
		}
		if !found {
			return 0, nil, fmt.Errorf("inbound message %s vanished", in.ControlID)
		}
		return 0, &prev, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("record inbound message: %w", err)
	}
	return id, nil, nil
}

// previousInbound returns the message recorded with in's key and counts one
// more transmission of it.
func previousInbound(ctx context.Context, q dbtx, in Inbound) (storedInbound, bool, error) {
	var prev storedInbound
	var reportID *int64
	err := q.QueryRow(ctx, `UPDATE inbound_messages m
		SET attempts = attempts + 1, last_received_at = now()
		WHERE kind = $1 AND sending_application = $2 AND sending_facility = $3 AND message_control_id = $4
		RETURNING fingerprint, response, outcome = 'accepted', (SELECT id FROM reports r WHERE r.inbound_id = m.id)`,
		in.Kind, in.SendingApplication, in.SendingFacility, in.ControlID).Scan(&prev.fingerprint, &prev.answer.Response,
		&prev.answer.Accepted, &reportID)
	if errors.Is(err, pgx.ErrNoRows) {
		return storedInbound{}, false, nil
	}
	if err != nil {
		return storedInbound{}, false, fmt.Errorf("look up inbound message: %w", err)
	}
	if reportID != nil {
		prev.reportID = *reportID
	}
	return prev, true, nil
}

func setInboundResponse(ctx context.Context, tx pgx.Tx, id int64, response []byte) error {
	if _, err := tx.Exec(ctx, "UPDATE inbound_messages SET response = $2 WHERE id = $1", id, response); err != nil {
		return fmt.Errorf("record response: %w", err)
	}
	return nil
}

func insertQuarantine(ctx context.Context, tx pgx.Tx, in Inbound, inboundID *int64, raw []byte, reason string) error {
	_, err := tx.Exec(ctx, `INSERT INTO quarantine (kind, source, inbound_id, message_control_id, reason, raw)
		VALUES ($1, $2, $3, $4, $5, $6)`, in.Kind, in.Source, inboundID, in.ControlID, reason, raw)
	if err != nil {
		return fmt.Errorf("insert quarantine: %w", err)
	}
	return nil
}

// insertReport stores r, received as the inbound message inboundID, with its
// document and recipients.
func insertReport(ctx context.Context, tx pgx.Tx, inboundID int64, in Inbound, r Report) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO reports (inbound_id, source, sending_application, sending_facility,
			message_control_id, message_type, action, document_id, parent_document_id, document_code, document_title,
			patient_family, patient_given, patient_birth_date, patient_sex, patient_ins, patient_ins_oid,
			patient_ins_qualified, patient_ipp, patient_address, service, author, reply_to, flags,
			body_professional, body_patient, status)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
			$21, $22, $23, $24, $25, $26, $27)
		RETURNING id`,
		inboundID, in.Source, in.SendingApplication, in.SendingFacility, in.ControlID, in.MessageType,
		r.Action, r.Document.ID, r.Document.ParentID, r.Document.Code, r.Document.Title,
		r.Patient.Family, r.Patient.Given, r.Patient.BirthDate, r.Patient.Sex, r.Patient.INS, r.Patient.INSOID,
		r.Patient.INSQualified, r.Patient.IPP, r.Patient.Address, r.Service, r.Author, r.ReplyTo, r.Flags,
		r.BodyProfessional, r.BodyPatient, ReportReceived).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert report: %w", err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO documents (report_id, cda, pdf) VALUES ($1, coalesce($2, ''::bytea), $3)",
		id, r.Document.CDA, r.Document.PDF); err != nil {
		return 0, fmt.Errorf("insert document: %w", err)
	}
	for i, rc := range r.Recipients {
		if _, err := tx.Exec(ctx, `INSERT INTO recipients (report_id, position, role, kind, national_id, rpps,
				finess, family, given, organisation, address, postal_address)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			id, i+1, rc.Role, rc.Kind, rc.NationalID, rc.RPPS, rc.FINESS, rc.Family, rc.Given, rc.Organisation, rc.Address,
			rc.PostalAddress); err != nil {
			return 0, fmt.Errorf("insert recipient %d: %w", i+1, err)
		}
	}
	return id, nil
}

// documentKnown reports whether a report carried documentID and no deletion
// withdrew it since.
func documentKnown(ctx context.Context, q dbtx, documentID string) (bool, error) {
	var known bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM reports WHERE document_id = $1 AND action <> 'delete')
		AND NOT EXISTS (SELECT 1 FROM reports WHERE document_id = $1 AND action = 'delete')`,
		documentID).Scan(&known)
	if err != nil {
		return false, fmt.Errorf("look up document: %w", err)
	}
	return known, nil
}

// stopPendingDeliveries moves the deliveries of documentID that have not left
// yet to status (superseded or cancelled).
func stopPendingDeliveries(ctx context.Context, q dbtx, documentID, status string) error {
	_, err := q.Exec(ctx, `UPDATE deliveries d SET status = $2, updated_at = now()
		FROM reports r
		WHERE r.id = d.report_id AND r.document_id = $1 AND d.status IN ('review', 'scheduled', 'queued')`,
		documentID, status)
	if err != nil {
		return fmt.Errorf("stop pending deliveries: %w", err)
	}
	return nil
}

// servedRecipients returns who received documentID by MSSanté, once per address.
func servedRecipients(ctx context.Context, q dbtx, documentID string) ([]Recipient, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT ON (d.address) rc.kind, rc.national_id, rc.rpps, rc.finess,
			rc.family, rc.given, rc.organisation, d.address
		FROM deliveries d JOIN recipients rc ON rc.id = d.recipient_id JOIN reports r ON r.id = d.report_id
		WHERE r.document_id = $1 AND d.channel = 'mssante' AND d.status IN ('sent', 'delivered', 'read')
		ORDER BY d.address, d.id`, documentID)
	if err != nil {
		return nil, fmt.Errorf("list served recipients: %w", err)
	}
	served, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Recipient, error) {
		r := Recipient{Role: RoleServed}
		err := row.Scan(&r.Kind, &r.NationalID, &r.RPPS, &r.FINESS, &r.Family, &r.Given, &r.Organisation, &r.Address)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("list served recipients: %w", err)
	}
	return served, nil
}

// storedRecipient is a recipient row.
type storedRecipient struct {
	ID int64
	Recipient
}

// unresolvedRecipients returns the report's flags and patient, and its
// recipients that have no delivery yet.
func unresolvedRecipients(ctx context.Context, q dbtx, reportID int64) (Flags, Patient, []storedRecipient, error) {
	var flags Flags
	var p Patient
	if err := q.QueryRow(ctx, `SELECT flags, patient_ins, patient_ins_qualified, patient_address
		FROM reports WHERE id = $1`, reportID).Scan(&flags, &p.INS, &p.INSQualified, &p.Address); err != nil {
		return Flags{}, Patient{}, nil, fmt.Errorf("load report %d: %w", reportID, err)
	}
	rows, err := q.Query(ctx, `SELECT r.id, r.role, r.kind, r.national_id, r.rpps, r.finess, r.family, r.given,
			r.organisation, r.address, r.postal_address
		FROM recipients r
		WHERE r.report_id = $1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.recipient_id = r.id)
		ORDER BY r.position`, reportID)
	if err != nil {
		return Flags{}, Patient{}, nil, fmt.Errorf("list recipients: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storedRecipient, error) {
		var s storedRecipient
		err := row.Scan(&s.ID, &s.Role, &s.Kind, &s.NationalID, &s.RPPS, &s.FINESS, &s.Family, &s.Given,
			&s.Organisation, &s.Address, &s.PostalAddress)
		return s, err
	})
	if err != nil {
		return Flags{}, Patient{}, nil, fmt.Errorf("list recipients: %w", err)
	}
	return flags, p, out, nil
}

// newDelivery is a delivery about to be created.
type newDelivery struct {
	RecipientID   int64
	Channel       string
	Status        string
	Address       string
	Name          string
	PostalAddress PostalAddress
	Reason        string
	ReasonText    string
	MessageID     string // set for mssante deliveries
}

// insertDelivery creates d and returns its id; created is false when the
// recipient already had a delivery on that channel.
func insertDelivery(ctx context.Context, tx pgx.Tx, reportID int64, d newDelivery) (id int64, created bool, err error) {
	var messageID *string
	if d.MessageID != "" {
		messageID = &d.MessageID
	}
	err = tx.QueryRow(ctx, `INSERT INTO deliveries (report_id, recipient_id, channel, status, address,
			recipient_name, postal_address, reason, reason_text, message_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (recipient_id, channel) DO NOTHING
		RETURNING id`,
		reportID, d.RecipientID, d.Channel, d.Status, d.Address, d.Name, d.PostalAddress, d.Reason, d.ReasonText,
		messageID).Scan(&id)
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
	Action     Action
	Status     string
	Channel    string
	Address    string
	MessageID  string
	Patient    Patient
	Document   Document
	// Recipient is the person or organisation the delivery goes to (its Kind
	// chooses the body).
	Recipient Recipient
	Author    Recipient
	ReplyTo   string
	Flags     Flags
	// BodyProfessional and BodyPatient are the DPI's CORPSMAIL_PS and
	// CORPSMAIL_PATIENT, empty for the default texts.
	BodyProfessional, BodyPatient string
}

func loadOutgoing(ctx context.Context, q dbtx, deliveryID int64) (outgoing, error) {
	var o outgoing
	err := q.QueryRow(ctx, `SELECT d.id, r.action, d.status, d.channel, d.address, coalesce(d.message_id, ''),
			r.patient_family, r.patient_given, r.patient_birth_date, r.patient_sex, r.patient_ins, r.patient_ins_oid,
			r.patient_ins_qualified, r.patient_ipp,
			r.document_id, r.document_code, r.document_title, doc.cda, doc.pdf,
			rc.role, rc.kind, rc.national_id, rc.rpps, rc.finess, rc.family, rc.given, rc.organisation, rc.address,
			r.author, r.reply_to, r.flags, r.body_professional, r.body_patient
		FROM deliveries d JOIN reports r ON r.id = d.report_id JOIN documents doc ON doc.report_id = r.id
			JOIN recipients rc ON rc.id = d.recipient_id
		WHERE d.id = $1`, deliveryID).Scan(&o.DeliveryID, &o.Action, &o.Status, &o.Channel, &o.Address, &o.MessageID,
		&o.Patient.Family, &o.Patient.Given, &o.Patient.BirthDate, &o.Patient.Sex, &o.Patient.INS, &o.Patient.INSOID,
		&o.Patient.INSQualified, &o.Patient.IPP,
		&o.Document.ID, &o.Document.Code, &o.Document.Title, &o.Document.CDA, &o.Document.PDF,
		&o.Recipient.Role, &o.Recipient.Kind, &o.Recipient.NationalID, &o.Recipient.RPPS, &o.Recipient.FINESS,
		&o.Recipient.Family, &o.Recipient.Given, &o.Recipient.Organisation, &o.Recipient.Address,
		&o.Author, &o.ReplyTo, &o.Flags, &o.BodyProfessional, &o.BodyPatient)
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
			     WHEN d.recipient_name <> '' THEN d.recipient_name
			     ELSE coalesce(nullif(trim(both ' ' FROM r.given || ' ' || r.family), ''), r.organisation) END,
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
