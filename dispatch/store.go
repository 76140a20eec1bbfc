package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/correspondents"
)

// This file holds the package's SQL; the exported functions are the store
// of package dispatch/worker, which runs the domain's jobs, and of package
// dispatch/desk, which does what people do to a delivery.

// DB is what the store's statements run on: a pool or a transaction (the
// domain's and package letters', which reads and batches the domain's
// deliveries).
type DB interface {
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
	b := &pgx.Batch{}
	queueInsertInbound(b, in, a, &id)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, nil, err
	}
	if id != 0 {
		return id, nil, nil
	}
	dup, err = recordedInbound(ctx, tx, in)
	return 0, dup, err
}

// queueInsertInbound queues in b the insert of in's key with its answer a:
// once b is sent, *id is the key's row, or 0 when the key was recorded
// already (recordedInbound returns that message).
func queueInsertInbound(b *pgx.Batch, in Inbound, a Answer, id *int64) {
	outcome := "rejected"
	if a.Accepted {
		outcome = "accepted"
	}
	b.Queue(`INSERT INTO inbound_messages (kind, source, sending_application, sending_facility,
			message_control_id, message_type, fingerprint, outcome, response)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, ''::bytea))
		ON CONFLICT (kind, sending_application, sending_facility, message_control_id) DO NOTHING
		RETURNING id`,
		in.Kind, in.Source, in.SendingApplication, in.SendingFacility, in.ControlID, in.MessageType,
		in.Fingerprint, outcome, a.Response).QueryRow(func(row pgx.Row) error {
		err := row.Scan(id)
		if errors.Is(err, pgx.ErrNoRows) {
			*id = 0
			return nil
		}
		if err != nil {
			return fmt.Errorf("record inbound message: %w", err)
		}
		return nil
	})
}

// recordedInbound returns the message recorded with in's key, which
// queueInsertInbound found, after that message's transaction committed.
func recordedInbound(ctx context.Context, tx pgx.Tx, in Inbound) (*storedInbound, error) {
	prev, found, err := previousInbound(ctx, tx, in)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("inbound message %s vanished", in.ControlID)
	}
	return &prev, nil
}

// receivedKey records the key of in, accepted, and reads the documents
// stored with one of ids or replacing one (queueStoredDocuments), in one round
// trip. refusedID, when not 0, is the key Reject recorded for in, which is
// accepted rather than recorded anew. inboundID is 0 when the key was
// recorded already: dup is that message.
func receivedKey(ctx context.Context, tx pgx.Tx, in Inbound, refusedID int64, ids []string) (inboundID int64, dup *storedInbound, stored []storedDocument, err error) {
	b := &pgx.Batch{}
	if inboundID = refusedID; refusedID != 0 {
		queueAcceptInbound(b, refusedID, in)
	} else {
		queueInsertInbound(b, in, Answer{Accepted: true}, &inboundID)
	}
	queueStoredDocuments(b, ids, &stored)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, nil, nil, err
	}
	if inboundID == 0 {
		dup, err = recordedInbound(ctx, tx, in)
	}
	return inboundID, dup, stored, err
}

