package quarantine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/dispatch"
)

// Status is where a refused message stands.
type Status string

// The statuses of a refused message.
const (
	// Open is a message nobody has dealt with yet, or processed again and
	// refused again.
	Open Status = "open"
	// Accepted is a message processed again and accepted: it is a report.
	Accepted Status = "accepted"
	// Dismissed is a message a user set aside, saying why.
	Dismissed Status = "dismissed"
)

// next says what may follow each status: an open message may be processed
// again (and stay open when refused again), be accepted or set aside; the
// others are final.
var next = map[Status][]Status{
	Open: {Open, Accepted, Dismissed},
}

// ErrHandled is returned for a change to a quarantined message that was
// accepted or set aside meanwhile.
var ErrHandled = errors.New("the quarantined message was already dealt with")

// ErrNotReprocessable is returned by Requeue for a message that cannot be
// processed again: a REST request (its client got the refusal and sends it
// again), or bytes purged or kept only in part.
var ErrNotReprocessable = errors.New("the quarantined message cannot be processed again")

// Message is a refused message as the dashboard lists it: why it was
// refused and what became of it, never its bytes (they hold patient data;
// see Desk.Raw).
type Message struct {
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
	// ErrorCode and ErrorLocation are the dispatch.Refusal's Code and Location.
	ErrorCode     int    `json:"error_code"`
	ErrorLocation string `json:"error_location"`
	// Reason, Patient and Document are the dispatch.Refusal's, empty when Restricted.
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
	// Partial is the dispatch.Refusal's Partial.
	Partial bool   `json:"partial"`
	Status  Status `json:"status"`
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
func (m Message) Reprocessable() bool {
	return m.Status == Open && m.Kind == "hl7" && !m.Partial && !m.Purged && !m.Restricted
}

// Dismissable reports whether the viewer it was listed for may set the
// message aside: open and seen whole.
func (m Message) Dismissable() bool {
	return m.Status == Open && !m.Restricted
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
func (m Message) Remedy() Remedy {
	switch {
	case m.Kind == "json":
		return RemedyCaller
	case m.Partial, m.ErrorCode >= 200 && m.ErrorCode < 207:
		return RemedyInterface
	}
	return RemedyContent
}

// Filter selects a page of the quarantine, newest first.
type Filter struct {
	// BeforeID, when positive, returns the messages older than this id (the
	// ID of the last message of the previous page).
	BeforeID int64
	// Limit defaults to 50, at most 500.
	Limit int
	// Status, when not empty, selects the messages in that status.
	Status Status
	// Services, when not nil, are the services whose messages the viewer
	// sees whole: the messages of another service, or of none known, come
	// Restricted. Nil is every service (admins, and the users of every
	// service).
	Services []string
}

// Bounds of a page of List.
const (
	defaultLimit = 50
	maxLimit     = 500
)

// Desk is the quarantine as the dashboard and the HL7 intake see it: the
// messages the intake refused (dispatch.Service.Reject), and what users do
// with them: process one again once its cause is fixed (Requeue, through
// the intake), or set it aside (Dismiss).
type Desk struct {
	pool *pgxpool.Pool
	// service stores what a message processed again becomes.
	service *dispatch.Service
}

// NewDesk returns the quarantine kept in pool; a message processed again
// and accepted is received by service.
func NewDesk(pool *pgxpool.Pool, service *dispatch.Service) *Desk {
	return &Desk{pool: pool, service: service}
}

// List returns the refused messages f selects, newest first, without their
// bytes, and without the patient data of those f.Services excludes.
func (d *Desk) List(ctx context.Context, f Filter) ([]Message, error) {
	if f.Limit <= 0 {
		f.Limit = defaultLimit
	}
	msgs, err := selectPage(ctx, d.pool, f.BeforeID, min(f.Limit, maxLimit), f.Status, f.Services)
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	return msgs, nil
}

// Raw returns the bytes of the refused message id as received, empty once
// the retention job purged them, or dispatch.ErrNotFound; viewer's reading
// of bytes still there is in the audit log.
func (d *Desk) Raw(ctx context.Context, viewer string, id int64) ([]byte, error) {
	if id <= 0 {
		return nil, fmt.Errorf("quarantined message %d: %w", id, dispatch.ErrNotFound)
	}
	raw, err := selectRaw(ctx, d.pool, id)
	if err != nil {
		return nil, fmt.Errorf("quarantined message %d: %w", id, err)
	}
	if len(raw) == 0 {
		return raw, nil
	}
	return audit.Served(ctx, d.pool, raw, audit.Entry{Actor: viewer, Action: "quarantine_viewed", Object: object(id),
		Detail: fmt.Sprintf("%d octets", len(raw))})
}

// maxNoteLen is the longest reason for setting a message aside, in characters.
const maxNoteLen = 500

// Dismiss sets the quarantined message id aside for user, who sees
// services (nil: all), saying why (required): it stays listed as
// dismissed, and the audit log records it with the change. It returns
// dispatch.ErrNotFound for a message the user does not see whole, an error
// wrapping ErrHandled once accepted or set aside, a
// *dispatch.InvalidError without a reason.
func (d *Desk) Dismiss(ctx context.Context, id int64, user string, services []string, why string) error {
	why = strings.TrimSpace(why)
	switch {
	case why == "":
		return &dispatch.InvalidError{Field: "why", Msg: "indiquez pourquoi le message est écarté"}
	case utf8.RuneCountInString(why) > maxNoteLen:
		return &dispatch.InvalidError{Field: "why", Msg: fmt.Sprintf("le motif dépasse %d caractères", maxNoteLen)}
	}
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := lockMessage(ctx, tx, id, services, Dismissed); err != nil {
			return err
		}
		if err := actOn(ctx, tx, id, Dismissed, user, 0, why); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: user, Action: "quarantine_dismissed", Object: object(id), Detail: why})
	})
	if err != nil {
		return fmt.Errorf("dismiss quarantined message %d: %w", id, err)
	}
	return nil
}

