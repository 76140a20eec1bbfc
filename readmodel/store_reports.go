package readmodel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mssdispatch/mssdispatch/dispatch"
)

// This file holds the SQL of reports.go: a report as the REST API shows it,
// the types of document received.

// reportView loads a report by id, or the latest with a document id when id is 0.
func reportView(ctx context.Context, q *pgxpool.Pool, id int64, documentID string) (ReportView, error) {
	var v ReportView
	err := q.QueryRow(ctx, `SELECT r.id, r.document_id, r.status, r.received_at,
			array(SELECT doc.document_id FROM documents doc WHERE doc.report_id = r.id ORDER BY doc.position)
		FROM reports r
		WHERE ($1 <> 0 AND r.id = $1)
			OR ($1 = 0 AND r.id IN (SELECT doc.report_id FROM documents doc WHERE doc.document_id = $2))
		ORDER BY r.id DESC LIMIT 1`, id, documentID).Scan(&v.ID, &v.DocumentID, &v.Status, &v.ReceivedAt, &v.DocumentIDs)
	if errors.Is(err, pgx.ErrNoRows) {
		return ReportView{}, dispatch.ErrNotFound
	}
	if err != nil {
		return ReportView{}, fmt.Errorf("load report: %w", err)
	}
	rows, err := q.Query(ctx, `SELECT d.id,
			CASE WHEN d.channel = 'mssante' AND d.address <> '' THEN d.address
			     WHEN d.recipient_name <> '' THEN d.recipient_name
			     ELSE coalesce(nullif(trim(both ' ' FROM r.given || ' ' || r.family), ''), r.organisation) END,
			r.rpps, d.channel, d.status, d.reason, d.reason_text, d.updated_at, d.sent_at
		FROM deliveries d JOIN recipients r ON r.id = d.recipient_id
		WHERE d.report_id = $1 ORDER BY r.position, d.channel`, v.ID)
	if err != nil {
		return ReportView{}, fmt.Errorf("load deliveries: %w", err)
	}
	v.Deliveries, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeliveryView, error) {
		var d DeliveryView
		var sentAt *time.Time
		err := row.Scan(&d.ID, &d.Recipient, &d.RPPS, &d.Channel, &d.Status, &d.Reason, &d.ReasonText, &d.UpdatedAt, &sentAt)
		d.SentAt = sentAt
		return d, err
	})
	if err != nil {
		return ReportView{}, fmt.Errorf("load deliveries: %w", err)
	}
	return v, nil
}

// documentTypes returns the document codes of the newest n reports, each
// with its most frequent title, by title.
func documentTypes(ctx context.Context, q *pgxpool.Pool, n int) ([]DocumentType, error) {
	rows, err := q.Query(ctx, `SELECT document_code, mode() WITHIN GROUP (ORDER BY document_title)
		FROM (SELECT document_code, document_title FROM reports ORDER BY id DESC LIMIT $1) r
		WHERE document_code <> ''
		GROUP BY document_code ORDER BY 2, 1`, n)
	if err != nil {
		return nil, fmt.Errorf("list document types: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[DocumentType])
	if err != nil {
		return nil, fmt.Errorf("list document types: %w", err)
	}
	return out, nil
}
