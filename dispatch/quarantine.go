package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/mssdispatch/mssdispatch/audit"
)

// This file holds the Service's side of the quarantine: the messages the
// intake refused (see Reject), for the dashboard.

// Refusal is why the intake refused a message, as the quarantine keeps it.
type Refusal struct {
	// Reason says it to people; it may repeat the message's values (patient data).
	Reason string
	// Code and Location say it without them: the HL7 table 0357 code
	// (ERR-3, 0 for a REST request) and where, ERR-2 ("PID^1^3") or the
	// JSON field.
	Code     int
	Location string
}

// QuarantinedMessage is a refused message as the dashboard lists it: why it
// was refused, never its bytes (they hold patient data; see QuarantinedRaw).
type QuarantinedMessage struct {
	ID         int64     `json:"id"`
	ReceivedAt time.Time `json:"received_at"`
	// Kind is "hl7" or "json"; Source is "mllp" or "api".
	Kind   string `json:"kind"`
	Source string `json:"source"`
	// ControlID is MSH-10, or the Idempotency-Key of a REST request; may be empty.
	ControlID string `json:"message_control_id"`
	// MessageType is e.g. "ORU^R01", or "report"; empty when unreadable.
	MessageType string `json:"message_type"`
	// Service is the care unit the message names; empty when unknown.
	Service string `json:"service"`
	// ErrorCode and ErrorLocation are Refusal.Code and Refusal.Location.
	ErrorCode     int    `json:"error_code"`
	ErrorLocation string `json:"error_location"`
	// Reason is Refusal.Reason, empty when Restricted.
	Reason string `json:"reason"`
	// Restricted is true when the filter's viewer may not see the message's
	// patient data: its Reason is withheld.
	Restricted bool `json:"restricted"`
	// Size is the number of bytes kept, 0 once purged.
	Size int64 `json:"size"`
	// Purged is true when the retention job emptied the raw bytes.
	Purged bool `json:"purged"`
}

// QuarantineFilter selects a page of the quarantine, newest first.
type QuarantineFilter struct {
	// BeforeID, when positive, returns the messages older than this id (the
	// ID of the last message of the previous page).
	BeforeID int64
	// Limit defaults to 50, at most 500.
	Limit int
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
	msgs, err := listQuarantine(ctx, s.pool, f.BeforeID, min(f.Limit, maxQuarantineLimit), f.Services)
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
	return served(raw, s.viewed(ctx, audit.Entry{Actor: viewer, Action: "quarantine_viewed", Object: fmt.Sprintf("quarantine:%d", id),
		Detail: fmt.Sprintf("%d octets", len(raw))}))
}
