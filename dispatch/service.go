package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/mssdispatch/mssdispatch/queue"
)

// JobInserter inserts River jobs within a transaction (a *river.Client).
type JobInserter interface {
	InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// Pool is the database. Required.
	Pool *pgxpool.Pool
	// Jobs enqueues River jobs (the River client). Required.
	Jobs JobInserter
	// Custodian is the hospital; needed only to accept reports sent as a bare PDF.
	Custodian Organisation
	// BusinessAcks enqueues the business acknowledgements (ZAM) the DPI asks
	// for when DSNs and MDNs come back: whether the worker registered with
	// package dispatch/worker's AddBusinessAcks has a Notifier (its Install
	// derives it).
	BusinessAcks bool
	// Foreground, when not nil, counts the reports being received, which
	// the jobs yield to (package dispatch/worker's Install shares one).
	Foreground *queue.Foreground
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Service receives reports and answers questions about them.
type Service struct {
	pool      *pgxpool.Pool
	jobs      JobInserter
	custodian Organisation
	// businessAcks is ServiceConfig.BusinessAcks.
	businessAcks bool
	foreground   *queue.Foreground
	logger       *slog.Logger
}

// NewService validates cfg and returns a Service.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Pool == nil || cfg.Jobs == nil {
		return nil, errors.New("dispatch: ServiceConfig.Pool and Jobs are required")
	}
	if f := cfg.Custodian.FINESS; f != "" && len(f) != 9 {
		return nil, fmt.Errorf("dispatch: FINESS %q: want 9 characters", f)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{pool: cfg.Pool, jobs: cfg.Jobs, custodian: cfg.Custodian,
		businessAcks: cfg.BusinessAcks, foreground: cfg.Foreground, logger: cfg.Logger}, nil
}

// Inbound identifies a message received from the DPI: a retransmission (same
// key, same content) gets the answer given to the first transmission and
// changes nothing.
type Inbound struct {
	// Kind is "hl7" or "json"; keys of different kinds never collide.
	Kind string
	// Source is "mllp" or "api".
	Source string
	// SendingApplication, SendingFacility and ControlID are the key: MSH-3,
	// MSH-4 and MSH-10, or "", "" and the Idempotency-Key of a REST request.
	SendingApplication, SendingFacility, ControlID string
	// ReceivingApplication and ReceivingFacility are MSH-5 and MSH-6: this
	// service as the DPI names it, where its business acknowledgements come
	// from; empty for a REST request.
	ReceivingApplication, ReceivingFacility string
	// MessageType is e.g. "ORU^R01" or "report".
	MessageType string
	// Service is the care unit the message names, read as a report's, ""
	// when unknown: a refused message's patient data is shown only to the
	// users who see it (package quarantine).
	Service string
	// Fingerprint identifies the content; a key reused for another content
	// is refused with ErrKeyReused.
	Fingerprint []byte
}

// Answer is the response given to a message, kept for its retransmissions.
type Answer struct {
	Response []byte
	Accepted bool
}

// ErrKeyReused is returned when a message key (MSH-10, Idempotency-Key) comes
// again with a different content.
var ErrKeyReused = errors.New("message key already used for a different message")

// InvalidError says why a report cannot be accepted.
type InvalidError struct {
	// Field is the part of the report at fault: one of LocatedFields when
	// the edges can point at it in what they received, else the path of
	// the report's field (e.g. "patient.family", "recipients[2].kind").
	Field string
	Msg   string
}

// Fields of a report that InvalidError and Warning name and that the edges
// locate in what they received (package hl7intake: the ERR-2 and ERR-3 of
// its ACK). A test of hl7intake checks that it locates each of them.
const (
	FieldControlID      = "control_id"         // the message's key (MSH-10, Idempotency-Key)
	FieldAction         = "action"             // new, replace or delete
	FieldDocumentID     = "document.id"        // the document's id
	FieldDocumentCDA    = "document.cda"       // the document itself
	FieldDocumentParent = "document.parent_id" // the document a replacement replaces
	FieldOtherFormatID  = "other_format.id"    // the id of the report's second document
	FieldOtherFormatCDA = "other_format.cda"   // the second document itself
	FieldPatientINS     = "patient.ins"        // the patient's INS (and its qualification)
	FieldPatientMailbox = "patient.mailbox"    // the patient's MSSanté mailbox
)

