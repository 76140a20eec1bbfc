package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mssdispatch/mssdispatch/cda"
)

// This file holds the SQL of the paper channel: letters, batches, posting.

// unbatchedServices lists the services that have letters to print not yet in a batch.
func unbatchedServices(ctx context.Context, q dbtx) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT service FROM deliveries
		WHERE status = 'paper_pending' AND paper_batch_id IS NULL ORDER BY service`)
	if err != nil {
		return nil, fmt.Errorf("services to batch: %w", err)
	}
	services, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("services to batch: %w", err)
	}
	return services, nil
}

// letterColumns are the columns scanned by scanLetter (d deliveries, r reports, doc documents).
const letterColumns = `d.id, d.report_id, d.recipient_name, d.postal_address, r.patient_family, r.patient_given,
	r.patient_birth_date, r.patient_sex, r.document_title, d.service, r.received_at,
	coalesce(doc.pdf, ''::bytea), coalesce(doc.cda, ''::bytea), coalesce(doc.pdf_in_cda, false), doc.purged_at IS NOT NULL`

func scanLetter(row pgx.Row) (letterFacts, error) {
	var l letterFacts
	var inCDA bool
	err := row.Scan(&l.DeliveryID, &l.ReportID, &l.Name, &l.Address, &l.Patient.Family, &l.Patient.Given,
		&l.Patient.BirthDate, &l.Patient.Sex, &l.DocumentTitle, &l.Service, &l.ReceivedAt, &l.PDF, &l.CDA, &inCDA, &l.Purged)
	if err == nil {
		l.PDF, err = storedPDF(l.PDF, inCDA, func() ([]byte, error) { return cda.ExtractPDF(l.CDA) })
	}
	return l, err
}

// lockUnbatched locks up to limit letters of service to print that are in
// no batch, oldest first, skipping those another instance holds.
func lockUnbatched(ctx context.Context, tx pgx.Tx, service string, limit int) ([]letterFacts, error) {
	rows, err := tx.Query(ctx, `SELECT `+letterColumns+`
		FROM deliveries d JOIN reports r ON r.id = d.report_id LEFT JOIN documents doc ON doc.report_id = r.id AND doc.position = 1
		WHERE d.status = 'paper_pending' AND d.paper_batch_id IS NULL AND d.service = $1
		ORDER BY d.id LIMIT $2 FOR UPDATE OF d SKIP LOCKED`, service, limit)
	if err != nil {
		return nil, fmt.Errorf("letters to batch: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (letterFacts, error) { return scanLetter(row) })
	if err != nil {
		return nil, fmt.Errorf("letters to batch: %w", err)
	}
	return out, nil
}

// loadLetter loads the letter of a paper delivery, or ErrNotFound.
func loadLetter(ctx context.Context, q dbtx, deliveryID int64) (letterFacts, error) {
	l, err := scanLetter(q.QueryRow(ctx, `SELECT `+letterColumns+`
		FROM deliveries d JOIN reports r ON r.id = d.report_id LEFT JOIN documents doc ON doc.report_id = r.id AND doc.position = 1
		WHERE d.id = $1 AND d.channel = 'paper'`, deliveryID))
	if errors.Is(err, pgx.ErrNoRows) {
		return letterFacts{}, fmt.Errorf("paper delivery %d: %w", deliveryID, ErrNotFound)
	}
	if err != nil {
		return letterFacts{}, fmt.Errorf("load letter %d: %w", deliveryID, err)
	}
	return l, nil
}

// insertBatch records a batch of letters (pages[i] is the page count of letters[i]).
func insertBatch(ctx context.Context, tx pgx.Tx, b PaperBatch, pdf []byte, letters []letterFacts, pages []int) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO paper_batches (day, service, status, sink, letters, pages, pdf)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		b.Day.Format("2006-01-02"), b.Service, b.Status, b.Sink, b.Letters, b.Pages, pdf).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert paper batch: %w", err)
	}
	ids := make([]int64, len(letters))
	for i, l := range letters {
		ids[i] = l.DeliveryID
	}
	if _, err := tx.Exec(ctx, `INSERT INTO paper_batch_letters (batch_id, delivery_id, position, pages)
		SELECT $1, d, p, n FROM unnest($2::bigint[], $3::int[]) WITH ORDINALITY AS u(d, n, p)`, id, ids, pages); err != nil {
		return 0, fmt.Errorf("insert letters of batch %d: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET paper_batch_id = $1, updated_at = now() WHERE id = ANY($2)`,
		id, ids); err != nil {
		return 0, fmt.Errorf("batch letters %d: %w", id, err)
	}
	return id, nil
}

