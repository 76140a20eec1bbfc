package retention

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mssdispatch/mssdispatch/dispatch"
)

// This file holds the SQL of the retention job.

// retentionQuery holds what every retention statement needs, passed first
// (see args): when the period began ($1), and what still retains a document.
type retentionQuery struct {
	Cutoff     time.Time
	Statuses   []dispatch.Status // delivery statuses that retain the document ($2)
	Unresolved string            // the report status before its deliveries exist ($3)
}

// args returns the arguments of a retention statement: rq's, then more from $4.
func (rq retentionQuery) args(more ...any) []any {
	return append([]any{rq.Cutoff, rq.Statuses, rq.Unresolved}, more...)
}

// followUpSQL is true when the delivery dl has a follow-up still to come
// (an acknowledgement deadline not swept yet, a deadline or fallback job
// that has not run), which may yet create a paper delivery that prints the
// document (see the domain's follow-ups and ack_due_at).
const followUpSQL = `(cardinality(dl.follow_ups) > 0 OR dl.ack_due_at IS NOT NULL)`

// retainedSQL is true when the document doc is still needed: its report is
// not resolved yet (its deliveries are still to come), or one of its
// deliveries is in a retaining status or has a follow-up job.
const retainedSQL = `(EXISTS (SELECT 1 FROM reports rr WHERE rr.id = doc.report_id AND rr.status = $3)
	OR EXISTS (SELECT 1 FROM deliveries dl WHERE dl.report_id = doc.report_id
		AND (dl.status = ANY ($2) OR ` + followUpSQL + `)))`

// retentionCutoff returns the database's now minus days.
func retentionCutoff(ctx context.Context, q dispatch.DB, days int) (time.Time, error) {
	var cutoff time.Time
	if err := q.QueryRow(ctx, "SELECT now() - make_interval(days => $1)", days).Scan(&cutoff); err != nil {
		return time.Time{}, fmt.Errorf("retention cutoff: %w", err)
	}
	return cutoff, nil
}

// purgeDocumentBatch purges, in one transaction, the bytes of at most limit
// documents that nothing retains among those of reports received before the
// cutoff, taken in report id order after the report id after. It returns how
// many it purged and the last candidate's report id (0 when there was none:
// the pass is over). The candidates' deliveries are locked and the rule
// checked again before the purge, so that a status change committing
// meanwhile is seen; a document locked elsewhere is left to the next run.
func purgeDocumentBatch(ctx context.Context, pool *pgxpool.Pool, rq retentionQuery, after int64, limit int) (purged int, last int64, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT doc.report_id FROM documents doc JOIN reports r ON r.id = doc.report_id
			WHERE doc.report_id > $4 AND doc.purged_at IS NULL AND r.received_at < $1 AND NOT `+retainedSQL+`
			ORDER BY doc.report_id LIMIT $5 FOR UPDATE OF doc SKIP LOCKED`, rq.args(after, limit)...)
		if err != nil {
			return fmt.Errorf("select documents to purge: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("select documents to purge: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		last = ids[len(ids)-1]
		if _, err := tx.Exec(ctx, `SELECT 1 FROM deliveries WHERE report_id = ANY ($1) ORDER BY id FOR SHARE`, ids); err != nil {
			return fmt.Errorf("lock deliveries of documents to purge: %w", err)
		}
		tag, err := tx.Exec(ctx, `UPDATE documents doc SET cda = ''::bytea, pdf = NULL, pdf_in_cda = false, purged_at = now()
			FROM reports r WHERE r.id = doc.report_id
				AND doc.report_id = ANY ($4) AND doc.purged_at IS NULL AND r.received_at < $1 AND NOT `+retainedSQL,
			rq.args(ids)...)
		if err != nil {
			return fmt.Errorf("purge documents: %w", err)
		}
		purged = int(tag.RowsAffected())
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return purged, last, nil
}

// purgeQuarantineBatch replaces by nothing, in one statement, the raw bytes
// of at most limit messages quarantined before cutoff, taken in id order
// after the id after. It returns how many it purged and the last one's id
// (0 when there was none: the pass is over).
func purgeQuarantineBatch(ctx context.Context, q dispatch.DB, cutoff time.Time, after int64, limit int) (purged int, last int64, err error) {
	err = q.QueryRow(ctx, `WITH batch AS (
			SELECT id FROM quarantine WHERE id > $2 AND purged_at IS NULL AND received_at < $1
			ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED
		), purged AS (
			UPDATE quarantine q SET raw = ''::bytea, purged_at = now() FROM batch WHERE q.id = batch.id RETURNING q.id
		)
		SELECT count(*), coalesce(max(id), 0) FROM purged`, cutoff, after, limit).Scan(&purged, &last)
	if err != nil {
		return 0, 0, fmt.Errorf("purge quarantine: %w", err)
	}
	return purged, last, nil
}

// keptDocuments describes the documents past the period still kept.
type keptDocuments struct {
	Count int
	// Sample is the ids of the oldest reports kept, at most sampleSize.
	Sample []int64
	// ByStatus counts, for each retaining status, the kept documents with
	// a delivery in it, under "follow_up" those with a delivery in another
	// status that has a follow-up job yet to run, and under "unresolved" those
	// of reports not resolved yet; a document may count under several.
	ByStatus map[string]int
}

// keptPastPeriod counts the documents of reports received before the cutoff
// that are not purged, with the ids of the oldest sampleSize and what keeps them.
func keptPastPeriod(ctx context.Context, q dispatch.DB, rq retentionQuery, sampleSize int) (keptDocuments, error) {
	k := keptDocuments{ByStatus: map[string]int{}}
	err := q.QueryRow(ctx, `SELECT count(*), coalesce((array_agg(DISTINCT doc.report_id ORDER BY doc.report_id))[1:$2], '{}')
		FROM documents doc JOIN reports r ON r.id = doc.report_id
		WHERE doc.purged_at IS NULL AND r.received_at < $1`, rq.Cutoff, sampleSize).Scan(&k.Count, &k.Sample)
	if err != nil {
		return keptDocuments{}, fmt.Errorf("count kept documents: %w", err)
	}
	if k.Count == 0 {
		return k, nil
	}
	rows, err := q.Query(ctx, `SELECT why, count(DISTINCT report_id) FROM (
			SELECT doc.report_id, CASE WHEN dl.status = ANY ($2) THEN dl.status ELSE 'follow_up' END AS why
			FROM documents doc JOIN reports r ON r.id = doc.report_id JOIN deliveries dl ON dl.report_id = doc.report_id
			WHERE doc.purged_at IS NULL AND r.received_at < $1 AND (dl.status = ANY ($2) OR `+followUpSQL+`)
			UNION ALL
			SELECT doc.report_id, 'unresolved' FROM documents doc JOIN reports r ON r.id = doc.report_id
			WHERE doc.purged_at IS NULL AND r.received_at < $1 AND r.status = $3
		) k GROUP BY why`, rq.args()...)
	if err != nil {
		return keptDocuments{}, fmt.Errorf("count kept documents by status: %w", err)
	}
	var why string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&why, &n}, func() error {
		k.ByStatus[why] = n
		return nil
	}); err != nil {
		return keptDocuments{}, fmt.Errorf("count kept documents by status: %w", err)
	}
	return k, nil
}