// LocatedFields lists the fields above.
var LocatedFields = []string{FieldControlID, FieldAction, FieldDocumentID, FieldDocumentCDA, FieldDocumentParent,
	FieldOtherFormatID, FieldOtherFormatCDA, FieldPatientINS, FieldPatientMailbox}

// FieldFlag is the field of the flag of the volet called code (flags.<code>,
// e.g. flags.MASQUE_PS), which the edges locate too.
func FieldFlag(code string) string { return "flags." + code }

func (e *InvalidError) Error() string { return e.Field + ": " + e.Msg }

// Receipt is the outcome of receiving a report.
type Receipt struct {
	ReportID int64
	// Duplicate is true when the message was a retransmission: nothing was
	// stored and Answer is the first transmission's.
	Duplicate bool
	Answer
}

// Previous returns the answer already given to in's key, and false when the
// key is new. A retransmission is counted. It returns ErrKeyReused when the key
// was used for a different content.
func (s *Service) Previous(ctx context.Context, in Inbound) (Answer, bool, error) {
	prev, found, err := previousInbound(ctx, s.pool, in)
	if err != nil || !found {
		return Answer{}, false, err
	}
	if !bytes.Equal(prev.fingerprint, in.Fingerprint) {
		return Answer{}, false, ErrKeyReused
	}
	return prev.answer, true, nil
}

// Receive durably stores r, the message it came in with the response respond
// builds for the new report (from its id, its document id, when it was
// received as the database recorded it, and the warnings of its intake),
// and the job that will resolve its recipients, in one
// transaction: when it returns, the report is committed and the response
// may be sent. A replacement supersedes the pending deliveries of the
// document it replaces and is also sent to those who received it; a
// deletion cancels the document's pending deliveries and notifies those
// who received it.
//
// A message that sends again documents already received (same ids, same
// CDA bytes: a DPI's operator resending, an interface engine restarted)
// stores no second report: the recipients it lists that the first did not
// are added to the first report and served, the others get nothing more;
// the receipt names the first report. The same document id with other
// bytes is refused: a new version is a replacement with its own id.
func (s *Service) Receive(ctx context.Context, in Inbound, r Report, respond func(reportID int64, documentID string, receivedAt time.Time, warnings []Warning) []byte) (Receipt, error) {
	return s.ReceiveVia(ctx, in, r, respond, fromDPI{})
}