// previousInbound returns the message recorded with in's key and counts one
// more transmission of it.
func previousInbound(ctx context.Context, q DB, in Inbound) (storedInbound, bool, error) {
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

// queueAcceptInbound queues in b the acceptance of the message with key id,
// refused until now (its response is set once its report is stored).
func queueAcceptInbound(b *pgx.Batch, id int64, in Inbound) {
	b.Queue(`UPDATE inbound_messages SET outcome = 'accepted', fingerprint = $2, response = ''::bytea
		WHERE id = $1`, id, in.Fingerprint)
}

// insertQuarantine keeps the message in refused for why, in tx. What it
// read of the message goes in text columns as storable text: a message
// refused for its bytes must still be kept (its raw bytes are, whole).
func insertQuarantine(ctx context.Context, tx pgx.Tx, in Inbound, inboundID *int64, raw []byte, why Refusal) error {
	_, err := tx.Exec(ctx, `INSERT INTO quarantine (kind, source, inbound_id, sending_application, sending_facility,
			message_control_id, message_type, service, reason, error_code, error_location, patient, document, partial, raw)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		in.Kind, in.Source, inboundID, in.SendingApplication, in.SendingFacility, in.ControlID, storable(in.MessageType),
		storable(in.Service), storable(why.Reason), why.Code, storable(why.Location), storable(why.Patient),
		storable(why.Document), why.Partial, raw)
	if err != nil {
		return fmt.Errorf("insert quarantine: %w", err)
	}
	return nil
}

// storable returns s as PostgreSQL's text takes it: valid UTF-8 without
// NUL, anything else replaced by U+FFFD.
func storable(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// insertReport stores r, received as the inbound message inboundID, with its
// documents, its recipients and the events of its warnings, in one round
// trip, and returns its id and when the database recorded it received.
func insertReport(ctx context.Context, tx pgx.Tx, inboundID int64, in Inbound, r *Report) (id int64, receivedAt time.Time, err error) {
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO reports (inbound_id, source, sending_application, sending_facility,
			receiving_application, receiving_facility,
			message_control_id, message_type, action, document_id, parent_document_id, document_code, document_title,
			patient_family, patient_given, patient_birth_date, patient_sex, patient_ins, patient_ins_oid,
			patient_ins_qualified, patient_ipp, patient_address, service, author, reply_to, flags,
			body_professional, body_patient, status, confidentiality, patient_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
			$21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31)
		RETURNING id, received_at`,
		inboundID, in.Source, in.SendingApplication, in.SendingFacility, in.ReceivingApplication, in.ReceivingFacility,
		in.ControlID, in.MessageType,
		r.Action, r.Document.ID, r.Document.ParentID, r.Document.Code, r.Document.Title,
		r.Patient.Family, r.Patient.Given, r.Patient.BirthDate, r.Patient.Sex, r.Patient.INS, r.Patient.INSOID,
		r.Patient.INSQualified, r.Patient.IPP, r.Patient.Address, r.Service, r.Author, r.ReplyTo, r.Flags,
		r.BodyProfessional, r.BodyPatient, ReportReceived, r.Document.Confidentiality,
		correspondents.SearchKey(r.Patient.Family+" "+r.Patient.Given)).QueryRow(func(row pgx.Row) error {
		return row.Scan(&id, &receivedAt)
	})
	// The report's rows name it by its message, its id being unknown yet.
	for i, d := range r.documents() {
		pdf := d.PDF
		if d.PDFInCDA {
			pdf = nil // the CDA holds it: StoredPDF takes it from there
		}
		b.Queue(`INSERT INTO documents (report_id, position, document_id, parent_document_id, cda, cda_sha256, pdf, pdf_in_cda)
			VALUES (`+reportOfInbound+`, $2, $3, $4, coalesce($5, ''::bytea), $6, $7, $8)`,
			inboundID, i+1, d.ID, d.ParentID, d.CDA, d.sum(), pdf, d.PDFInCDA)
	}
	for i, rc := range r.Recipients {
		b.Queue(insertRecipientSQL(reportOfInbound), recipientValues(inboundID, i+1, rc)...)
	}
	queueReportEvents(b, reportOfInbound, inboundID, warningEvents(r.Warnings))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, time.Time{}, fmt.Errorf("insert report: %w", err)
	}
	return id, receivedAt, nil
}

// The report the statements that add rows to one name, as $1: by its id,
// or, in insertReport's batch, where its id is not known yet, by the
// inbound message it came in with (reports_inbound_id_idx: one report a
// message).
const (
	reportOfID      = `$1`
	reportOfInbound = `(SELECT id FROM reports WHERE inbound_id = $1)`
)

// queueStoredDocuments queues in b the read, into *out, of the documents
// received with one of ids, or replacing one, oldest first.
func queueStoredDocuments(b *pgx.Batch, ids []string, out *[]storedDocument) {
	b.Queue(`SELECT doc.document_id, doc.parent_document_id, doc.report_id, r.action, doc.cda_sha256
		FROM documents doc JOIN reports r ON r.id = doc.report_id
		WHERE doc.document_id = ANY ($1) OR doc.parent_document_id = ANY ($1) ORDER BY doc.report_id`, ids).Query(func(rows pgx.Rows) error {
		var err error
		if *out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[storedDocument]); err != nil {
			return fmt.Errorf("look up documents: %w", err)
		}
		return nil
	})
}

// queueReceivedAt queues in b the read of when report id was received, as
// the database recorded it, into *at.
func queueReceivedAt(b *pgx.Batch, id int64, at *time.Time) {
	b.Queue(`SELECT received_at FROM reports WHERE id = $1`, id).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(at); err != nil {
			return fmt.Errorf("report %d: when received: %w", id, err)
		}
		return nil
	})
}

