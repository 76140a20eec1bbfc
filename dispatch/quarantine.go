package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/mssdispatch/mssdispatch/audit"
)

// This file holds the Service's side of the quarantine: the messages the
// intake refused (see Reject), for the dashboard, and what users do with
// them: process one again once its cause is fixed (Requeue, through the
// intake), or set it aside (DismissQuarantined).

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

// QuarantineStatus is where a refused message stands.
type QuarantineStatus string

// The statuses of a refused message.
const (
	// QuarantineOpen is a message nobody has dealt with yet, or processed
	// again and refused again.
	QuarantineOpen QuarantineStatus = "open"
	// QuarantineAccepted is a message processed again and accepted: it is
	// a report.
	QuarantineAccepted QuarantineStatus = "accepted"
	// QuarantineDismissed is a message a user set aside, saying why.
	QuarantineDismissed QuarantineStatus = "dismissed"
)

// quarantineNext says what may follow each status: an open message may be
// processed again (and stay open when refused again), be accepted or set
// aside; the others are final.
var quarantineNext = map[QuarantineStatus][]QuarantineStatus{
	QuarantineOpen: {QuarantineOpen, QuarantineAccepted, QuarantineDismissed},
}

// ErrQuarantineHandled is returned for a change to a quarantined message
// that was accepted or set aside meanwhile.
var ErrQuarantineHandled = errors.New("the quarantined message was already dealt with")

// ErrNotReprocessable is returned by Requeue for a message that cannot be
// processed again: a REST request (its client got the refusal and sends it
// again), or bytes purged or kept only in part.
var ErrNotReprocessable = errors.New("the quarantined message cannot be processed again")

// QuarantinedMessage is a refused message as the dashboard lists it: why it
// was refused and what became of it, never its bytes (they hold patient
// data; see QuarantinedRaw).
type QuarantinedMessage struct {
	ID         int64     `json:"id"`
	ReceivedAt time.Time `json:"received_at"`
	// Kind is "hl7" or "json"; Source is "mllp" or "api".
	Kind   string `json:"kind"`
	Source string `json:"source"`
	// SendingApplication and SendingFacility are MSH-3 and MSH-4, the
	// DPI's application that sent it; empty for a REST request or when
	// unreadable.
	SendingApplication string `json:"sending_application"`
	SendingFacility    string `json:"sending_facility"`
	// ControlID is MSH-10, or the Idempotency-Key of a REST request; may be empty.
	ControlID string `json:"message_control_id"`
	// MessageType is e.g. "ORU^R01", or "report"; empty when unreadable.
	MessageType string `json:"message_type"`
	// Service is the care unit the message names; empty when unknown.
	Service string `json:"service"`
	// ErrorCode and ErrorLocation are Refusal.Code and Refusal.Location.
	ErrorCode     int    `json:"error_code"`
	ErrorLocation string `json:"error_location"`
	// Reason, Patient and Document are the Refusal's, empty when Restricted.
	Reason   string `json:"reason"`
	Patient  string `json:"patient"`
	Document string `json:"document"`
	// Restricted is true when the filter's viewer may not see the message's
	// patient data: its Reason, Patient, Document and Note are withheld.
	Restricted bool `json:"restricted"`
	// Size is the number of bytes kept, 0 once purged.
	Size int64 `json:"size"`
	// Purged is true when the retention job emptied the raw bytes.
	Purged bool `json:"purged"`
	// Partial is Refusal.Partial.
	Partial bool             `json:"partial"`
	Status  QuarantineStatus `json:"status"`
	// ReportID is the report it became once accepted, else 0.
	ReportID int64 `json:"report_id"`
	// ActedBy and ActedAt are the user who last processed it again or set
	// it aside, and when; on an open message, a processing refused again.
	ActedBy string     `json:"acted_by"`
	ActedAt *time.Time `json:"acted_at"`
	// Note is why it was set aside, empty when Restricted.
	Note string `json:"note"`
}

// Reprocessable reports whether the message may be processed again: open,
// HL7 (a REST client got its refusal, a 422, and sends it again), its bytes
// kept whole, and seen whole by the viewer it was listed for.
func (m QuarantinedMessage) Reprocessable() bool {
	return m.Status == QuarantineOpen && m.Kind == "hl7" && !m.Partial && !m.Purged && !m.Restricted
}

// Dismissable reports whether the viewer it was listed for may set the
// message aside: open and seen whole.
func (m QuarantinedMessage) Dismissable() bool {
	return m.Status == QuarantineOpen && !m.Restricted
}

// Remedy says who can make a refused message go through.
type Remedy string

// The remedies of a refused message.
const (
	// RemedyContent is a message whose data is wrong or missing (table
	// 0357 1xx, a value the service refuses): to fix in the DPI, whose
	// interface team is the one to call.
	RemedyContent Remedy = "content"
	// RemedyInterface is a message the interface should not send as it is
	// set up (its type, event, version, a control id reused, its size): its
	// set-up is the interface team's.
	RemedyInterface Remedy = "interface"
	// RemedyCaller is a request of the REST API: its client got the refusal
	// (422) and sends it again once fixed.
	RemedyCaller Remedy = "caller"
)