// ReceiveVia is Receive for a message that via records: the key via hands
// over, refused until now, is accepted rather than recorded anew, and via
// learns the receipt in the transaction that stores the report (package
// quarantine processes a refused message again this way).
func (s *Service) ReceiveVia(ctx context.Context, in Inbound, r Report, respond func(reportID int64, documentID string, receivedAt time.Time, warnings []Warning) []byte, via Receiving) (Receipt, error) {
	defer s.foreground.Enter()()
	if in.ControlID == "" {
		return Receipt{}, &InvalidError{Field: FieldControlID, Msg: "le message n'a pas de clé (identifiant de message ou Idempotency-Key)"}
	}
	if err := in.validate(); err != nil {
		return Receipt{}, err
	}
	if err := s.prepare(&r, time.Now()); err != nil {
		return Receipt{}, err
	}
	if err := r.validate(); err != nil {
		return Receipt{}, err
	}
	var rc Receipt
	resent := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		refusedID, err := via.Key(ctx, tx, in)
		if err != nil {
			return err
		}
		inboundID, dup, stored, err := receivedKey(ctx, tx, in, refusedID, r.lookedUpIDs())
		if err != nil {
			return err
		}
		if dup != nil {
			if !bytes.Equal(dup.fingerprint, in.Fingerprint) {
				return ErrKeyReused
			}
			rc = Receipt{ReportID: dup.reportID, Duplicate: true, Answer: dup.answer}
			return via.Received(ctx, tx, rc)
		}
		id, err := resentReport(&r, r.carried(stored))
		if err != nil {
			return err
		}
		var receivedAt time.Time
		if resent = id != 0; resent {
			receivedAt, err = s.receiveAgain(ctx, tx, id, inboundID, in, &r)
		} else {
			id, receivedAt, err = s.receiveNew(ctx, tx, inboundID, in, &r, stored)
		}
		if err != nil {
			return err
		}
		rc = Receipt{ReportID: id, Answer: Answer{Response: respond(id, r.Document.ID, receivedAt, r.Warnings), Accepted: true}}
		if err := setInboundResponse(ctx, tx, inboundID, rc.Response); err != nil {
			return err
		}
		return via.Received(ctx, tx, rc)
	})
	if err != nil {
		if permanent := storageRefusal(err); permanent != nil {
			return Receipt{}, permanent
		}
		return Receipt{}, fmt.Errorf("receive report: %w", err)
	}
	s.logger.InfoContext(ctx, "report received", "report_id", rc.ReportID, "control_id", in.ControlID,
		"action", r.Action, "duplicate", rc.Duplicate, "resent", resent, "recipients", len(r.Recipients),
		"documents", len(r.documents()), "warnings", len(r.Warnings))
	return rc, nil
}

// Receiving is how ReceiveVia records the message a report came in, in
// the transaction that stores the report: Receive's for a message the DPI
// sent, package quarantine's for a refused one processed again.
type Receiving interface {
	// Key runs first. It returns the id of the key (MSH-3, MSH-4, MSH-10)
	// Reject recorded for the message, refused until now, which ReceiveVia
	// then accepts; or 0, and ReceiveVia records the key as Receive does
	// (a retransmission gets the first transmission's answer).
	Key(ctx context.Context, tx pgx.Tx, in Inbound) (refusedID int64, err error)
	// Received runs once the report is stored, or its message known as a
	// retransmission, with the receipt ReceiveVia returns.
	Received(ctx context.Context, tx pgx.Tx, rc Receipt) error
}

// fromDPI records a message the DPI sent: its key is new.
type fromDPI struct{}

func (fromDPI) Key(context.Context, pgx.Tx, Inbound) (int64, error) { return 0, nil }

func (fromDPI) Received(context.Context, pgx.Tx, Receipt) error { return nil }

// receiveNew stores r as a new report, received with the inbound message
// inboundID, with the events of its warnings, and the job that resolves its
// recipients; stored is what receivedKey read. It returns the report's id
// and when it was received.
func (s *Service) receiveNew(ctx context.Context, tx pgx.Tx, inboundID int64, in Inbound, r *Report, stored []storedDocument) (int64, time.Time, error) {
	if err := applyVersioning(ctx, tx, r, stored); err != nil {
		return 0, time.Time{}, err
	}
	id, receivedAt, err := insertReport(ctx, tx, inboundID, in, r)
	if err != nil {
		return 0, time.Time{}, err
	}
	return id, receivedAt, InsertJobs(ctx, tx, s.jobs, []river.InsertManyParams{{Args: ResolveArgs{ReportID: id}}})
}