// reportEvent is an event of a report as a whole (report_events).
type reportEvent struct {
	Event  Event
	Detail string
}

// Events of a report as a whole, in its history besides its deliveries'.
const (
	// ReportEventWarning: the intake ignored something of the message
	// without refusing it (a Warning).
	ReportEventWarning Event = "intake_warning"
	// ReportEventResent: the DPI sent the report's documents again.
	ReportEventResent Event = "dpi_resent"
)

// warningEvents are the history events of warnings.
func warningEvents(warnings []Warning) []reportEvent {
	out := make([]reportEvent, len(warnings))
	for i, w := range warnings {
		out[i] = reportEvent{Event: ReportEventWarning, Detail: w.Msg}
	}
	return out
}

// queueReportEvents queues in b the events appended to the history of the
// report that report (reportOfID, reportOfInbound) names with arg.
func queueReportEvents(b *pgx.Batch, report string, arg any, events []reportEvent) {
	for _, e := range events {
		b.Queue(`INSERT INTO report_events (report_id, event, detail) VALUES (`+report+`, $2, $3)`, arg, e.Event, e.Detail)
	}
}

// loadDocument returns report reportID's (first) document as stored (empty
// once purged; StoredPDF makes its PDF), or ErrNotFound.
func loadDocument(ctx context.Context, q DB, reportID int64) (cdaDoc, pdf []byte, inCDA bool, err error) {
	err = q.QueryRow(ctx, `SELECT cda, pdf, pdf_in_cda FROM documents WHERE report_id = $1 AND position = 1`, reportID).Scan(&cdaDoc, &pdf, &inCDA)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, false, fmt.Errorf("document of report %d: %w", reportID, ErrNotFound)
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("load document of report %d: %w", reportID, err)
	}
	return cdaDoc, pdf, inCDA, nil
}

// ReportPDF returns the stored PDF of a report's document, or ErrNotFound
// (a CDA without PDF, or purged).
func ReportPDF(ctx context.Context, q *pgxpool.Pool, reportID int64) ([]byte, error) {
	cdaDoc, pdf, inCDA, err := loadDocument(ctx, q, reportID)
	if err == nil {
		pdf, err = StoredPDF(pdf, inCDA, func() ([]byte, error) { return cda.ExtractPDF(cdaDoc) })
	}
	if err == nil && len(pdf) == 0 {
		err = ErrNotFound
	}
	return pdf, err
}

// StoredPDF is a stored document's PDF: its pdf column, or, when its CDA
// embeds it (pdf_in_cda), the CDA's, which cdaPDF extracts (cda.ExtractPDF,
// or Tree.PDF for a caller that reads the tree anyway).
func StoredPDF(pdf []byte, inCDA bool, cdaPDF func() ([]byte, error)) ([]byte, error) {
	if !inCDA {
		return pdf, nil
	}
	pdf, err := cdaPDF()
	if err != nil {
		return nil, fmt.Errorf("the PDF of the stored CDA: %w", err)
	}
	return pdf, nil
}

// insertRecipientSQL inserts a recipient (recipientValues) of the report
// that report (reportOfID, reportOfInbound) names.
func insertRecipientSQL(report string) string {
	return `INSERT INTO recipients (report_id, position, role, kind, national_id, rpps,
		finess, family, given, organisation, address, postal_address, name_key)
	VALUES (` + report + `, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`
}

// recipientValues are the values of insertRecipientSQL for rc at position,
// of the report report names.
func recipientValues(report int64, position int, rc Recipient) []any {
	return []any{report, position, rc.Role, rc.Kind, rc.NationalID, rc.RPPS, rc.FINESS, rc.Family, rc.Given,
		rc.Organisation, rc.Address, rc.PostalAddress, correspondents.SearchKey(rc.Family + " " + rc.Given + " " + rc.Organisation)}
}

// InsertRecipient adds rc to the report at position (NextRecipientPosition)
// and returns its id.
func InsertRecipient(ctx context.Context, tx pgx.Tx, reportID int64, position int, rc Recipient) (int64, error) {
	var id int64
	if err := tx.QueryRow(ctx, insertRecipientSQL(reportOfID), recipientValues(reportID, position, rc)...).Scan(&id); err != nil {
		return 0, fmt.Errorf("insert recipient %d: %w", position, err)
	}
	return id, nil
}