// Remedy says who can make m go through.
func (m QuarantinedMessage) Remedy() Remedy {
	switch {
	case m.Kind == "json":
		return RemedyCaller
	case m.Partial, m.ErrorCode >= 200 && m.ErrorCode < 207:
		return RemedyInterface
	}
	return RemedyContent
}

// QuarantineFilter selects a page of the quarantine, newest first.
type QuarantineFilter struct {
	// BeforeID, when positive, returns the messages older than this id (the
	// ID of the last message of the previous page).
	BeforeID int64
	// Limit defaults to 50, at most 500.
	Limit int
	// Status, when not empty, selects the messages in that status.
	Status QuarantineStatus
	// Services, when not nil, are the services whose messages the viewer
	// sees whole: the messages of another service, or of none known, come
	// Restricted. Nil is every service (admins, and the users of every
	// service).
	Services []string
}

// Bounds of a page of Quarantined.
const (
	defaultQuarantineLimit = 50
	maxQuarantineLimit     = 500
)

// Quarantined returns the refused messages f selects, newest first, without
// their bytes, and without the patient data of those f.Services excludes.
func (s *Service) Quarantined(ctx context.Context, f QuarantineFilter) ([]QuarantinedMessage, error) {
	if f.Limit <= 0 {
		f.Limit = defaultQuarantineLimit
	}
	msgs, err := listQuarantine(ctx, s.pool, f.BeforeID, min(f.Limit, maxQuarantineLimit), f.Status, f.Services)
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	return msgs, nil
}

// QuarantinedRaw returns the bytes of the refused message id as received,
// empty once the retention job purged them, or ErrNotFound; viewer's
// reading of bytes still there is in the audit log.
func (s *Service) QuarantinedRaw(ctx context.Context, viewer string, id int64) ([]byte, error) {
	if id <= 0 {
		return nil, fmt.Errorf("quarantined message %d: %w", id, ErrNotFound)
	}
	raw, err := quarantineRaw(ctx, s.pool, id)
	if err != nil {
		return nil, fmt.Errorf("quarantined message %d: %w", id, err)
	}
	if len(raw) == 0 {
		return raw, nil
	}
	return served(raw, audit.WriteAll(ctx, s.pool, audit.Entry{Actor: viewer, Action: "quarantine_viewed", Object: quarantineObject(id),
		Detail: fmt.Sprintf("%d octets", len(raw))}))
}

// maxNoteLen is the longest reason for setting a message aside, in characters.
const maxNoteLen = 500

// DismissQuarantined sets the quarantined message id aside for user, who
// sees services (nil: all), saying why (required): it stays listed as
// dismissed, and the audit log records it with the change. It returns
// ErrNotFound for a message the user does not see whole, an error wrapping
// ErrQuarantineHandled once accepted or set aside, an *InvalidError
// without a reason.
func (s *Service) DismissQuarantined(ctx context.Context, id int64, user string, services []string, why string) error {
	why = strings.TrimSpace(why)
	switch {
	case why == "":
		return &InvalidError{Field: "why", Msg: "indiquez pourquoi le message est écarté"}
	case utf8.RuneCountInString(why) > maxNoteLen:
		return &InvalidError{Field: "why", Msg: fmt.Sprintf("le motif dépasse %d caractères", maxNoteLen)}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := lockQuarantined(ctx, tx, id, services, QuarantineDismissed); err != nil {
			return err
		}
		if err := actOnQuarantined(ctx, tx, id, QuarantineDismissed, user, 0, why); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: user, Action: "quarantine_dismissed", Object: quarantineObject(id), Detail: why})
	})
	if err != nil {
		return fmt.Errorf("dismiss quarantined message %d: %w", id, err)
	}
	return nil
}

// Requeue takes up the quarantined message id again for user, who sees
// services (nil: all), to run it through its intake as if received again
// (hl7intake.Handler.Reprocess). It returns ErrNotFound for a message the
// user does not see whole, ErrQuarantineHandled once accepted or set
// aside, ErrNotReprocessable for a message that cannot be processed again
// (QuarantinedMessage.Reprocessable).
func (s *Service) Requeue(ctx context.Context, id int64, user string, services []string) (*Requeued, error) {
	m, raw, err := quarantinedMessage(ctx, s.pool, id, services)
	switch {
	case err == nil && m.Restricted:
		err = ErrNotFound
	case err == nil && m.Status != QuarantineOpen:
		err = ErrQuarantineHandled
	case err == nil && !m.Reprocessable():
		err = ErrNotReprocessable
	}
	if err != nil {
		return nil, fmt.Errorf("quarantined message %d: %w", id, err)
	}
	return &Requeued{Source: m.Source, Raw: raw, s: s, id: id, user: user, services: services}, nil
}

