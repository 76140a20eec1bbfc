package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/mssdispatch/mssdispatch/paper"
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
	// Resolver decides recipients' routes, for the dry run of proposed rules
	// (DryRun). Required.
	Resolver Resolver
	// BusinessAcks enqueues the business acknowledgements (ZAM) the DPI asks
	// for when DSNs and MDNs come back: BusinessAckConfig.Enabled() of the
	// worker registered with AddBusinessAcks.
	BusinessAcks bool
	// Sender is the applicative mailbox; its domain names the Message-ID of
	// the emails users add to a report. Defaults to "mssdispatch.invalid".
	Sender string
	// Letterhead heads the letters users reprint (LetterPDF).
	Letterhead paper.Letterhead
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Service receives reports and answers questions about them.
type Service struct {
	pool      *pgxpool.Pool
	jobs      JobInserter
	custodian Organisation
	resolver  Resolver
	// businessAcks is ServiceConfig.BusinessAcks.
	businessAcks bool
	// domain is the domain of ServiceConfig.Sender.
	domain     string
	letterhead paper.Letterhead
	logger     *slog.Logger
}

// NewService validates cfg and returns a Service.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Pool == nil || cfg.Jobs == nil || cfg.Resolver == nil {
		return nil, errors.New("dispatch: ServiceConfig.Pool, Jobs and Resolver are required")
	}
	if f := cfg.Custodian.FINESS; f != "" && len(f) != 9 {
		return nil, fmt.Errorf("dispatch: FINESS %q: want 9 characters", f)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	domain := domainOf(cfg.Sender)
	if domain == "" {
		domain = "mssdispatch.invalid"
	}
	return &Service{pool: cfg.Pool, jobs: cfg.Jobs, custodian: cfg.Custodian, resolver: cfg.Resolver,
		businessAcks: cfg.BusinessAcks, domain: domain, letterhead: cfg.Letterhead, logger: cfg.Logger}, nil
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
	// MessageType is e.g. "ORU^R01" or "report".
	MessageType string
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
	Field string
	Msg   string
}

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
// builds for the new report (from its id and document id), and the job that will resolve its recipients, in
// one transaction: when it returns, the report is committed and the response
// may be sent. A replacement supersedes the pending
// deliveries of the document it replaces and is also sent to those who
// received it; a deletion cancels the document's pending deliveries and
// notifies those who received it.
func (s *Service) Receive(ctx context.Context, in Inbound, r Report, respond func(reportID int64, documentID string) []byte) (Receipt, error) {
	if in.ControlID == "" {
		return Receipt{}, &InvalidError{Field: "control_id", Msg: "the message has no key (control id or Idempotency-Key)"}
	}
	if err := s.prepare(&r, time.Now()); err != nil {
		return Receipt{}, err
	}
	if err := r.validate(); err != nil {
		return Receipt{}, err
	}
	var rc Receipt
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		inboundID, dup, err := insertInbound(ctx, tx, in, Answer{Accepted: true})
		if err != nil {
			return err
		}
		if dup != nil {
			if !bytes.Equal(dup.fingerprint, in.Fingerprint) {
				return ErrKeyReused
			}
			rc = Receipt{ReportID: dup.reportID, Duplicate: true, Answer: dup.answer}
			return nil
		}
		if err := applyVersioning(ctx, tx, &r); err != nil {
			return err
		}
		id, err := insertReport(ctx, tx, inboundID, in, r)
		if err != nil {
			return err
		}
		rc = Receipt{ReportID: id, Answer: Answer{Response: respond(id, r.Document.ID), Accepted: true}}
		if err := setInboundResponse(ctx, tx, inboundID, rc.Response); err != nil {
			return err
		}
		if err := insertJobs(ctx, tx, s.jobs, []river.InsertManyParams{{Args: ResolveArgs{ReportID: id}}}); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return Receipt{}, fmt.Errorf("receive report: %w", err)
	}
	s.logger.InfoContext(ctx, "report received", "report_id", rc.ReportID, "control_id", in.ControlID,
		"action", r.Action, "duplicate", rc.Duplicate, "recipients", len(r.Recipients))
	return rc, nil
}

// Reject keeps a refused message in quarantine and returns the answer to
// give: response. When in has a key, the refusal is remembered so that a
// retransmission gets the same answer; if the key was meanwhile accepted or
// refused, that first answer is returned instead.
func (s *Service) Reject(ctx context.Context, in Inbound, raw []byte, reason string, response []byte) (Answer, error) {
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
		return insertQuarantine(ctx, tx, in, inboundID, raw, reason)
	})
	if err != nil {
		return Answer{}, fmt.Errorf("quarantine message: %w", err)
	}
	s.logger.WarnContext(ctx, "message quarantined", "kind", in.Kind, "source", in.Source, "control_id", in.ControlID, "bytes", len(raw))
	return answer, nil
}

// Report returns the report with id, or ErrNotFound.
func (s *Service) Report(ctx context.Context, id int64) (ReportView, error) {
	if id <= 0 {
		return ReportView{}, ErrNotFound
	}
	return reportView(ctx, s.pool, id, "")
}

// ReportByDocumentID returns the latest report carrying documentID, or ErrNotFound.
func (s *Service) ReportByDocumentID(ctx context.Context, documentID string) (ReportView, error) {
	if documentID == "" {
		return ReportView{}, ErrNotFound
	}
	return reportView(ctx, s.pool, 0, documentID)
}

// applyVersioning checks that a replacement or deletion names a known
// document, stops what is still pending for it, and adds to r those who
// already received it.
func applyVersioning(ctx context.Context, tx pgx.Tx, r *Report) error {
	var target, field, stopped, event string
	switch r.Action {
	case ActionReplace:
		target, field, stopped, event = r.Document.ParentID, "document.parent_id", StatusSuperseded, EventSuperseded
	case ActionDelete:
		target, field, stopped, event = r.Document.ID, "document.id", StatusCancelled, EventCancelled
	default:
		return nil
	}
	known, err := documentKnown(ctx, tx, target)
	if err != nil {
		return err
	}
	if !known {
		return &InvalidError{Field: field, Msg: fmt.Sprintf("document %s is unknown to this service or was deleted", target)}
	}
	if err := stopPendingDeliveries(ctx, tx, target, stopped, event); err != nil {
		return err
	}
	served, err := servedRecipients(ctx, tx, target)
	if err != nil {
		return err
	}
	for _, s := range served {
		if !listed(r.Recipients, s) {
			r.Recipients = append(r.Recipients, s)
		}
	}
	return nil
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