// documentKnown reports whether a report carried documentID and no deletion
// withdrew it since, of stored, documents read with documentID among their
// ids (queueStoredDocuments).
func documentKnown(stored []storedDocument, documentID string) bool {
	carried := false
	for _, d := range stored {
		if d.ID == documentID {
			if d.Action == ActionDelete {
				return false
			}
			carried = true
		}
	}
	return carried
}

// queueStopPendingDeliveries queues in b the move of the deliveries of
// documentID that have not left yet (pendingStatuses) to status, superseded
// or cancelled, with event, and the record of each change. An email being
// sent (queued with sending_at set) is left alone: it may be at the operator
// already, and its send job records the outcome.
func queueStopPendingDeliveries(b *pgx.Batch, documentID string, status Status, event Event) error {
	for _, from := range pendingStatuses {
		if err := Allowed(from, status); err != nil {
			return err
		}
	}
	b.Queue(`WITH stopped AS (
			SELECT d.id, d.status FROM deliveries d JOIN documents doc ON doc.report_id = d.report_id
			WHERE doc.document_id = $1 AND d.status = ANY ($3) AND d.sending_at IS NULL FOR UPDATE OF d
		), moved AS (
			UPDATE deliveries d SET status = $2, updated_at = now() FROM stopped s WHERE d.id = s.id
			RETURNING d.id, s.status AS from_status
		)
		INSERT INTO delivery_events (delivery_id, from_status, to_status, event, actor_kind, detail)
		SELECT id, from_status, $2, $4, 'system', 'document ' || $1 FROM moved`,
		documentID, status, pendingStatuses, event)
	return nil
}

// queueServedRecipients queues in b the read of who received documentID by
// MSSanté, once per address, handed to served.
func queueServedRecipients(b *pgx.Batch, documentID string, served func([]Recipient)) {
	b.Queue(`SELECT DISTINCT ON (d.address) rc.kind, rc.national_id, rc.rpps, rc.finess,
			rc.family, rc.given, rc.organisation, d.address
		FROM deliveries d JOIN recipients rc ON rc.id = d.recipient_id JOIN documents doc ON doc.report_id = d.report_id
		WHERE doc.document_id = $1 AND d.channel = 'mssante' AND d.status IN ('sent', 'delivered', 'read')
		ORDER BY d.address, d.id`, documentID).Query(func(rows pgx.Rows) error {
		rs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Recipient, error) {
			r := Recipient{Role: RoleServed}
			err := row.Scan(&r.Kind, &r.NationalID, &r.RPPS, &r.FINESS, &r.Family, &r.Given, &r.Organisation, &r.Address)
			return r, err
		})
		if err != nil {
			return fmt.Errorf("list served recipients: %w", err)
		}
		served(rs)
		return nil
	})
}

// StoredRecipient is a recipient of a report as stored: its id and what
// the DPI listed.
type StoredRecipient struct {
	ID int64
	Recipient
}

// unresolvedRecipients returns what the rules need of a report, and its
// recipients that have no delivery yet.
func unresolvedRecipients(ctx context.Context, q DB, reportID int64) (reportFacts, []StoredRecipient, error) {
	rf, err := loadReportFacts(ctx, q, reportID)
	if err != nil {
		return reportFacts{}, nil, err
	}
	rows, err := q.Query(ctx, `SELECT `+recipientColumns+`
		FROM recipients r
		WHERE r.report_id = $1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.recipient_id = r.id)
		ORDER BY r.position`, reportID)
	if err != nil {
		return reportFacts{}, nil, fmt.Errorf("list recipients: %w", err)
	}
	out, err := scanRecipients(rows)
	if err != nil {
		return reportFacts{}, nil, err
	}
	return rf, out, nil
}