// receiveAgain takes r, which sends again the documents of report id: the
// recipients r lists that the report does not are added to it and
// resolved; the report's history says so, and has the events of r's
// warnings. It returns when the report was received.
func (s *Service) receiveAgain(ctx context.Context, tx pgx.Tx, id, inboundID int64, in Inbound, r *Report) (time.Time, error) {
	_, known, _, err := reportRecipients(ctx, tx, id)
	if err != nil {
		return time.Time{}, err
	}
	var added []Recipient
	for _, rc := range r.Recipients {
		isKnown := slices.ContainsFunc(known, func(k StoredRecipient) bool { return rc.same(k.Recipient) })
		if r.Action != ActionDelete && rc.Role != RoleSender && !isKnown && !slices.ContainsFunc(added, rc.same) {
			added = append(added, rc) // (a deletion is told to those who had the document, not to others)
		}
	}
	detail := fmt.Sprintf("Le DPI a envoyé à nouveau ce document (message %s) : aucun nouveau destinataire, rien n'est renvoyé.", in.ControlID)
	if len(added) > 0 {
		position, err := NextRecipientPosition(ctx, tx, id)
		if err != nil {
			return time.Time{}, err
		}
		for i, rc := range added {
			if _, err := InsertRecipient(ctx, tx, id, position+i, rc); err != nil {
				return time.Time{}, err
			}
		}
		if err := setReportStatus(ctx, tx, id, ReportReceived); err != nil {
			return time.Time{}, err
		}
		if err := InsertJobs(ctx, tx, s.jobs, []river.InsertManyParams{{Args: ResolveArgs{ReportID: id, Inbound: inboundID}}}); err != nil {
			return time.Time{}, err
		}
		detail = fmt.Sprintf("Le DPI a envoyé à nouveau ce document (message %s) avec %d nouveau(x) destinataire(s), qui le reçoivent ; les autres ne le reçoivent pas une seconde fois.",
			in.ControlID, len(added))
	}
	// The events and the time of receipt, in one round trip.
	var receivedAt time.Time
	b := &pgx.Batch{}
	queueReportEvents(b, reportOfID, id, append([]reportEvent{{Event: ReportEventResent, Detail: detail}}, warningEvents(r.Warnings)...))
	queueReceivedAt(b, id, &receivedAt)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return time.Time{}, fmt.Errorf("report %d: record its resending: %w", id, err)
	}
	return receivedAt, nil
}

// same reports whether r and o are the same recipient: the patient, the
// same professional (national id), the same organisation (FINESS) or the
// same address.
func (r Recipient) same(o Recipient) bool {
	switch {
	case r.Kind == KindPatient || o.Kind == KindPatient:
		return r.Kind == o.Kind
	case r.NationalID != "" && r.NationalID == o.NationalID,
		r.FINESS != "" && r.FINESS == o.FINESS && r.NationalID == "" && o.NationalID == "",
		r.Address != "" && strings.EqualFold(r.Address, o.Address):
		return true
	}
	return false
}

// maxKeyLen is the longest part of a message key (MSH-3, MSH-4, MSH-10, an
// Idempotency-Key): HL7 v2 allows 227 characters for an HD, 199 for MSH-10.
const maxKeyLen = 256

// validate checks that the key of in can be stored and indexed.
func (in Inbound) validate() error {
	for _, part := range []string{in.SendingApplication, in.SendingFacility, in.ControlID, in.ReceivingApplication, in.ReceivingFacility} {
		switch {
		case strings.IndexByte(part, 0) >= 0:
			return &InvalidError{Field: FieldControlID, Msg: "la clé du message (MSH-3 à MSH-6, MSH-10 ou Idempotency-Key) contient un caractère NUL"}
		case len(part) > maxKeyLen:
			return &InvalidError{Field: FieldControlID, Msg: fmt.Sprintf("la clé du message (MSH-3 à MSH-6, MSH-10 ou Idempotency-Key) dépasse %d octets", maxKeyLen)}
		}
	}
	return nil
}

// storageRefusal returns an InvalidError when PostgreSQL refused to store a
// report for its data (an invalid character, a value too long for an
// index): the same message would be refused every time it is sent again,
// so it is the DPI's to fix, not to resend. nil for any other error.
func storageRefusal(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || !(strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "54")) {
		return nil
	}
	return &InvalidError{Msg: fmt.Sprintf("la base de données refuse une valeur du message (erreur PostgreSQL %s) : il serait refusé à chaque nouvel envoi", pgErr.Code)}
}