// Requeue takes up the quarantined message id again for user, who sees
// services (nil: all), to run it through its intake as if received again
// (hl7intake.Handler.Reprocess). It returns dispatch.ErrNotFound for a
// message the user does not see whole, ErrHandled once accepted or set
// aside, ErrNotReprocessable for a message that cannot be processed again
// (Message.Reprocessable).
func (d *Desk) Requeue(ctx context.Context, id int64, user string, services []string) (*Requeued, error) {
	m, raw, err := selectMessage(ctx, d.pool, id, services)
	switch {
	case err == nil && m.Restricted:
		err = dispatch.ErrNotFound
	case err == nil && m.Status != Open:
		err = ErrHandled
	case err == nil && !m.Reprocessable():
		err = ErrNotReprocessable
	}
	if err != nil {
		return nil, fmt.Errorf("quarantined message %d: %w", id, err)
	}
	return &Requeued{Source: m.Source, Raw: raw, d: d, id: id, user: user, services: services}, nil
}

// Requeued is a quarantined message a user takes up again, to run through
// its intake as if received again. It stands for the dispatch.Service in
// the intake's Previous, Receive and Reject, which record what becomes of
// the message on its row of the quarantine, with the user's entry in the
// audit log, in the transaction of what they store: accepted, it is a
// report (one received meanwhile when the DPI sent the same document
// again) and its row says which; refused again, its row gives the new
// reason. Its key (MSH-3, MSH-4, MSH-10) is taken over: a retransmission of
// the message gets the answer of its acceptance. Outcome then says what it
// became.
type Requeued struct {
	// Source is where the message came from ("mllp" or "api"), Raw its bytes.
	Source string
	Raw    []byte

	d        *Desk
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
	Refusal dispatch.Refusal
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
// with other content returns dispatch.ErrKeyReused, as
// dispatch.Service.Previous does.
func (q *Requeued) Previous(ctx context.Context, in dispatch.Inbound) (dispatch.Answer, bool, error) {
	fingerprint, own, found, err := keyOwner(ctx, q.d.pool, in, q.id)
	switch {
	case err != nil:
		q.err = fmt.Errorf("quarantined message %d: %w", q.id, err)
		return dispatch.Answer{}, false, q.err
	case found && !own && !bytes.Equal(fingerprint, in.Fingerprint):
		return dispatch.Answer{}, false, dispatch.ErrKeyReused
	}
	return dispatch.Answer{}, false, nil
}

// Receive stores the report as dispatch.Service.Receive does, and in its
// transaction marks the message accepted.
func (q *Requeued) Receive(ctx context.Context, in dispatch.Inbound, r dispatch.Report, respond func(reportID int64, documentID string, receivedAt time.Time, warnings []dispatch.Warning) []byte) (dispatch.Receipt, error) {
	rc, err := q.d.service.ReceiveVia(ctx, in, r, respond, (*via)(q))
	if err != nil {
		q.err = err
		return dispatch.Receipt{}, err
	}
	q.outcome, q.done = Reprocessed{ReportID: rc.ReportID}, true
	return rc, nil
}

// via is the message as dispatch.Service.ReceiveVia records it (a
// dispatch.Receiving).
type via Requeued

// Key locks the message's row, then hands over the key it was refused
// with, to be accepted (0: none of its own, recorded as the DPI's would be).
func (v *via) Key(ctx context.Context, tx pgx.Tx, _ dispatch.Inbound) (int64, error) {
	return lockMessage(ctx, tx, v.id, v.services, Accepted)
}

// Received marks the message accepted as the report of rc.
func (v *via) Received(ctx context.Context, tx pgx.Tx, rc dispatch.Receipt) error {
	if !rc.Accepted {
		return fmt.Errorf("quarantined message %d: its key was refused meanwhile", v.id)
	}
	if err := actOn(ctx, tx, v.id, Accepted, v.user, rc.ReportID, ""); err != nil {
		return err
	}
	return audit.Write(ctx, tx, audit.Entry{Actor: v.user, Action: "quarantine_reprocessed", Object: object(v.id),
		ReportID: rc.ReportID, Detail: fmt.Sprintf("accepté : compte rendu n° %d", rc.ReportID)})
}

// Reject records why the message is refused again on its row, which stays
// open, and returns response; raw is the row's already.
func (q *Requeued) Reject(ctx context.Context, _ dispatch.Inbound, _ []byte, why dispatch.Refusal, response []byte) (dispatch.Answer, error) {
	err := pgx.BeginFunc(ctx, q.d.pool, func(tx pgx.Tx) error {
		if _, err := lockMessage(ctx, tx, q.id, q.services, Open); err != nil {
			return err
		}
		if err := refuseAgain(ctx, tx, q.id, q.user, why); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: q.user, Action: "quarantine_reprocessed", Object: object(q.id),
			Detail: fmt.Sprintf("toujours refusé : erreur %d %s", why.Code, why.Location)})
	})
	if err != nil {
		q.err = fmt.Errorf("quarantined message %d: %w", q.id, err)
		return dispatch.Answer{}, q.err
	}
	q.outcome, q.done = Reprocessed{Refusal: why}, true
	return dispatch.Answer{Response: response}, nil
}

// object names the quarantined message id in the audit log.
func object(id int64) string { return fmt.Sprintf("quarantine:%d", id) }