func setBatchStatus(ctx context.Context, q dbtx, id int64, status string) error {
	if _, err := q.Exec(ctx, `UPDATE paper_batches SET status = $2 WHERE id = $1`, id, status); err != nil {
		return fmt.Errorf("set batch %d %s: %w", id, status, err)
	}
	return nil
}

func setBatchPosted(ctx context.Context, q dbtx, id int64, user string) error {
	if _, err := q.Exec(ctx, `UPDATE paper_batches SET status = 'posted', posted_at = now(), posted_by = $2
		WHERE id = $1`, id, user); err != nil {
		return fmt.Errorf("set batch %d posted: %w", id, err)
	}
	return nil
}

// lockBatch locks a batch and returns its status, or ErrNotFound.
func lockBatch(ctx context.Context, tx pgx.Tx, id int64) (string, error) {
	var status string
	err := tx.QueryRow(ctx, `SELECT status FROM paper_batches WHERE id = $1 FOR UPDATE`, id).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("lock batch %d: %w", id, err)
	}
	return status, nil
}

// batchedDeliveries returns the deliveries still in a batch, waiting to be posted.
func batchedDeliveries(ctx context.Context, tx pgx.Tx, batchID int64) ([]int64, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM deliveries WHERE paper_batch_id = $1 AND status = 'paper_pending'
		ORDER BY id FOR UPDATE`, batchID)
	if err != nil {
		return nil, fmt.Errorf("letters of batch %d: %w", batchID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("letters of batch %d: %w", batchID, err)
	}
	return ids, nil
}

const batchColumns = `id, day::timestamptz, service, status, sink, letters, pages, created_at, posted_at, posted_by`

func listBatches(ctx context.Context, q dbtx, limit int) ([]PaperBatch, error) {
	rows, err := q.Query(ctx, `SELECT `+batchColumns+` FROM paper_batches ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list paper batches: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[PaperBatch])
	if err != nil {
		return nil, fmt.Errorf("list paper batches: %w", err)
	}
	return out, nil
}

func loadBatch(ctx context.Context, q dbtx, id int64) (PaperBatch, []BatchLetter, error) {
	rows, err := q.Query(ctx, `SELECT `+batchColumns+` FROM paper_batches WHERE id = $1`, id)
	if err != nil {
		return PaperBatch{}, nil, fmt.Errorf("load batch %d: %w", id, err)
	}
	b, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[PaperBatch])
	if errors.Is(err, pgx.ErrNoRows) {
		return PaperBatch{}, nil, ErrNotFound
	}
	if err != nil {
		return PaperBatch{}, nil, fmt.Errorf("load batch %d: %w", id, err)
	}
	rows, err = q.Query(ctx, `SELECT d.id, d.report_id, l.position, l.pages, d.recipient_name,
			coalesce(d.postal_address->>'city', ''), d.status, coalesce(d.paper_batch_id = l.batch_id, false)
		FROM paper_batch_letters l JOIN deliveries d ON d.id = l.delivery_id
		WHERE l.batch_id = $1 ORDER BY l.position`, id)
	if err != nil {
		return PaperBatch{}, nil, fmt.Errorf("letters of batch %d: %w", id, err)
	}
	letters, err := pgx.CollectRows(rows, pgx.RowToStructByPos[BatchLetter])
	if err != nil {
		return PaperBatch{}, nil, fmt.Errorf("letters of batch %d: %w", id, err)
	}
	return b, letters, nil
}

func batchPDF(ctx context.Context, q dbtx, id int64) ([]byte, error) {
	var pdf []byte
	err := q.QueryRow(ctx, `SELECT pdf FROM paper_batches WHERE id = $1 AND pdf IS NOT NULL`, id).Scan(&pdf)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load batch %d PDF: %w", id, err)
	}
	return pdf, nil
}
