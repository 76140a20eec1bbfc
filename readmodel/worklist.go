package readmodel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/postal"
)

// This file holds what the secretaries' dashboard reads: the worklists, the
// search of all deliveries and a report with its timeline.

// Worklists of the dashboard.
const (
	WorklistReview    = "review"    // À vérifier: deliveries in review
	WorklistFailed    = "failed"    // Échecs: failed, or flagged for attention (unread, reply)
	WorklistPaper     = "paper"     // Courrier papier: paper_pending
	WorklistScheduled = "scheduled" // Programmés: waiting for the delay of a rule
	WorklistAll       = "all"       // Tous les envois
)

// Worklists lists the worklists in the dashboard's order.
var Worklists = []string{WorklistReview, WorklistFailed, WorklistPaper, WorklistScheduled, WorklistAll}

// DeliveryFilter selects deliveries for a worklist or a search; its zero
// value is every delivery, newest first.
type DeliveryFilter struct {
	// Worklist is one of Worklists; empty is WorklistAll.
	Worklist string
	// Patient is the start of the patient's name (last name first, accents
	// and case ignored), or an exact IPP or INS.
	Patient string
	// Correspondent is the start of the recipient's name (last name first),
	// an RPPS, or, when it has an @, the start of an MSSanté address.
	Correspondent string
	// DocumentCode is a LOINC code; Service a care unit; Status a delivery status.
	DocumentCode, Service string
	Status                dispatch.Status
	// From and To bound the creation of the delivery, To excluded; zero is unbounded.
	From, To time.Time
	// Services restricts to the reports of these services (a secretary
	// limited to hers); nil is every service.
	Services []string
	// After is the cursor of the page before (DeliveryPage.Next); empty is the first page.
	After string
	// Limit is the page size. Defaults to 50, at most 200.
	Limit int
}

// DeliveryRow is one line of a worklist.
type DeliveryRow struct {
	ID, ReportID  int64
	Channel       correspondents.Channel
	Status        dispatch.Status
	Recipient     string // the recipient's name
	Address       string // the MSSanté address, for an mssante delivery
	ReasonText    string
	Attention     string
	LastError     string
	Patient       string // family and given names
	PatientIPP    string
	DocumentTitle string
	DocumentCode  string
	Service       string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// PostalAddress is where a letter to the recipient goes (zero when unknown).
	PostalAddress postal.PostalAddress
	// Choices are the addresses a secretary chooses among, for an email in review.
	Choices []string
	// ScheduledFor is when a scheduled delivery leaves; RuleName and
	// RuleVersion the rule that decided it.
	ScheduledFor *time.Time
	RuleName     string
	RuleVersion  int
}

// DeliveryPage is a page of deliveries; Next is the cursor of the next page,
// empty on the last one.
type DeliveryPage struct {
	Rows []DeliveryRow
	Next string
}

// ErrBadFilter is wrapped by the error of a filter that cannot be applied.
var ErrBadFilter = errors.New("invalid filter")

// Deliveries returns a page of the deliveries f selects, newest first, by
// keyset pagination (the page's cost does not grow with the table). A
// search by patient is recorded in the audit log in the name of viewer.
func (s *Reader) Deliveries(ctx context.Context, viewer string, f DeliveryFilter) (DeliveryPage, error) {
	if f.Worklist == "" {
		f.Worklist = WorklistAll
	}
	if !slices.Contains(Worklists, f.Worklist) {
		return DeliveryPage{}, fmt.Errorf("%w: worklist %q", ErrBadFilter, f.Worklist)
	}
	if f.Status != "" && !f.Status.Known() {
		return DeliveryPage{}, fmt.Errorf("%w: status %q", ErrBadFilter, f.Status)
	}
	if f.Patient != "" && f.After == "" {
		if err := audit.Viewed(ctx, s.pool, audit.Entry{Actor: viewer, Action: "patient_searched", Patient: f.Patient,
			Detail: "liste " + f.Worklist}); err != nil {
			return DeliveryPage{}, err
		}
	}
	var after int64
	if f.After != "" {
		var err error
		if after, err = strconv.ParseInt(f.After, 36, 64); err != nil || after <= 0 {
			return DeliveryPage{}, fmt.Errorf("%w: cursor %q", ErrBadFilter, f.After)
		}
	}
	switch {
	case f.Limit <= 0:
		f.Limit = 50
	case f.Limit > 200:
		f.Limit = 200
	}
	rows, err := searchDeliveries(ctx, s.pool, f, after)
	if err != nil {
		return DeliveryPage{}, err
	}
	page := DeliveryPage{Rows: rows}
	if len(rows) > f.Limit {
		page.Rows = rows[:f.Limit]
		page.Next = strconv.FormatInt(page.Rows[f.Limit-1].ID, 36)
	}
	return page, nil
}

// CountCap bounds the counts of WorklistCounts: a count of CountCap means
// "CountCap or more".
const CountCap = 1000

// WorklistCounts returns the number of deliveries in each worklist but
// WorklistAll, up to CountCap, for the reports of services (nil: every service).
func (s *Reader) WorklistCounts(ctx context.Context, services []string) (map[string]int64, error) {
	return worklistCounts(ctx, s.pool, services, CountCap)
}

// ReportDetail is a report as the dashboard shows it.
type ReportDetail struct {
	ID               int64
	DocumentID       string
	ParentDocumentID string
	// OtherFormatID is the id of the report's second document (the same
	// report as CDA level 1 and level 3 in one ORU), empty for most.
	OtherFormatID   string
	Action          dispatch.Action
	Status          string
	ReceivedAt      time.Time
	Patient         dispatch.Patient
	Service         string
	DocumentCode    string
	DocumentTitle   string
	Confidentiality string
	// HasPDF is true when the document's PDF is stored; Purged when the
	// retention purged the document's bytes.
	HasPDF, Purged bool
	Recipients     []RecipientDetail
	// Timeline is the report's history, oldest first.
	Timeline []TimelineEvent
}