// Refusal is why the intake refused a message, and what it could read of
// it, as the quarantine keeps them.
type Refusal struct {
	// Reason says it to people; it may repeat the message's values (patient data).
	Reason string
	// Code and Location say it without them: the HL7 table 0357 code
	// (ERR-3, 0 for a REST request) and where, ERR-2 ("PID^1^3") or the
	// JSON field.
	Code     int
	Location string
	// Patient and Document say whom and what the message is about, for
	// people, as far as they could be read ("" otherwise): patient data,
	// shown as Reason is.
	Patient, Document string
	// Partial is true when the bytes kept are only the head of the message
	// (over the size limit): it cannot be processed again.
	Partial bool
}

// Reject keeps a refused message in quarantine (package quarantine lists
// it and acts on it) and returns the answer to give: response. When in has
// a key, the refusal is remembered so that a retransmission gets the same
// answer; if the key was meanwhile accepted or refused, that first answer
// is returned instead.
func (s *Service) Reject(ctx context.Context, in Inbound, raw []byte, why Refusal, response []byte) (Answer, error) {
	answer := Answer{Response: response}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var inboundID *int64
		if in.ControlID != "" {
			id, dup, err := insertInbound(ctx, tx, in, answer)
			if err != nil {
				return err
			}
			if dup != nil && bytes.Equal(dup.fingerprint, in.Fingerprint) {
				answer = dup.answer
				return nil
			}
			if dup == nil {
				inboundID = &id
			}
		}
		return insertQuarantine(ctx, tx, in, inboundID, raw, why)
	})
	if err != nil {
		return Answer{}, fmt.Errorf("quarantine message: %w", err)
	}
	s.logger.WarnContext(ctx, "message quarantined", "kind", in.Kind, "source", in.Source, "control_id", in.ControlID, "bytes", len(raw))
	return answer, nil
}

// applyVersioning checks that a replacement or deletion names known
// documents, stops what is still pending for them, and adds to r those who
// already received them, in one round trip. A replacement names the
// documents it replaces (each document's parent; of a pair, one may have
// none); a deletion names its own documents. stored holds the documents
// read with those ids (Report.lookedUpIDs).
func applyVersioning(ctx context.Context, tx pgx.Tx, r *Report, stored []storedDocument) error {
	targets, field, stopped, event := r.versioned()
	if len(targets) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, target := range targets {
		if !documentKnown(stored, target) {
			return &InvalidError{Field: field, Msg: fmt.Sprintf("le document %s est inconnu de ce service ou a été supprimé", target)}
		}
		if err := queueStopPendingDeliveries(b, target, stopped, event); err != nil {
			return err
		}
		queueServedRecipients(b, target, func(served []Recipient) {
			for _, s := range served {
				if !listed(r.Recipients, s) {
					r.Recipients = append(r.Recipients, s)
				}
			}
		})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("stop the pending deliveries of %s: %w", strings.Join(targets, ", "), err)
	}
	return nil
}

// versioned returns the documents r's action stops (targets), the field
// that names them, and the status and event of their pending deliveries'
// stop: for a replacement, the documents it replaces; for a deletion, its
// own; none for a new report.
func (r *Report) versioned() (targets []string, field string, stopped Status, event Event) {
	switch r.Action {
	case ActionReplace:
		for _, d := range r.documents() {
			if d.ParentID != "" {
				targets = append(targets, d.ParentID)
			}
		}
		return targets, FieldDocumentParent, StatusSuperseded, EventSuperseded
	case ActionDelete:
		return r.documentIDs(), FieldDocumentID, StatusCancelled, EventCancelled
	}
	return nil, "", "", ""
}

// documentIDs returns the ids of r's documents.
func (r *Report) documentIDs() []string {
	var ids []string
	for _, d := range r.documents() {
		ids = append(ids, d.ID)
	}
	return ids
}

// lookedUpIDs are the document ids whose stored documents the intake of r
// reads (queueStoredDocuments): r's, for resentReport, and those its action
// stops, for applyVersioning.
func (r *Report) lookedUpIDs() []string {
	ids := r.documentIDs()
	targets, _, _, _ := r.versioned()
	for _, t := range targets {
		if !slices.Contains(ids, t) {
			ids = append(ids, t)
		}
	}
	return ids
}