// Requeued is a quarantined message a user takes up again, to run through
// its intake as if received again. It stands for the Service in the
// intake's Previous, Receive and Reject, which record what becomes of the
// message on its row of the quarantine, with the user's entry in the audit
// log, in the transaction of what they store: accepted, it is a report (one
// received meanwhile when the DPI sent the same document again) and its
// row says which; refused again, its row gives the new reason. Its key
// (MSH-3, MSH-4, MSH-10) is taken over: a retransmission of the message
// gets the answer of its acceptance. Outcome then says what it became.
type Requeued struct {
	// Source is where the message came from ("mllp" or "api"), Raw its bytes.
	Source string
	Raw    []byte

	s        *Service
	id       int64
	user     string
	services []string
	// outcome is what the message became, once done; err is the last
	// error of Previous, Receive or Reject.
	outcome Reprocessed
	done    bool
	err     error
}

// Reprocessed is what became of a quarantined message processed again.
type Reprocessed struct {
	// ReportID is the report it is now, when accepted; 0 when refused again.
	ReportID int64
	// Refusal is why it was refused again.
	Refusal Refusal
}

// Outcome returns what the message became once run through the intake, or
// the error that kept it from being recorded.
func (q *Requeued) Outcome() (Reprocessed, error) {
	switch {
	case q.done:
		return q.outcome, nil
	case q.err != nil:
		return Reprocessed{}, q.err
	}
	return Reprocessed{}, fmt.Errorf("quarantined message %d: nothing recorded", q.id)
}

// Previous, for the intake, never finds an answer to give: the message is
// processed anew, its own refusal included. A key another message uses
// with other content returns ErrKeyReused, as Service.Previous does.
func (q *Requeued) Previous(ctx context.Context, in Inbound) (Answer, bool, error) {
	fingerprint, own, found, err := keyOwner(ctx, q.s.pool, in, q.id)
	switch {
	case err != nil:
		q.err = fmt.Errorf("quarantined message %d: %w", q.id, err)
		return Answer{}, false, q.err
	case found && !own && !bytes.Equal(fingerprint, in.Fingerprint):
		return Answer{}, false, ErrKeyReused
	}
	return Answer{}, false, nil
}

// Receive stores the report as Service.Receive does, and in its
// transaction marks the message accepted.
func (q *Requeued) Receive(ctx context.Context, in Inbound, r Report, respond func(reportID int64, documentID string, receivedAt time.Time, warnings []Warning) []byte) (Receipt, error) {
	rc, err := q.s.receive(ctx, in, r, respond, q)
	if err != nil {
		q.err = err
		return Receipt{}, err
	}
	q.outcome, q.done = Reprocessed{ReportID: rc.ReportID}, true
	return rc, nil
}

// key locks the message's row, then takes over its key: its own, refused
// until now, becomes accepted; without one of its own, it is recorded as
// the DPI's would be.
func (q *Requeued) key(ctx context.Context, tx pgx.Tx, in Inbound) (int64, *storedInbound, error) {
	inboundID, err := lockQuarantined(ctx, tx, q.id, q.services, QuarantineAccepted)
	if err != nil {
		return 0, nil, err
	}
	if inboundID == 0 {
		return insertInbound(ctx, tx, in, Answer{Accepted: true})
	}
	return inboundID, nil, acceptInbound(ctx, tx, inboundID, in)
}

// received marks the message accepted as the report of rc.
func (q *Requeued) received(ctx context.Context, tx pgx.Tx, rc Receipt) error {
	if !rc.Accepted {
		return fmt.Errorf("quarantined message %d: its key was refused meanwhile", q.id)
	}
	if err := actOnQuarantined(ctx, tx, q.id, QuarantineAccepted, q.user, rc.ReportID, ""); err != nil {
		return err
	}
	return audit.Write(ctx, tx, audit.Entry{Actor: q.user, Action: "quarantine_reprocessed", Object: quarantineObject(q.id),
		ReportID: rc.ReportID, Detail: fmt.Sprintf("accepté : compte rendu n° %d", rc.ReportID)})
}

// Reject records why the message is refused again on its row, which stays
// open, and returns response; raw is the row's already.
func (q *Requeued) Reject(ctx context.Context, _ Inbound, _ []byte, why Refusal, response []byte) (Answer, error) {
	err := pgx.BeginFunc(ctx, q.s.pool, func(tx pgx.Tx) error {
		if _, err := lockQuarantined(ctx, tx, q.id, q.services, QuarantineOpen); err != nil {
			return err
		}
		if err := refuseAgain(ctx, tx, q.id, q.user, why); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: q.user, Action: "quarantine_reprocessed", Object: quarantineObject(q.id),
			Detail: fmt.Sprintf("toujours refusé : erreur %d %s", why.Code, why.Location)})
	})
	if err != nil {
		q.err = fmt.Errorf("quarantined message %d: %w", q.id, err)
		return Answer{}, q.err
	}
	q.outcome, q.done = Reprocessed{Refusal: why}, true
	return Answer{Response: response}, nil
}

// quarantineObject names the quarantined message id in the audit log.
func quarantineObject(id int64) string { return fmt.Sprintf("quarantine:%d", id) }
