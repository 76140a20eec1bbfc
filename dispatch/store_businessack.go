package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mssdispatch/mssdispatch/correspondents"
)

// This file holds the SQL of the business acknowledgements to the DPI
// (businessack.go).

// StoredBusinessAck is what a business acknowledgement needs of a delivery,
// its report and its recipient.
type StoredBusinessAck struct {
	Channel correspondents.Channel
	Address string
	Status  Status
	// DeliveredAt, ReadAt and UpdatedAt date the DSN, the MDN and the last change.
	DeliveredAt, ReadAt *time.Time
	UpdatedAt           time.Time
	// SendingApplication, SendingFacility and ControlID are the MSH-3, MSH-4
	// and MSH-10 of the message that carried the report; ReceivingApplication
	// and ReceivingFacility its MSH-5 and MSH-6.
	SendingApplication, SendingFacility, ControlID string
	ReceivingApplication, ReceivingFacility        string
	Flags                                          Flags
	// FromHL7 is true when the report came as an HL7 message (MLLP or
	// POST /api/v1/hl7), the only ones a ZAM can answer.
	FromHL7 bool
	// NationalID and RPPS identify the recipient, when known.
	NationalID, RPPS string
	// Sent and Refused list the events (Z02, Z03) whose acknowledgement the
	// DPI accepted, and refused.
	Sent, Refused []string
}

// LoadBusinessAck returns what the business acknowledgements of delivery id
// need, or ErrNotFound.
func LoadBusinessAck(ctx context.Context, q DB, id int64) (StoredBusinessAck, error) {
	var b StoredBusinessAck
	err := q.QueryRow(ctx, `SELECT d.channel, d.status, d.address, d.delivered_at, d.read_at, d.updated_at,
			r.sending_application, r.sending_facility, r.message_control_id, r.receiving_application,
			r.receiving_facility, r.flags,
			EXISTS (SELECT 1 FROM inbound_messages i WHERE i.id = r.inbound_id AND i.kind = 'hl7'),
			rc.national_id, rc.rpps,
			coalesce((SELECT array_agg(DISTINCT split_part(split_part(e.detail, ' ', 1), '^', 2))
				FROM delivery_events e WHERE e.delivery_id = d.id AND e.event = $2), '{}'),
			coalesce((SELECT array_agg(DISTINCT split_part(split_part(e.detail, ' ', 1), '^', 2))
				FROM delivery_events e WHERE e.delivery_id = d.id AND e.event = $3), '{}')
		FROM deliveries d JOIN reports r ON r.id = d.report_id JOIN recipients rc ON rc.id = d.recipient_id
		WHERE d.id = $1`, id, EventBusinessAckSent, EventBusinessAckRefused).Scan(&b.Channel, &b.Status, &b.Address,
		&b.DeliveredAt, &b.ReadAt, &b.UpdatedAt, &b.SendingApplication, &b.SendingFacility, &b.ControlID, &b.ReceivingApplication,
		&b.ReceivingFacility, &b.Flags,
		&b.FromHL7, &b.NationalID, &b.RPPS, &b.Sent, &b.Refused)
	if errors.Is(err, pgx.ErrNoRows) {
		return StoredBusinessAck{}, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return StoredBusinessAck{}, fmt.Errorf("load delivery %d for its business acknowledgement: %w", id, err)
	}
	return b, nil
}

// RecordBusinessAck appends to the history of delivery id, without changing
// its status, what the DPI answered to a business acknowledgement: event is
// EventBusinessAckSent or EventBusinessAckRefused, detail starts with
// "ZAM^<Z02|Z03> " (LoadBusinessAck reads it back).
func RecordBusinessAck(ctx context.Context, q DB, id int64, event Event, detail string) error {
	tag, err := q.Exec(ctx, `INSERT INTO delivery_events (delivery_id, from_status, to_status, event, actor_kind, detail)
		SELECT id, status, status, $2, 'system', $3 FROM deliveries WHERE id = $1`, id, event, detail)
	if err != nil {
		return fmt.Errorf("record delivery %d event %s: %w", id, event, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	return nil
}
