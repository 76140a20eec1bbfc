package readmodel

import (
	"context"
	"fmt"
	"time"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
)

// This file holds what the REST API reads (a report and its deliveries, as
// the DPI sees them) and the types of document the rules screen offers.

// ReportView is a report as users and the DPI see it.
type ReportView struct {
	ID         int64  `json:"id"`
	DocumentID string `json:"document_id"`
	// DocumentIDs are the ids of all its documents: DocumentID, and the
	// same report in another format when an ORU carried two.
	DocumentIDs []string       `json:"document_ids"`
	Status      string         `json:"status"`
	ReceivedAt  time.Time      `json:"received_at"`
	Deliveries  []DeliveryView `json:"deliveries"`
}

// DeliveryView is one delivery as users and the DPI see it.
type DeliveryView struct {
	ID int64 `json:"id"`
	// Recipient is the MSSanté address of an mssante delivery, else the name.
	Recipient  string                 `json:"recipient"`
	RPPS       string                 `json:"rpps,omitempty"`
	Channel    correspondents.Channel `json:"channel"`
	Status     dispatch.Status        `json:"status"`
	Reason     correspondents.Reason  `json:"reason"`
	ReasonText string                 `json:"reason_text"`
	UpdatedAt  time.Time              `json:"updated_at"`
	SentAt     *time.Time             `json:"sent_at,omitempty"`
}

// Report returns the report with id, or ErrNotFound; viewer's reading is
// in the audit log.
func (s *Reader) Report(ctx context.Context, viewer string, id int64) (ReportView, error) {
	if id <= 0 {
		return ReportView{}, dispatch.ErrNotFound
	}
	return s.viewReport(ctx, viewer, id, "")
}

// ReportByDocumentID returns the latest report carrying documentID, or
// ErrNotFound; viewer's reading is in the audit log.
func (s *Reader) ReportByDocumentID(ctx context.Context, viewer, documentID string) (ReportView, error) {
	if documentID == "" {
		return ReportView{}, dispatch.ErrNotFound
	}
	return s.viewReport(ctx, viewer, 0, documentID)
}

func (s *Reader) viewReport(ctx context.Context, viewer string, id int64, documentID string) (ReportView, error) {
	v, err := reportView(ctx, s.pool, id, documentID)
	if err != nil {
		return ReportView{}, err
	}
	return audit.Served(ctx, s.pool, v, audit.Entry{Actor: viewer, Action: "report_viewed", Object: fmt.Sprintf("report:%d", v.ID), ReportID: v.ID})
}

// documentTypesReports is how many of the newest reports DocumentTypes reads.
const documentTypesReports = 10_000

// DocumentType is a type of document the service received: its LOINC code
// and the title it came with most often.
type DocumentType struct {
	Code  string `json:"code"`
	Title string `json:"title"`
}

// DocumentTypes returns the types of document of the newest reports (at
// most 10,000), by title, so that the rules' authors can pick a code by
// its name.
func (s *Reader) DocumentTypes(ctx context.Context) ([]DocumentType, error) {
	return documentTypes(ctx, s.pool, documentTypesReports)
}
