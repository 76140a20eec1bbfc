package readmodel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
)

// This file holds the SQL of the dashboard's reads: worklists, the search of
// deliveries, a report's page.

// recipientName is the SQL of a delivery's recipient name (d deliveries, rc recipients).
const recipientName = `CASE WHEN d.recipient_name <> '' THEN d.recipient_name
	ELSE coalesce(nullif(trim(both ' ' FROM rc.given || ' ' || rc.family), ''), rc.organisation) END`

// searchDeliveries returns up to f.Limit+1 deliveries f selects, older than
// the delivery after (0: from the newest).
func searchDeliveries(ctx context.Context, q *pgxpool.Pool, f DeliveryFilter, after int64) ([]DeliveryRow, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if conds := worklistConds[f.Worklist]; conds != nil {
		where = append(where, "("+strings.Join(conds, " OR ")+")")
	}
	if after > 0 {
		where = append(where, "d.id < "+arg(after))
	}
	if p := strings.TrimSpace(f.Patient); p != "" {
		conds := []string{"patient_ipp = " + arg(p), "patient_ins = " + arg(p)}
		if key := correspondents.SearchKey(p); key != "" {
			conds = append(conds, "patient_key LIKE "+arg(key+"%"))
		}
		where = append(where, "d.report_id IN (SELECT id FROM reports WHERE "+strings.Join(conds, " OR ")+")")
	}
	order := "d.id"
	switch c := strings.TrimSpace(f.Correspondent); {
	case strings.Contains(c, "@"):
		where = append(where, "d.address <> '' AND lower(d.address) LIKE "+arg(likePrefix(strings.ToLower(c))))
		// An address has few deliveries: PostgreSQL misjudges how few from
		// the LIKE prefix and would walk the table newest first to find
		// them; ordering by an expression makes it take them from the
		// address index and sort them.
		order = "d.id + 0"
	case c != "":
		conds := []string{"rpps = " + arg(c)}
		if key := correspondents.SearchKey(c); key != "" {
			conds = append(conds, "name_key LIKE "+arg(key+"%"))
		}
		where = append(where, "d.recipient_id IN (SELECT id FROM recipients WHERE "+strings.Join(conds, " OR ")+")")
	}
	if f.DocumentCode != "" {
		where = append(where, "r.document_code = "+arg(f.DocumentCode))
	}
	if f.Service != "" {
		where = append(where, "d.service = "+arg(f.Service))
	}
	if f.Services != nil {
		where = append(where, "d.service = ANY("+arg(f.Services)+")")
	}
	if f.Status != "" {
		where = append(where, "d.status = "+arg(f.Status))
	}
	if !f.From.IsZero() {
		where = append(where, "d.created_at >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "d.created_at < "+arg(f.To))
	}
	sql := `SELECT d.id, d.report_id, d.channel, d.status, ` + recipientName + `, d.address, d.reason_text,
			d.attention, d.last_error, trim(both ' ' FROM r.patient_family || ' ' || r.patient_given), r.patient_ipp,
			r.document_title, r.document_code, d.service, d.created_at, d.updated_at, d.postal_address, d.choices,
			d.scheduled_for, d.rule_name, d.rule_version
		FROM deliveries d JOIN reports r ON r.id = d.report_id JOIN recipients rc ON rc.id = d.recipient_id`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY " + order + " DESC LIMIT " + arg(f.Limit+1)
	// Planned with its values each time (not a cached generic plan): only
	// then does PostgreSQL see that a LIKE prefix can use an index, and how
	// few rows a rare value selects.
	rows, err := q.Query(ctx, sql, append([]any{pgx.QueryExecModeExec}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("search deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[DeliveryRow])
	if err != nil {
		return nil, fmt.Errorf("search deliveries: %w", err)
	}
	return out, nil
}

// likePrefix is the LIKE pattern of the strings starting with s.
func likePrefix(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s) + "%"
}

// worklistConds defines the worklists but WorklistAll, in SQL on deliveries
// d: a delivery is in a list when it meets one of the list's conditions.
var worklistConds = map[string][]string{
	WorklistReview:    {"d.status = 'review'"},
	WorklistFailed:    {"d.status = 'failed'", "d.attention <> ''"},
	WorklistPaper:     {"d.status = 'paper_pending'"},
	WorklistScheduled: {"d.status = 'scheduled'"},
}

// worklistCounts counts the deliveries of each worklist but WorklistAll for
// the reports of services (nil: all), each up to limit (0: no limit). The
// conditions of a list are counted apart, each without the rows of the ones
// before it: one index scan each, where their OR would need a bitmap of all
// the rows; with a limit, each reads at most limit rows, however long a
// backlog grows.
func worklistCounts(ctx context.Context, q *pgxpool.Pool, services []string, limit int64) (map[string]int64, error) {
	var lists, columns []string
	for _, list := range Worklists {
		conds := worklistConds[list]
		if conds == nil {
			continue
		}
		var counts []string
		for i, cond := range conds {
			for _, before := range conds[:i] {
				cond += " AND NOT (" + before + ")"
			}
			counts = append(counts, `(SELECT count(*) FROM (SELECT 1 FROM deliveries d
				WHERE `+cond+` AND ($1::text[] IS NULL OR d.service = ANY($1)) LIMIT $2) x)`)
		}
		lists = append(lists, list)
		columns = append(columns, "least("+strings.Join(counts, " + ")+", $2)")
	}
	var bound *int64 // NULL: LIMIT ALL, and least ignores it
	if limit > 0 {
		bound = &limit
	}
	values := make([]int64, len(lists))
	dest := make([]any, len(lists))
	for i := range values {
		dest[i] = &values[i]
	}
	if err := q.QueryRow(ctx, `SELECT `+strings.Join(columns, ", "), services, bound).Scan(dest...); err != nil {
		return nil, fmt.Errorf("worklist counts: %w", err)
	}
	out := make(map[string]int64, len(lists))
	for i, list := range lists {
		out[list] = values[i]
	}
	return out, nil
}

// reportDetail loads the report id for its page.
func reportDetail(ctx context.Context, q *pgxpool.Pool, id int64) (ReportDetail, error) {
	var v ReportDetail
	err := q.QueryRow(ctx, `SELECT r.id, r.document_id, r.parent_document_id, r.action, r.status, r.received_at,
			r.patient_family, r.patient_given, r.patient_birth_date, r.patient_sex, r.patient_ins,
			r.patient_ins_qualified, r.patient_ipp, r.service, r.document_code, r.document_title, r.confidentiality,
			coalesce(doc.pdf_in_cda OR length(doc.pdf) > 0, false), doc.purged_at IS NOT NULL,
			coalesce((SELECT other.document_id FROM documents other WHERE other.report_id = r.id AND other.position = 2), '')
		FROM reports r LEFT JOIN documents doc ON doc.report_id = r.id AND doc.position = 1 WHERE r.id = $1`, id).Scan(
		&v.ID, &v.DocumentID, &v.ParentDocumentID, &v.Action, &v.Status, &v.ReceivedAt,
		&v.Patient.Family, &v.Patient.Given, &v.Patient.BirthDate, &v.Patient.Sex, &v.Patient.INS,
		&v.Patient.INSQualified, &v.Patient.IPP, &v.Service, &v.DocumentCode, &v.DocumentTitle, &v.Confidentiality,
		&v.HasPDF, &v.Purged, &v.OtherFormatID)
	if errors.Is(err, pgx.ErrNoRows) {
		return ReportDetail{}, dispatch.ErrNotFound
	}
	if err != nil {
		return ReportDetail{}, fmt.Errorf("load report %d: %w", id, err)
	}
	rows, err := q.Query(ctx, `SELECT id, role, kind,
			coalesce(nullif(trim(both ' ' FROM given || ' ' || family), ''), organisation), rpps, national_id, address
		FROM recipients WHERE report_id = $1 ORDER BY position`, id)
	if err != nil {
		return ReportDetail{}, fmt.Errorf("load recipients of report %d: %w", id, err)
	}
	v.Recipients, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (RecipientDetail, error) {
		var r RecipientDetail
		return r, row.Scan(&r.ID, &r.Role, &r.Kind, &r.Name, &r.RPPS, &r.NationalID, &r.Address)
	})
	if err != nil {
		return ReportDetail{}, fmt.Errorf("load recipients of report %d: %w", id, err)
	}
	rows, err = q.Query(ctx, `SELECT d.recipient_id, d.id, d.channel, d.status, d.address, d.recipient_name,
			d.postal_address, d.reason, d.reason_text, d.rule_name, d.rule_version, d.last_error, d.attention,
			d.send_attempts, d.sending_at IS NOT NULL, coalesce(d.fallback_of, 0), d.updated_at, d.sent_at, d.choices,
			d.scheduled_for
		FROM deliveries d WHERE d.report_id = $1 ORDER BY d.id`, id)
	if err != nil {
		return ReportDetail{}, fmt.Errorf("load deliveries of report %d: %w", id, err)
	}
	byRecipient := map[int64][]DeliveryDetail{}
	var recipientID int64
	var d DeliveryDetail
	_, err = pgx.ForEachRow(rows, []any{&recipientID, &d.ID, &d.Channel, &d.Status, &d.Address, &d.Name,
		&d.PostalAddress, &d.Reason, &d.ReasonText, &d.RuleName, &d.RuleVersion, &d.LastError, &d.Attention,
		&d.SendAttempts, &d.Sending, &d.FallbackOf, &d.UpdatedAt, &d.SentAt, &d.Choices, &d.ScheduledFor}, func() error {
		byRecipient[recipientID] = append(byRecipient[recipientID], d)
		d = DeliveryDetail{}
		return nil
	})
	if err != nil {
		return ReportDetail{}, fmt.Errorf("load deliveries of report %d: %w", id, err)
	}
	for i := range v.Recipients {
		v.Recipients[i].Deliveries = byRecipient[v.Recipients[i].ID]
	}
	rows, err = q.Query(ctx, `SELECT e.at, e.delivery_id, `+recipientName+`, d.channel, coalesce(e.from_status, ''),
			e.to_status, e.event, e.actor_kind, e.actor, e.detail
		FROM delivery_events e JOIN deliveries d ON d.id = e.delivery_id JOIN recipients rc ON rc.id = d.recipient_id
		WHERE d.report_id = $1 ORDER BY e.id`, id)
	if err != nil {
		return ReportDetail{}, fmt.Errorf("load timeline of report %d: %w", id, err)
	}
	events, err := pgx.CollectRows(rows, pgx.RowToStructByPos[TimelineEvent])
	if err != nil {
		return ReportDetail{}, fmt.Errorf("load timeline of report %d: %w", id, err)
	}
	rows, err = q.Query(ctx, `SELECT at, event, detail FROM report_events WHERE report_id = $1 ORDER BY id`, id)
	if err != nil {
		return ReportDetail{}, fmt.Errorf("load history of report %d: %w", id, err)
	}
	own, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (TimelineEvent, error) {
		e := TimelineEvent{ActorKind: dispatch.ActorSystem}
		return e, row.Scan(&e.At, &e.Event, &e.Detail)
	})
	if err != nil {
		return ReportDetail{}, fmt.Errorf("load history of report %d: %w", id, err)
	}
	// The report's own events first at equal times: received, then its warnings.
	v.Timeline = append(append([]TimelineEvent{{At: v.ReceivedAt, Event: EventReceived, ActorKind: dispatch.ActorSystem}}, own...), events...)
	slices.SortStableFunc(v.Timeline, func(a, b TimelineEvent) int { return a.At.Compare(b.At) })
	return v, nil
}

// reportService returns a report's service, or ErrNotFound.
func reportService(ctx context.Context, q *pgxpool.Pool, reportID int64) (string, error) {
	var service string
	err := q.QueryRow(ctx, `SELECT service FROM reports WHERE id = $1`, reportID).Scan(&service)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", dispatch.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("load report %d: %w", reportID, err)
	}
	return service, nil
}

// deliveryReport returns the report of a delivery, or ErrNotFound.
func deliveryReport(ctx context.Context, q *pgxpool.Pool, deliveryID int64) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT report_id FROM deliveries WHERE id = $1`, deliveryID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, dispatch.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("load delivery %d: %w", deliveryID, err)
	}
	return id, nil
}
