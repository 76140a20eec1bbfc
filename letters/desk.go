package letters

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/paper"
	"github.com/mssdispatch/mssdispatch/postal"
)

// This file holds what the secretaries read and do of the paper channel:
// a delivery's letter, a selection of letters, the batches and their
// posting. Every reading of patient data is in the audit log.

// Desk is the paper channel as the dashboard works it: the letters to
// print and reprint, the batches, their posting.
type Desk struct {
	pool       *pgxpool.Pool
	jobs       dispatch.JobInserter
	letterhead paper.Letterhead
}

// NewDesk returns the Desk of the paper channel cfg configures (its Pool
// and Letterhead; the batches are AddBatches'), which enqueues the
// batching with jobs (the River client). cfg.Pool and jobs are required.
func NewDesk(cfg Config, jobs dispatch.JobInserter) (*Desk, error) {
	if cfg.Pool == nil || jobs == nil {
		return nil, errors.New("letters: Config.Pool and the jobs are required")
	}
	return &Desk{pool: cfg.Pool, jobs: jobs, letterhead: cfg.Letterhead}, nil
}

// LetterPDF renders the letter of the paper delivery id (to reprint one),
// with the desk's letterhead, or dispatch.ErrNotFound when it is not a
// letter; viewer's printing is in the audit log.
func (d *Desk) LetterPDF(ctx context.Context, viewer string, deliveryID int64) ([]byte, error) {
	l, err := loadLetter(ctx, d.pool, deliveryID)
	if err != nil {
		return nil, err
	}
	pdf, _, err := renderLetter(d.letterhead, l)
	if err != nil {
		return nil, err
	}
	return audit.Served(ctx, d.pool, pdf, audit.Entry{Actor: viewer, Action: "letter_printed",
		Object: fmt.Sprintf("delivery:%d", deliveryID), ReportID: l.ReportID, DeliveryID: deliveryID})
}

// LettersPDF renders the letters of the paper deliveries ids, in order, as
// one PDF to print (each reading in the audit log, in the name of viewer).
// It renders nothing when one of them cannot be printed: refused maps each
// such delivery to why (dispatch.ErrNotFound: not a letter,
// postal.ErrNotPostable: its address is incomplete, ErrDocumentPurged), so
// that the secretary fixes or leaves it out and nobody posts half a
// selection unknowingly.
func (d *Desk) LettersPDF(ctx context.Context, viewer string, ids []int64) (pdf []byte, refused map[int64]error, err error) {
	if len(ids) == 0 {
		return nil, nil, fmt.Errorf("%w: no letter to print", dispatch.ErrNotFound)
	}
	refused = map[int64]error{}
	for _, id := range ids {
		l, err := loadLetter(ctx, d.pool, id)
		switch {
		case errors.Is(err, dispatch.ErrNotFound):
			refused[id] = err
		case err != nil:
			return nil, nil, err
		case l.Purged:
			refused[id] = ErrDocumentPurged
		case !l.Address.Known():
			refused[id] = postal.ErrNotPostable
		}
	}
	if len(refused) > 0 {
		return nil, refused, nil
	}
	letters := make([][]byte, len(ids))
	for i, id := range ids {
		if letters[i], err = d.LetterPDF(ctx, viewer, id); err != nil {
			return nil, nil, err
		}
	}
	pdf, err = paper.Merge(letters...)
	return pdf, nil, err
}

// Batches returns the newest batches, up to limit (default 50).
func (d *Desk) Batches(ctx context.Context, limit int) ([]Batch, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	return listBatches(ctx, d.pool, limit)
}

// BatchService returns the service of the batch id, to check who may see
// it, or dispatch.ErrNotFound.
func (d *Desk) BatchService(ctx context.Context, id int64) (string, error) {
	return batchService(ctx, d.pool, id)
}

// Batch returns the batch id with its letters, their recipients and
// patients, or dispatch.ErrNotFound; viewer's reading is in the audit log,
// once per letter (its report and delivery).
func (d *Desk) Batch(ctx context.Context, viewer string, id int64) (Batch, []BatchLetter, error) {
	b, letters, err := loadBatch(ctx, d.pool, id)
	if err != nil {
		return Batch{}, nil, err
	}
	if err := audit.Viewed(ctx, d.pool, batchEntries(viewer, "report_viewed", id, letters)...); err != nil {
		return Batch{}, nil, err
	}
	return b, letters, nil
}

// BatchPDF returns the batch's PDF, or dispatch.ErrNotFound; viewer's
// printing is in the audit log, once per letter printed (its report and
// delivery).
func (d *Desk) BatchPDF(ctx context.Context, viewer string, id int64) ([]byte, error) {
	pdf, err := batchPDF(ctx, d.pool, id)
	if err != nil {
		return nil, err
	}
	_, letters, err := loadBatch(ctx, d.pool, id)
	if err != nil {
		return nil, err
	}
	letters = slices.DeleteFunc(letters, func(l BatchLetter) bool { return l.DuplicateOf != 0 })
	return audit.Served(ctx, d.pool, pdf, batchEntries(viewer, "letter_printed", id, letters)...)
}

// batchEntries are the audit entries of viewer's action on the letters of
// the batch id, one per letter.
func batchEntries(viewer, action string, id int64, letters []BatchLetter) []audit.Entry {
	entries := make([]audit.Entry, len(letters))
	for i, l := range letters {
		entries[i] = audit.Entry{Actor: viewer, Action: action, Object: fmt.Sprintf("batch:%d", id),
			ReportID: l.ReportID, DeliveryID: l.DeliveryID, Detail: fmt.Sprintf("lot n° %d", id)}
	}
	return entries
}

// MakeBatches enqueues the batching now, rather than at its schedule.
func (d *Desk) MakeBatches(ctx context.Context) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := d.jobs.InsertManyTx(ctx, tx, []river.InsertManyParams{{Args: BatchArgs{}}}); err != nil {
			return fmt.Errorf("enqueue jobs: %w", err)
		}
		return nil
	})
}

// MarkBatchPosted records that the letters of a ready batch were posted:
// those still in it become paper_sent (the domain's transition, by user);
// it returns how many. A batch not ready is an error wrapping
// dispatch.ErrTransition.
func (d *Desk) MarkBatchPosted(ctx context.Context, batchID int64, user string) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		status, err := lockBatch(ctx, tx, batchID)
		if err != nil {
			return err
		}
		if status != BatchReady {
			return fmt.Errorf("%w: batch %d is %s", dispatch.ErrTransition, batchID, status)
		}
		ids, err := batchedDeliveries(ctx, tx, batchID)
		if err != nil {
			return err
		}
		poster := dispatch.Actor{Kind: dispatch.ActorUser, Name: user}
		for _, id := range ids {
			if err := dispatch.Transition(ctx, tx, id, dispatch.StatusPaperPending, dispatch.StatusPaperSent, dispatch.EventPaperSent,
				poster, fmt.Sprintf("lot n° %d", batchID)); err != nil {
				return err
			}
		}
		n = len(ids)
		if err := setBatchPosted(ctx, tx, batchID, user); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: user, Action: "batch_posted", Object: fmt.Sprintf("batch:%d", batchID),
			Detail: fmt.Sprintf("%d courriers", n)})
	})
	if err != nil {
		return 0, fmt.Errorf("batch %d: %w", batchID, err)
	}
	return n, nil
}