// RecipientDetail is a recipient of a report with its deliveries.
type RecipientDetail struct {
	ID         int64
	Role       string
	Kind       string
	Name       string
	RPPS       string
	NationalID string
	Address    string // the MSSanté address the DPI gave
	Deliveries []DeliveryDetail
}

// DeliveryDetail is a delivery as the report page shows it.
type DeliveryDetail struct {
	ID            int64
	Channel       correspondents.Channel
	Status        dispatch.Status
	Address       string
	Name          string
	PostalAddress postal.PostalAddress
	Reason        correspondents.Reason
	ReasonText    string
	RuleName      string
	RuleVersion   int
	LastError     string
	Attention     string
	SendAttempts  int
	// Sending is true while the email is handed to SMTP.
	Sending    bool
	FallbackOf int64
	UpdatedAt  time.Time
	SentAt     *time.Time
	// Choices are the addresses a secretary chooses among, for an email in review.
	Choices []string
	// ScheduledFor is when a scheduled delivery leaves.
	ScheduledFor *time.Time
}

// Actions a user may take on a delivery (DeliveryDetail.Actions).
const (
	ActionApprove = "approve"
	ActionSendNow = "send-now" // a scheduled delivery, before its rule's delay ends
	ActionSendTo  = "send-to"  // an email in review, to one of its Choices
	ActionHold    = "hold"
	ActionEdit    = "edit"
	ActionPaper   = "paper"
	ActionResend  = "resend"
	ActionCancel  = "cancel"
	ActionPosted  = "posted"
	ActionReturn  = "return"
)

// Actions returns the actions a user may take on d now, in the order the
// dashboard offers them.
func (d DeliveryDetail) Actions() []string {
	var out []string
	add := func(ok bool, a string) {
		if ok {
			out = append(out, a)
		}
	}
	mssante := d.Channel == correspondents.ChannelMSSante
	add(d.Status == dispatch.StatusReview && approvable(d.Status, d.Channel, d.Address, d.PostalAddress), ActionApprove)
	add(d.Status == dispatch.StatusScheduled, ActionSendNow)
	add(d.Status == dispatch.StatusScheduled || d.Status == dispatch.StatusPaperPending, ActionHold)
	add(d.Status == dispatch.StatusReview || (d.Status == dispatch.StatusFailed && mssante) || d.Status == dispatch.StatusPaperPending, ActionEdit)
	add(mssante && dispatch.CanSwitchToPaper(d.Status, d.Sending), ActionPaper)
	add(mssante && d.Status == dispatch.StatusFailed, ActionResend)
	add(!d.Sending && dispatch.Allowed(d.Status, dispatch.StatusCancelled) == nil, ActionCancel)
	add(d.Status == dispatch.StatusPaperPending, ActionPosted)
	add(d.Status == dispatch.StatusPaperSent, ActionReturn)
	return out
}

// Approvable reports whether the delivery in review can be approved: an
// email with an address (a trusted one: the only kind it may hold), or a
// letter with a postal address. A button that cannot succeed is not offered.
func (d DeliveryRow) Approvable() bool {
	return d.Status == dispatch.StatusReview && approvable(d.Status, d.Channel, d.Address, d.PostalAddress)
}

func approvable(status dispatch.Status, channel correspondents.Channel, address string, letterTo postal.PostalAddress) bool {
	if status != dispatch.StatusReview && status != dispatch.StatusScheduled {
		return false
	}
	if channel == correspondents.ChannelMSSante {
		return address != ""
	}
	return letterTo.Known()
}

// TimelineEvent is one event of a report's history.
type TimelineEvent struct {
	At         time.Time
	DeliveryID int64 // 0 for the report's own events
	Recipient  string
	Channel    correspondents.Channel
	From, To   dispatch.Status // "" for the report's own events
	Event      dispatch.Event
	ActorKind  string
	Actor      string
	Detail     string
}

// EventReceived is the timeline's event of the report's reception.
const EventReceived dispatch.Event = "received"

// ReportDetail returns the report id with its recipients, deliveries and
// timeline, or ErrNotFound; viewer's reading is in the audit log.
func (s *Reader) ReportDetail(ctx context.Context, viewer string, id int64) (ReportDetail, error) {
	d, err := reportDetail(ctx, s.pool, id)
	if err != nil {
		return ReportDetail{}, err
	}
	return audit.Served(ctx, s.pool, d, audit.Entry{Actor: viewer, Action: "report_viewed", Object: fmt.Sprintf("report:%d", id), ReportID: id})
}

// DocumentPDF returns the PDF of the report id, or ErrNotFound when it has
// none (a CDA without PDF, or purged); viewer's download is in the audit log.
func (s *Reader) DocumentPDF(ctx context.Context, viewer string, reportID int64) ([]byte, error) {
	pdf, err := dispatch.ReportPDF(ctx, s.pool, reportID)
	if err != nil {
		return nil, err
	}
	return audit.Served(ctx, s.pool, pdf, audit.Entry{Actor: viewer, Action: "document_downloaded", Object: fmt.Sprintf("report:%d", reportID),
		ReportID: reportID})
}

// ReportService returns the service of the report id, to check who may see it.
func (s *Reader) ReportService(ctx context.Context, reportID int64) (string, error) {
	return reportService(ctx, s.pool, reportID)
}

// DeliveryReport returns the report of the delivery id, or ErrNotFound.
func (s *Reader) DeliveryReport(ctx context.Context, deliveryID int64) (int64, error) {
	return deliveryReport(ctx, s.pool, deliveryID)
}