// reportRecipients returns what the rules need of a report and all its
// recipients, with or without deliveries, and whether the correspondents
// listed outside PRT RCT were sent to (they have deliveries).
func reportRecipients(ctx context.Context, q DB, reportID int64) (rf reportFacts, recipients []StoredRecipient, usedFallbacks bool, err error) {
	if rf, err = loadReportFacts(ctx, q, reportID); err != nil {
		return reportFacts{}, nil, false, err
	}
	rows, err := q.Query(ctx, `SELECT `+recipientColumns+`
		FROM recipients r WHERE r.report_id = $1 ORDER BY r.position`, reportID)
	if err != nil {
		return reportFacts{}, nil, false, fmt.Errorf("list recipients: %w", err)
	}
	if recipients, err = scanRecipients(rows); err != nil {
		return reportFacts{}, nil, false, err
	}
	var fallbacks []int64
	for _, r := range recipients {
		if isFallbackRole(r.Role) {
			fallbacks = append(fallbacks, r.ID)
		}
	}
	if len(fallbacks) > 0 {
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries WHERE recipient_id = ANY ($1))`,
			fallbacks).Scan(&usedFallbacks); err != nil {
			return reportFacts{}, nil, false, fmt.Errorf("look up deliveries: %w", err)
		}
	}
	return rf, recipients, usedFallbacks, nil
}

// loadReportFacts returns what the rules need of a report.
func loadReportFacts(ctx context.Context, q DB, reportID int64) (reportFacts, error) {
	var rf reportFacts
	var author Recipient
	if err := q.QueryRow(ctx, `SELECT received_at, document_code, service, author, confidentiality, flags,
			patient_ins, patient_ins_qualified, patient_address
		FROM reports WHERE id = $1`, reportID).Scan(&rf.ReceivedAt, &rf.DocumentCode, &rf.Service, &author,
		&rf.Confidentiality, &rf.Flags, &rf.Patient.INS, &rf.Patient.INSQualified, &rf.Patient.Address); err != nil {
		return reportFacts{}, fmt.Errorf("load report %d: %w", reportID, err)
	}
	rf.AuthorRPPS = author.RPPS
	return rf, nil
}

// recipientColumns are the columns of recipients r that scanRecipients reads.
const recipientColumns = `r.id, r.role, r.kind, r.national_id, r.rpps, r.finess, r.family, r.given,
			r.organisation, r.address, r.postal_address`

// scanRecipients reads rows of recipientColumns.
func scanRecipients(rows pgx.Rows) ([]StoredRecipient, error) {
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (StoredRecipient, error) {
		var s StoredRecipient
		err := row.Scan(&s.ID, &s.Role, &s.Kind, &s.NationalID, &s.RPPS, &s.FINESS, &s.Family, &s.Given,
			&s.Organisation, &s.Address, &s.PostalAddress)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("list recipients: %w", err)
	}
	return out, nil
}

// NewDelivery is a delivery about to be created.
type NewDelivery struct {
	RecipientID   int64
	Channel       correspondents.Channel
	Status        Status
	Address       string
	Name          string
	PostalAddress PostalAddress
	Reason        correspondents.Reason
	ReasonText    string
	MessageID     string // set for mssante deliveries
	// RuleName and RuleVersion name the rule that decided it; Policy is its fallback.
	RuleName    string
	RuleVersion int
	Policy      Policy
	// ScheduledFor is when a scheduled delivery is released.
	ScheduledFor *time.Time
	// FallbackOf is the delivery this one replaces after it failed, or 0.
	FallbackOf int64
	// Choices are the addresses a secretary chooses among (Route.Choices).
	Choices []string
}

// InsertDelivery creates d, recording its creation by actor, and returns its
// id; created is false when the recipient already had a delivery on that channel.
func InsertDelivery(ctx context.Context, tx pgx.Tx, reportID int64, d NewDelivery, actor Actor) (id int64, created bool, err error) {
	if err := Allowed("", d.Status); err != nil {
		return 0, false, err
	}
	var messageID *string
	if d.MessageID != "" {
		messageID = &d.MessageID
	}
	var fallbackOf *int64
	if d.FallbackOf != 0 {
		fallbackOf = &d.FallbackOf
	}
	// The delivery and its creation event, in one statement.
	err = tx.QueryRow(ctx, `WITH d AS (
			INSERT INTO deliveries (report_id, recipient_id, channel, status, address,
				recipient_name, postal_address, reason, reason_text, message_id, rule_name, rule_version, policy,
				scheduled_for, fallback_of, choices, service)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, coalesce($19, '{}'::text[]),
				(SELECT service FROM reports WHERE id = $1))
			ON CONFLICT (recipient_id, channel) DO NOTHING
			RETURNING id
		), e AS (`+insertEventSQL+` SELECT id, NULL, $4, $16, $17, $18, $8 FROM d)
		SELECT id FROM d`,
		reportID, d.RecipientID, d.Channel, d.Status, d.Address, d.Name, d.PostalAddress, d.Reason, d.ReasonText,
		messageID, d.RuleName, d.RuleVersion, d.Policy, d.ScheduledFor, fallbackOf,
		EventCreated, actor.Kind, actor.Name, d.Choices).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("insert delivery: %w", err)
	}
	return id, true, nil
}

// insertEventSQL starts the statements that append to a delivery's history
// (the columns of a SELECT).
const insertEventSQL = `INSERT INTO delivery_events (delivery_id, from_status, to_status, event, actor_kind, actor, detail)`

// InsertEvent appends one event to a delivery's history; from is "" at creation.
func InsertEvent(ctx context.Context, q DB, deliveryID int64, from, to Status, event Event, actor Actor, detail string) error {
	if err := InsertEvents(ctx, q, []int64{deliveryID}, from, to, event, actor, detail); err != nil {
		return fmt.Errorf("delivery %d: %w", deliveryID, err)
	}
	return nil
}

// InsertEvents appends the same event to the history of each delivery of
// ids, in one statement; from is "" at creation.
func InsertEvents(ctx context.Context, q DB, ids []int64, from, to Status, event Event, actor Actor, detail string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := q.Exec(ctx, insertEventSQL+` SELECT id, NULLIF($2::text, ''), $3, $4, $5, $6, $7 FROM unnest($1::bigint[]) AS id`,
		ids, from, to, event, actor.Kind, actor.Name, detail); err != nil {
		return fmt.Errorf("record event %s of %d deliveries: %w", event, len(ids), err)
	}
	return nil
}

// transition moves a delivery from one status to another, if the state
// machine allows it, and records the change; it returns ErrStale when the
// delivery is no longer in from. lastError is kept with the delivery
// (empty clears it); detail goes to the history. A move to sent or failed
// ends the send attempt in flight (sending_at cleared); a move to sent sets
// the first acknowledgement deadline of the email (ack_due_at, from the
// delivery's policy; see package dispatch/worker's watchdog).
func transition(ctx context.Context, q DB, deliveryID int64, from, to Status, event Event, actor Actor, detail string) error {
	if err := Allowed(from, to); err != nil {
		return fmt.Errorf("delivery %d: %w", deliveryID, err)
	}
	lastError := ""
	if to == StatusFailed {
		lastError = detail
	}
	// The change and its event, in one statement: no row inserted means the
	// delivery was not in from.
	tag, err := q.Exec(ctx, `WITH d AS (
			UPDATE deliveries SET status = $3, last_error = $4, updated_at = now(),
				sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END,
				ack_due_at = CASE WHEN $3 = 'sent' THEN now() + make_interval(hours => LEAST(
					NULLIF((policy->>'no_dsn_hours')::int, 0), NULLIF((policy->>'unread_hours')::int, 0)))
					ELSE ack_due_at END,
				delivered_at = CASE WHEN $3 = 'delivered' THEN now() ELSE delivered_at END,
				read_at = CASE WHEN $3 = 'read' THEN now() ELSE read_at END,
				paper_batch_id = CASE WHEN $3 = 'paper_sent' THEN paper_batch_id END,
				sending_at = CASE WHEN $3 IN ('sent', 'failed') THEN NULL ELSE sending_at END
			WHERE id = $1 AND status = $2
			RETURNING id
		) `+insertEventSQL+` SELECT id, $2, $3, $5, $6, $7, $8 FROM d`,
		deliveryID, from, to, lastError, event, actor.Kind, actor.Name, detail)
	if err != nil {
		return fmt.Errorf("set delivery %d %s: %w", deliveryID, to, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delivery %d not %s: %w", deliveryID, from, ErrStale)
	}
	return nil
}

// setPaperBatch puts the deliveries ids in the paper batch batchID.
func setPaperBatch(ctx context.Context, q DB, batchID int64, ids []int64) error {
	if _, err := q.Exec(ctx, `UPDATE deliveries SET paper_batch_id = $1, updated_at = now() WHERE id = ANY($2)`,
		batchID, ids); err != nil {
		return fmt.Errorf("batch letters %d: %w", batchID, err)
	}
	return nil
}

func setReportStatus(ctx context.Context, q DB, reportID int64, status string) error {
	if _, err := q.Exec(ctx, "UPDATE reports SET status = $2, updated_at = now() WHERE id = $1", reportID, status); err != nil {
		return fmt.Errorf("set report status: %w", err)
	}
	return nil
}

// StoredDelivery is a delivery row, for the jobs and actions that change it.
type StoredDelivery struct {
	ID, ReportID, RecipientID int64
	Channel                   correspondents.Channel
	Status                    Status
	Address, MessageID        string
	// SendingAt is true while an email is handed to SMTP (or was, when the
	// sender died before recording the outcome).
	SendingAt     bool
	Name          string
	PostalAddress PostalAddress
	Policy        Policy
	RuleName      string
	RuleVersion   int
}

// Destination is where d goes: its MSSanté address, or its postal address.
func (d StoredDelivery) Destination() string {
	if d.Channel == correspondents.ChannelMSSante {
		return d.Address
	}
	return d.PostalAddress.String()
}

// loadDelivery locks and returns the delivery id, or ErrNotFound.
func loadDelivery(ctx context.Context, tx pgx.Tx, id int64) (StoredDelivery, error) {
	var d StoredDelivery
	err := tx.QueryRow(ctx, `SELECT id, report_id, recipient_id, channel, status, address, coalesce(message_id, ''),
			sending_at IS NOT NULL, recipient_name, postal_address, policy, rule_name, rule_version
		FROM deliveries WHERE id = $1 FOR UPDATE`, id).Scan(&d.ID, &d.ReportID, &d.RecipientID, &d.Channel,
		&d.Status, &d.Address, &d.MessageID, &d.SendingAt, &d.Name, &d.PostalAddress, &d.Policy, &d.RuleName, &d.RuleVersion)
	if errors.Is(err, pgx.ErrNoRows) {
		return StoredDelivery{}, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return StoredDelivery{}, fmt.Errorf("load delivery %d: %w", id, err)
	}
	return d, nil
}

// WithDelivery runs change on the delivery id, loaded and locked in a
// transaction of its own that commits the change.
func WithDelivery(ctx context.Context, pool *pgxpool.Pool, id int64, change func(pgx.Tx, StoredDelivery) error) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		d, err := loadDelivery(ctx, tx, id)
		if err != nil {
			return err
		}
		return change(tx, d)
	})
}

// Act is WithDelivery for an action on one delivery (an acknowledgement's,
// a person's in package dispatch/desk): its error names the delivery.
func Act(ctx context.Context, pool *pgxpool.Pool, deliveryID int64, change func(pgx.Tx, StoredDelivery) error) error {
	if err := WithDelivery(ctx, pool, deliveryID, change); err != nil {
		return fmt.Errorf("delivery %d: %w", deliveryID, err)
	}
	return nil
}

// SetMessageID gives a delivery a new Message-ID (a new email: a resend).
func SetMessageID(ctx context.Context, q DB, id int64, messageID string) error {
	if _, err := q.Exec(ctx, `UPDATE deliveries SET message_id = $2 WHERE id = $1`, id, messageID); err != nil {
		return fmt.Errorf("new Message-ID for delivery %d: %w", id, err)
	}
	return nil
}

// SetAttention flags a delivery for the secretaries ("" clears the flag).
func SetAttention(ctx context.Context, q DB, id int64, attention string) error {
	if _, err := q.Exec(ctx, `UPDATE deliveries SET attention = $2, updated_at = now() WHERE id = $1`, id, attention); err != nil {
		return fmt.Errorf("flag delivery %d: %w", id, err)
	}
	return nil
}

// MarkSending records an attempt to send the email messageID of delivery
// deliveryID before it is handed to SMTP, in one statement: the delivery's
// sending_at and attempt count, and a "sending" event; interrupted is true
// when the previous attempt never recorded its outcome (the process died in
// the middle: the email may have left). It returns ErrStale when the
// delivery is no longer queued. ClearSending, or the transition to sent or
// failed, ends the attempt.
func MarkSending(ctx context.Context, q DB, deliveryID int64, messageID string) (interrupted bool, err error) {
	err = q.QueryRow(ctx, `WITH old AS (
			SELECT id, sending_at FROM deliveries WHERE id = $1 AND status = 'queued' FOR UPDATE
		), d AS (
			UPDATE deliveries d SET sending_at = now(), send_attempts = d.send_attempts + 1 FROM old WHERE d.id = old.id
			RETURNING d.id, d.send_attempts, old.sending_at IS NOT NULL AS interrupted
		), e AS (`+insertEventSQL+`
			SELECT id, 'queued', 'queued', $2, $3, $4,
				format('essai %s, Message-ID %s', send_attempts, $5::text) || CASE WHEN interrupted THEN $6 ELSE '' END
			FROM d)
		SELECT interrupted FROM d`,
		deliveryID, EventSending, SystemActor.Kind, SystemActor.Name, messageID,
		"; l'essai précédent a été interrompu (envoi possiblement en double, même Message-ID)").Scan(&interrupted)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("delivery %d is no longer queued: %w", deliveryID, ErrStale)
	}
	if err != nil {
		return false, fmt.Errorf("record send attempt of delivery %d: %w", deliveryID, err)
	}
	return interrupted, nil
}

// ClearSending records that the attempt in flight (MarkSending) of delivery
// deliveryID has its outcome, a temporary failure: the delivery stays queued.
func ClearSending(ctx context.Context, q DB, deliveryID int64) error {
	if _, err := q.Exec(ctx, `UPDATE deliveries SET sending_at = NULL WHERE id = $1`, deliveryID); err != nil {
		return fmt.Errorf("clear send attempt: %w", err)
	}
	return nil
}

// WithdrawAddress takes the MSSanté address off delivery id, saying why.
func WithdrawAddress(ctx context.Context, q DB, id int64, reason correspondents.Reason, reasonText string) error {
	_, err := q.Exec(ctx, `UPDATE deliveries SET address = '', reason = $2, reason_text = $3, updated_at = now() WHERE id = $1`,
		id, reason, reasonText)
	if err != nil {
		return fmt.Errorf("withdraw the address of delivery %d: %w", id, err)
	}
	return nil
}

// RecordDeliveryError keeps the last transient error of a delivery.
func RecordDeliveryError(ctx context.Context, q DB, deliveryID int64, lastError string) error {
	if _, err := q.Exec(ctx, "UPDATE deliveries SET last_error = $2, updated_at = now() WHERE id = $1", deliveryID, lastError); err != nil {
		return fmt.Errorf("record delivery %d error: %w", deliveryID, err)
	}
	return nil
}

// addFollowUps adds each name to the follow-ups of the delivery of the same
// index in ids (once: a name already there stays alone).
func addFollowUps(ctx context.Context, q DB, ids []int64, names []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := q.Exec(ctx, `UPDATE deliveries d SET follow_ups = ARRAY(SELECT DISTINCT n FROM unnest(d.follow_ups || f.names) n ORDER BY n)
		FROM (SELECT id, array_agg(name) AS names FROM unnest($1::bigint[], $2::text[]) AS u(id, name) GROUP BY id) f
		WHERE d.id = f.id`, ids, names)
	if err != nil {
		return fmt.Errorf("record follow-ups: %w", err)
	}
	return nil
}

// FollowUpDone takes name off the follow-ups of the delivery id.
func FollowUpDone(ctx context.Context, q DB, id int64, name string) error {
	if _, err := q.Exec(ctx, `UPDATE deliveries SET follow_ups = array_remove(follow_ups, $2) WHERE id = $1`, id, name); err != nil {
		return fmt.Errorf("delivery %d: follow-up %s done: %w", id, name, err)
	}
	return nil
}

// NextRecipientPosition is the position of a recipient added to a report
// (a person's, package dispatch/desk, or the DPI's when it sends the report
// again); it locks the report, so that two additions get two positions.
func NextRecipientPosition(ctx context.Context, tx pgx.Tx, reportID int64) (int, error) {
	var n int
	if err := tx.QueryRow(ctx, `SELECT 1 FROM reports WHERE id = $1 FOR UPDATE`, reportID).Scan(&n); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, ErrNotFound
		}
		return 0, fmt.Errorf("lock report %d: %w", reportID, err)
	}
	err := tx.QueryRow(ctx, `SELECT coalesce(max(position), 0) + 1 FROM recipients WHERE report_id = $1`, reportID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("recipients of report %d: %w", reportID, err)
	}
	return n, nil
}

// SetDeliveryRecipient changes where a delivery goes: its MSSanté address,
// or its name and postal address, and why (a person's choice).
func SetDeliveryRecipient(ctx context.Context, q DB, id int64, address, name string, postal PostalAddress, reason correspondents.Reason, reasonText string) error {
	_, err := q.Exec(ctx, `UPDATE deliveries SET address = $2, recipient_name = $3, postal_address = $4,
			reason = $5, reason_text = $6, updated_at = now() WHERE id = $1`,
		id, address, name, postal, reason, reasonText)
	if err != nil {
		return fmt.Errorf("edit delivery %d: %w", id, err)
	}
	return nil
}
