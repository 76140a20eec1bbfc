package letters

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/postal"
)

// This file holds the SQL of the paper channel: letters, batches, posting.
// The deliveries it reads are the domain's: their statuses change through
// dispatch.Transition, their batch through dispatch.PutInBatch.

// unbatchedServices lists the services that have letters to print not yet in a batch.
func unbatchedServices(ctx context.Context, q dispatch.DB) ([]string, error) {
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

// letterColumns are the columns scanned by scanLetter, from letterTables.
const letterColumns = `d.id, d.report_id, d.recipient_name, d.postal_address, r.patient_family, r.patient_given,
	r.patient_birth_date, r.patient_sex, r.document_title, d.service, r.received_at,
	coalesce(doc.pdf, ''::bytea), coalesce(doc.cda, ''::bytea), coalesce(doc.pdf_in_cda, false), doc.purged_at IS NOT NULL,
	coalesce(doc.document_id, ''), rc.kind, d.reason, coalesce(e.status, '')`

// letterTables are the tables of letterColumns: d the paper delivery, r its
// report, doc its document, rc its recipient, e the recipient's email.
const letterTables = `deliveries d JOIN reports r ON r.id = d.report_id JOIN recipients rc ON rc.id = d.recipient_id
	LEFT JOIN documents doc ON doc.report_id = r.id AND doc.position = 1
	LEFT JOIN deliveries e ON e.recipient_id = d.recipient_id AND e.channel = 'mssante'`

func scanLetter(row pgx.Row) (letterFacts, error) {
	var l letterFacts
	var inCDA bool
	err := row.Scan(&l.DeliveryID, &l.ReportID, &l.Name, &l.Address, &l.Patient.Family, &l.Patient.Given,
		&l.Patient.BirthDate, &l.Patient.Sex, &l.DocumentTitle, &l.Service, &l.ReceivedAt, &l.PDF, &l.CDA, &inCDA, &l.Purged,
		&l.DocumentID, &l.RecipientKind, &l.Reason, &l.EmailStatus)
	if err == nil && inCDA {
		// The CDA embeds the document's PDF, stored once, there.
		if l.PDF, err = cda.ExtractPDF(l.CDA); err != nil {
			err = fmt.Errorf("the PDF of the stored CDA: %w", err)
		}
	}
	return l, err
}

// lockUnbatched locks up to limit letters of service to print that are in
// no batch, oldest first, skipping those another instance holds.
func lockUnbatched(ctx context.Context, tx pgx.Tx, service string, limit int) ([]letterFacts, error) {
	rows, err := tx.Query(ctx, `SELECT `+letterColumns+` FROM `+letterTables+`
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

// loadLetter loads the letter of a paper delivery, or dispatch.ErrNotFound.
func loadLetter(ctx context.Context, q dispatch.DB, deliveryID int64) (letterFacts, error) {
	l, err := scanLetter(q.QueryRow(ctx, `SELECT `+letterColumns+` FROM `+letterTables+`
		WHERE d.id = $1 AND d.channel = 'paper'`, deliveryID))
	if errors.Is(err, pgx.ErrNoRows) {
		return letterFacts{}, fmt.Errorf("paper delivery %d: %w", deliveryID, dispatch.ErrNotFound)
	}
	if err != nil {
		return letterFacts{}, fmt.Errorf("load letter %d: %w", deliveryID, err)
	}
	return l, nil
}

// printedLetters returns the letters already printed for the documents of
// letters (in a batch, not withdrawn since, or posted), by what makes them
// the same letter.
func printedLetters(ctx context.Context, q dispatch.DB, letters []letterFacts) (map[letterKey]printedLetter, error) {
	var documents []string
	for _, l := range letters {
		if l.DocumentID != "" && !slices.Contains(documents, l.DocumentID) {
			documents = append(documents, l.DocumentID)
		}
	}
	printed := map[letterKey]printedLetter{}
	if len(documents) == 0 {
		return printed, nil
	}
	rows, err := q.Query(ctx, `SELECT d.id, coalesce(d.paper_batch_id, 0), doc.document_id, d.recipient_name, d.postal_address
		FROM deliveries d JOIN documents doc ON doc.report_id = d.report_id AND doc.position = 1
		WHERE doc.document_id = ANY ($1) AND d.channel = 'paper'
			AND (d.status = 'paper_sent' OR (d.status = 'paper_pending' AND d.paper_batch_id IS NOT NULL))
		ORDER BY d.id`, documents)
	if err != nil {
		return nil, fmt.Errorf("letters printed: %w", err)
	}
	var p printedLetter
	var document, name string
	var address postal.PostalAddress
	_, err = pgx.ForEachRow(rows, []any{&p.DeliveryID, &p.BatchID, &document, &name, &address}, func() error {
		if key, ok := newLetterKey(document, name, address); ok {
			if _, seen := printed[key]; !seen {
				printed[key] = p
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("letters printed: %w", err)
	}
	return printed, nil
}

// insertBatch records a batch of the letters of the deliveries ids (pages[i]
// is the page count of ids[i]) and the duplicates it did not print.
func insertBatch(ctx context.Context, tx pgx.Tx, b Batch, pdf []byte, ids []int64, pages []int, dups []duplicate) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO paper_batches (day, service, status, sink, letters, pages, pdf)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		b.Day.Format("2006-01-02"), b.Service, b.Status, b.Sink, b.Letters, b.Pages, pdf).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert paper batch: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO paper_batch_letters (batch_id, delivery_id, position, pages)
		SELECT $1, d, p, n FROM unnest($2::bigint[], $3::int[]) WITH ORDINALITY AS u(d, n, p)`, id, ids, pages); err != nil {
		return 0, fmt.Errorf("insert letters of batch %d: %w", id, err)
	}
	for _, d := range dups {
		if _, err := tx.Exec(ctx, `INSERT INTO paper_batch_letters (batch_id, delivery_id, position, pages, duplicate_of)
			VALUES ($1, $2, $3, 0, $4)`, id, d.DeliveryID, d.Of.Position, d.Of.DeliveryID); err != nil {
			return 0, fmt.Errorf("insert duplicates of batch %d: %w", id, err)
		}
	}
	return id, nil
}

func setBatchStatus(ctx context.Context, q dispatch.DB, id int64, status string) error {
	if _, err := q.Exec(ctx, `UPDATE paper_batches SET status = $2 WHERE id = $1`, id, status); err != nil {
		return fmt.Errorf("set batch %d %s: %w", id, status, err)
	}
	return nil
}

func setBatchPosted(ctx context.Context, q dispatch.DB, id int64, user string) error {
	if _, err := q.Exec(ctx, `UPDATE paper_batches SET status = 'posted', posted_at = now(), posted_by = $2
		WHERE id = $1`, id, user); err != nil {
		return fmt.Errorf("set batch %d posted: %w", id, err)
	}
	return nil
}

// lockBatch locks a batch and returns its status, or dispatch.ErrNotFound.
func lockBatch(ctx context.Context, tx pgx.Tx, id int64) (string, error) {
	var status string
	err := tx.QueryRow(ctx, `SELECT status FROM paper_batches WHERE id = $1 FOR UPDATE`, id).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", dispatch.ErrNotFound
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

const batchColumns = `id, day::timestamptz, service, status, sink, letters, pages, created_at, posted_at, posted_by,
	(SELECT count(*) FROM paper_batch_letters l WHERE l.batch_id = paper_batches.id AND l.duplicate_of IS NOT NULL)`

// batchService returns the service of the batch id, or dispatch.ErrNotFound.
func batchService(ctx context.Context, q dispatch.DB, id int64) (string, error) {
	var service string
	err := q.QueryRow(ctx, `SELECT service FROM paper_batches WHERE id = $1`, id).Scan(&service)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", dispatch.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("service of batch %d: %w", id, err)
	}
	return service, nil
}

func listBatches(ctx context.Context, q dispatch.DB, limit int) ([]Batch, error) {
	rows, err := q.Query(ctx, `SELECT `+batchColumns+` FROM paper_batches ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list paper batches: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Batch])
	if err != nil {
		return nil, fmt.Errorf("list paper batches: %w", err)
	}
	return out, nil
}

func loadBatch(ctx context.Context, q dispatch.DB, id int64) (Batch, []BatchLetter, error) {
	rows, err := q.Query(ctx, `SELECT `+batchColumns+` FROM paper_batches WHERE id = $1`, id)
	if err != nil {
		return Batch{}, nil, fmt.Errorf("load batch %d: %w", id, err)
	}
	b, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Batch])
	if errors.Is(err, pgx.ErrNoRows) {
		return Batch{}, nil, dispatch.ErrNotFound
	}
	if err != nil {
		return Batch{}, nil, fmt.Errorf("load batch %d: %w", id, err)
	}
	// A letter is in the batch while its delivery is, waiting to be posted
	// or posted (a replacement or a deletion leaves the batch id: its
	// status tells). A duplicate is listed after the letter printed for it,
	// those of earlier batches last.
	rows, err = q.Query(ctx, `SELECT d.id, d.report_id, l.position, l.pages, d.recipient_name,
			coalesce(d.postal_address->>'city', ''), d.status,
			l.duplicate_of IS NULL AND d.paper_batch_id IS NOT DISTINCT FROM l.batch_id AND d.status IN ('paper_pending', 'paper_sent'),
			r.patient_family, r.patient_given, r.patient_birth_date, r.patient_sex, r.patient_ipp, coalesce(l.duplicate_of, 0),
			coalesce((SELECT max(o.batch_id) FROM paper_batch_letters o
				WHERE o.delivery_id = l.duplicate_of AND o.duplicate_of IS NULL AND o.batch_id < l.batch_id), 0)
		FROM paper_batch_letters l JOIN deliveries d ON d.id = l.delivery_id JOIN reports r ON r.id = d.report_id
		WHERE l.batch_id = $1 ORDER BY l.position = 0, l.position, l.duplicate_of IS NOT NULL, d.id`, id)
	if err != nil {
		return Batch{}, nil, fmt.Errorf("letters of batch %d: %w", id, err)
	}
	letters, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (BatchLetter, error) {
		var l BatchLetter
		p := &l.Patient
		err := row.Scan(&l.DeliveryID, &l.ReportID, &l.Position, &l.Pages, &l.Name, &l.City, &l.Status, &l.InBatch,
			&p.Family, &p.Given, &p.BirthDate, &p.Sex, &p.IPP, &l.DuplicateOf, &l.DuplicateBatch)
		return l, err
	})
	if err != nil {
		return Batch{}, nil, fmt.Errorf("letters of batch %d: %w", id, err)
	}
	return b, letters, nil
}

func batchPDF(ctx context.Context, q dispatch.DB, id int64) ([]byte, error) {
	var pdf []byte
	err := q.QueryRow(ctx, `SELECT pdf FROM paper_batches WHERE id = $1 AND pdf IS NOT NULL`, id).Scan(&pdf)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, dispatch.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load batch %d PDF: %w", id, err)
	}
	return pdf, nil
}