// carried returns, of stored, the documents received with an id of r's or
// replacing one: what resentReport compares r with.
func (r *Report) carried(stored []storedDocument) []storedDocument {
	ids := r.documentIDs()
	var out []storedDocument
	for _, d := range stored {
		if slices.Contains(ids, d.ID) || slices.Contains(ids, d.ParentID) {
			out = append(out, d)
		}
	}
	return out
}

// storedDocument is a document already received, in one of the reports
// that carried it.
type storedDocument struct {
	ID       string
	ParentID string // the document it replaces, for a replacement
	ReportID int64
	Action   Action // of that report
	SHA256   []byte // of its CDA; nil when the report carried none
}

// resentReport returns the report that already carried r's documents when
// r sends them again, 0 when r is new, or an InvalidError when r reuses a
// document id for something else or sends a version since replaced. stored
// holds, oldest first, every document received with an id of r or
// replacing one.
//
// A new document or a replacement is sent again when each of its documents
// is the latest received with its id, byte for byte, in one same report
// (not deleted nor replaced since). A deletion is sent again when its
// documents were all deleted already: the report is then the deletion's.
func resentReport(r *Report, stored []storedDocument) (int64, error) {
	latest := map[string]storedDocument{}
	deletedBy := map[string]int64{}
	replacedBy := map[string]string{}
	for _, d := range stored {
		switch {
		case d.Action == ActionDelete:
			deletedBy[d.ID] = d.ReportID
		case d.Action == ActionReplace && d.ParentID != "" && !slices.Contains(r.documentIDs(), d.ID):
			replacedBy[d.ParentID] = d.ID
			fallthrough
		default:
			latest[d.ID] = d
		}
	}
	docs := r.documents()
	if r.Action == ActionDelete {
		var report int64
		for _, d := range docs {
			id, ok := deletedBy[d.ID]
			if !ok {
				return 0, nil // a deletion to apply (applyVersioning checks the document is known)
			}
			report = max(report, id)
		}
		return report, nil
	}
	var report int64
	matched := 0
	for _, d := range docs {
		if _, ok := deletedBy[d.ID]; ok {
			return 0, &InvalidError{Field: FieldDocumentID, Msg: fmt.Sprintf("le document %s a été supprimé : un nouveau document a un nouvel identifiant", d.ID)}
		}
		if next, ok := replacedBy[d.ID]; ok {
			return 0, &InvalidError{Field: FieldDocumentID, Msg: fmt.Sprintf("le document %s a été remplacé depuis par %s : envoyez la dernière version", d.ID, next)}
		}
		prev, ok := latest[d.ID]
		if !ok {
			continue
		}
		if !bytes.Equal(prev.SHA256, d.sum()) {
			msg := "envoyez la nouvelle version comme un remplacement (OBX-11 C, ORC-1 RO, ou MDM^T10), avec son propre identifiant"
			if r.Action == ActionReplace {
				msg = "une nouvelle version a son propre identifiant"
			}
			return 0, &InvalidError{Field: FieldDocumentID, Msg: fmt.Sprintf("le document %s a déjà été reçu avec un autre contenu : %s", d.ID, msg)}
		}
		if report != 0 && prev.ReportID != report {
			return 0, &InvalidError{Field: FieldDocumentID, Msg: "les documents du message ont déjà été reçus, mais pas ensemble"}
		}
		report = prev.ReportID
		matched++
	}
	if matched > 0 && matched < len(docs) {
		return 0, &InvalidError{Field: FieldDocumentID, Msg: "une partie des documents du message a déjà été reçue sans les autres : renvoyez-les tels que reçus la première fois, ou comme un remplacement"}
	}
	return report, nil
}

// listed reports whether rs already holds the person or address of s.
func listed(rs []Recipient, s Recipient) bool {
	for _, r := range rs {
		if (s.NationalID != "" && r.NationalID == s.NationalID) || (s.Address != "" && r.Address == s.Address) {
			return true
		}
	}
	return false
}
