package dispatch

import (
	"errors"
	"time"
)

// Report is a validated report received from the DPI, with the recipients it
// listed.
type Report struct {
	// Source is "mllp" or "api".
	Source string
	// SendingApplication, SendingFacility and ControlID identify the message
	// (MSH-3, MSH-4, MSH-10); a second report with the same three is a
	// retransmission.
	SendingApplication string
	SendingFacility    string
	ControlID          string
	// MessageType is e.g. "ORU^R01".
	MessageType string
	Patient     Patient
	Document    Document
	Recipients  []Recipient
}

// Patient is the report's patient.
type Patient struct {
	Family, Given string
	BirthDate     string // YYYYMMDD
	Sex           string
	INS, INSOID   string // matricule and OID of the INS, when given
	IPP           string // the hospital's patient id
}

// Document is the report's document.
type Document struct {
	// ID is the XDS uniqueId: root, or root^extension.
	ID    string
	Code  string // LOINC
	Title string
	CDA   []byte
	PDF   []byte // nil when the CDA embeds none
}

// Recipient is a correspondent the DPI listed.
type Recipient struct {
	// Role is the PRT-4 participation, e.g. "RCT".
	Role string
	// NationalID is "8" + RPPS or "0" + ADELI, when known.
	NationalID string
	// RPPS is the 11-digit RPPS number, when known.
	RPPS          string
	Family, Given string
	// Address is the MSSanté address the DPI gave, if any.
	Address string
}

// Name is the recipient's display name.
func (r Recipient) Name() string {
	switch {
	case r.Family == "":
		return r.Given
	case r.Given == "":
		return r.Family
	}
	return r.Given + " " + r.Family
}

// Receipt is the outcome of receiving a report.
type Receipt struct {
	ReportID int64
	// Duplicate is true when the report was a retransmission of one already stored.
	Duplicate bool
}

// Report statuses.
const (
	ReportReceived = "received" // stored, recipients not yet resolved
	ReportResolved = "resolved" // deliveries created
)

// Delivery statuses (the contract's).
const (
	StatusReview       = "review"
	StatusScheduled    = "scheduled"
	StatusQueued       = "queued"
	StatusSent         = "sent"
	StatusDelivered    = "delivered"
	StatusRead         = "read"
	StatusFailed       = "failed"
	StatusPaperPending = "paper_pending"
	StatusPaperSent    = "paper_sent"
	StatusCancelled    = "cancelled"
	StatusSuperseded   = "superseded"
)

// ErrNotFound is returned when a report does not exist.
var ErrNotFound = errors.New("not found")

// ReportView is a report as users and the DPI see it.
type ReportView struct {
	ID         int64          `json:"id"`
	DocumentID string         `json:"document_id"`
	Status     string         `json:"status"`
	ReceivedAt time.Time      `json:"received_at"`
	Deliveries []DeliveryView `json:"deliveries"`
}

// DeliveryView is one delivery as users and the DPI see it.
type DeliveryView struct {
	// Recipient is the MSSanté address of an mssante delivery, else the name.
	Recipient  string     `json:"recipient"`
	RPPS       string     `json:"rpps,omitempty"`
	Channel    string     `json:"channel"`
	Status     string     `json:"status"`
	Reason     string     `json:"reason"`
	ReasonText string     `json:"reason_text"`
	UpdatedAt  time.Time  `json:"updated_at"`
	SentAt     *time.Time `json:"sent_at,omitempty"`
}
