package dispatch

import (
	"context"
	"fmt"
	"time"
)

// This file holds the Service's side of the quarantine: the messages the
// intake refused (see Reject), for the dashboard.

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
	Reason    string `json:"reason"`
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
}

// Bounds of a page of Quarantined.
const (
	defaultQuarantineLimit = 50
	maxQuarantineLimit     = 500
)

// Quarantined returns the refused messages f selects, newest first, without
// their bytes.
func (s *Service) Quarantined(ctx context.Context, f QuarantineFilter) ([]QuarantinedMessage, error) {
	if f.Limit <= 0 {
		f.Limit = defaultQuarantineLimit
	}
	msgs, err := listQuarantine(ctx, s.pool, f.BeforeID, min(f.Limit, maxQuarantineLimit))
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	return msgs, nil
}

// QuarantinedRaw returns the bytes of the refused message id as received,
// empty once the retention job purged them, or ErrNotFound.
func (s *Service) QuarantinedRaw(ctx context.Context, id int64) ([]byte, error) {
	if id <= 0 {
		return nil, fmt.Errorf("quarantined message %d: %w", id, ErrNotFound)
	}
	raw, err := quarantineRaw(ctx, s.pool, id)
	if err != nil {
		return nil, fmt.Errorf("quarantined message %d: %w", id, err)
	}
	return raw, nil
}
