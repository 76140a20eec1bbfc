package readmodel

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jackc/pgx/v5/pgxpool"
)

// This file holds the SQL of the statistics and of the adoption campaign:
// every aggregate is computed by PostgreSQL (GROUP BY), only the result rows
// come back.

// periodWhere selects the reports (r) of a period and of services: $1 the
// start (NULL: unbounded), $2 the end, excluded, $3 the services (NULL: all).
const periodWhere = `($1::timestamptz IS NULL OR r.received_at >= $1)
	AND ($2::timestamptz IS NULL OR r.received_at < $2)
	AND ($3::text[] IS NULL OR r.service = ANY($3))`

// statsMonth is the month (YYYY-MM, Europe/Paris) of a report (r).
const statsMonth = `to_char(r.received_at AT TIME ZONE 'Europe/Paris', 'YYYY-MM')`

// periodArgs are the arguments of periodWhere.
func periodArgs(from, to time.Time, services []string) []any {
	return []any{nullTime(from), nullTime(to), services}
}

// nullTime is t, or NULL when it is zero.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// directoryListsMailbox is the SQL condition that the national directory
// lists a mailbox for the recipient whose national id and FINESS are the
// columns nationalID and finess (qualified: directory_entries has columns
// of the same names).
func directoryListsMailbox(nationalID, finess string) string {
	return `(EXISTS (SELECT 1 FROM directory_entries de WHERE ` + nationalID + ` <> '' AND de.national_id = ` + nationalID + `)
		OR EXISTS (SELECT 1 FROM directory_entries de WHERE ` + nationalID + ` = '' AND ` + finess + ` <> ''
			AND de.box_type IN ('ORG', 'APP') AND de.structure_id = ` + finess + `))`
}

// dematerialisationRates computes the rate (see Rate) overall, by month, by
// service and by document type, in one pass (GROUPING SETS).
func dematerialisationRates(ctx context.Context, q *pgxpool.Pool, f StatsFilter) (
	total Rate, months []MonthRate, services []ServiceRate, documents []DocumentRate, err error) {
	rows, err := q.Query(ctx, `WITH per_recipient AS (
			SELECT rc.national_id, rc.finess, `+statsMonth+` AS month, r.service, r.document_code, r.document_title,
				bool_or(d.channel = 'mssante') AS emailed,
				bool_or(d.channel = 'paper' AND d.status NOT IN ('cancelled', 'superseded')) AS papered,
				bool_or(d.channel = 'mssante' AND d.status IN ('sent', 'delivered', 'read')) AS served
			FROM reports r
			JOIN recipients rc ON rc.report_id = r.id
			JOIN deliveries d ON d.recipient_id = rc.id
			WHERE rc.kind <> 'patient' AND `+periodWhere+`
			GROUP BY rc.id, r.id
			HAVING bool_or(d.status NOT IN ('cancelled', 'superseded'))
		), flagged AS (
			SELECT month, service, document_code, document_title, served,
				emailed OR (papered AND `+directoryListsMailbox("p.national_id", "p.finess")+`) AS equipped
			FROM per_recipient p
		)
		SELECT grouping(month, service, document_code), coalesce(month, ''), coalesce(service, ''),
			coalesce(document_code, ''), coalesce(mode() WITHIN GROUP (ORDER BY document_title), ''),
			count(*), count(*) FILTER (WHERE equipped), count(*) FILTER (WHERE served)
		FROM flagged
		GROUP BY GROUPING SETS ((), (month), (service), (document_code))
		ORDER BY 1, 2, 3, count(*) DESC, 4`, periodArgs(f.From, f.To, f.Services)...)
	if err != nil {
		return Rate{}, nil, nil, nil, fmt.Errorf("dematerialisation rates: %w", err)
	}
	var set int
	var month, service, code, title string
	var r Rate
	_, err = pgx.ForEachRow(rows, []any{&set, &month, &service, &code, &title, &r.Recipients, &r.Equipped, &r.Served}, func() error {
		// grouping() sets a bit for each column left out: month 4, service 2, document 1.
		switch set {
		case 0b111:
			total = r
		case 0b011:
			months = append(months, MonthRate{Month: month, Rate: r})
		case 0b101:
			services = append(services, ServiceRate{Service: service, Rate: r})
		case 0b110:
			documents = append(documents, DocumentRate{Code: code, Title: title, Rate: r})
		}
		return nil
	})
	if err != nil {
		return Rate{}, nil, nil, nil, fmt.Errorf("dematerialisation rates: %w", err)
	}
	return total, months, services, documents, nil
}

// deliveryCounts counts the deliveries of the period's reports by channel and status.
func deliveryCounts(ctx context.Context, q *pgxpool.Pool, f StatsFilter) ([]ChannelCount, error) {
	rows, err := q.Query(ctx, `SELECT d.channel, d.status, count(*)
		FROM deliveries d JOIN reports r ON r.id = d.report_id
		WHERE `+periodWhere+`
		GROUP BY d.channel, d.status ORDER BY d.channel, d.status`, periodArgs(f.From, f.To, f.Services)...)
	if err != nil {
		return nil, fmt.Errorf("delivery counts: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ChannelCount])
	if err != nil {
		return nil, fmt.Errorf("delivery counts: %w", err)
	}
	return out, nil
}

// deliveryDelays computes the percentiles of the delays (see Delay) by
// channel, for the period and month by month.
func deliveryDelays(ctx context.Context, q *pgxpool.Pool, f StatsFilter) ([]Delay, error) {
	rows, err := q.Query(ctx, `WITH delays AS (
			SELECT `+statsMonth+` AS month, d.channel,
				extract(epoch FROM CASE WHEN d.channel = 'mssante' THEN coalesce(d.delivered_at, d.sent_at)
					ELSE (SELECT min(e.at) FROM delivery_events e WHERE e.delivery_id = d.id AND e.to_status = 'paper_sent')
				END - r.received_at)::float8 AS seconds
			FROM deliveries d JOIN reports r ON r.id = d.report_id
			WHERE ((d.channel = 'mssante' AND d.status IN ('sent', 'delivered', 'read'))
				OR (d.channel = 'paper' AND d.status = 'paper_sent'))
				AND `+periodWhere+`
		)
		SELECT coalesce(month, ''), channel, count(*),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
			percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds)
		FROM delays WHERE seconds IS NOT NULL
		GROUP BY GROUPING SETS ((channel), (channel, month))
		ORDER BY channel, month NULLS FIRST`, periodArgs(f.From, f.To, f.Services)...)
	if err != nil {
		return nil, fmt.Errorf("delivery delays: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Delay, error) {
		var d Delay
		var p50, p90 float64
		if err := row.Scan(&d.Month, &d.Channel, &d.Count, &p50, &p90); err != nil {
			return Delay{}, err
		}
		d.P50, d.P90 = seconds(p50), seconds(p90)
		return d, nil
	})
	if err != nil {
		return nil, fmt.Errorf("delivery delays: %w", err)
	}
	return out, nil
}

// seconds is s seconds, to the millisecond.
func seconds(s float64) time.Duration {
	return (time.Duration(s*1000+0.5) * time.Millisecond)
}

// failureReason is the SQL of the normalised reason of a delivery (d)'s
// last error: the first SMTP enhanced status code in it, else the SMTP
// reply code, else its first four words.
const failureReason = `coalesce(
	substring(d.last_error FROM '\m([245]\.[0-9]{1,3}\.[0-9]{1,3})\M'),
	substring(d.last_error FROM 'SMTP error ([245][0-9][0-9])'),
	substring(d.last_error FROM '^([245][0-9][0-9])[ -]'),
	array_to_string((regexp_split_to_array(btrim(d.last_error), '\s+'))[1:4], ' '))`

// failureReasons returns the limit most frequent reasons of the period's
// failed deliveries.
func failureReasons(ctx context.Context, q *pgxpool.Pool, f StatsFilter, limit int) ([]FailureReason, error) {
	rows, err := q.Query(ctx, `SELECT reason, count(*), min(last_error)
		FROM (SELECT `+failureReason+` AS reason, d.last_error
			FROM deliveries d JOIN reports r ON r.id = d.report_id
			WHERE d.status = 'failed' AND `+periodWhere+`) failed
		GROUP BY reason ORDER BY count(*) DESC, reason LIMIT $4`,
		append(periodArgs(f.From, f.To, f.Services), limit)...)
	if err != nil {
		return nil, fmt.Errorf("failure reasons: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[FailureReason])
	if err != nil {
		return nil, fmt.Errorf("failure reasons: %w", err)
	}
	return out, nil
}

// campaign returns the correspondents served on paper (see CampaignEntry).
func campaign(ctx context.Context, q *pgxpool.Pool, f CampaignFilter) ([]CampaignEntry, error) {
	rows, err := q.Query(ctx, `WITH letters AS (
			SELECT CASE WHEN rc.national_id <> '' THEN 'n:' || rc.national_id
					WHEN rc.finess <> '' THEN 'f:' || rc.finess
					ELSE 'a:' || lower(`+recipientName+`) || '|' || coalesce(nullif(d.postal_address, '{}'), rc.postal_address)::text
				END AS key,
				rc.national_id, rc.finess, rc.rpps, rc.kind, `+recipientName+` AS name,
				coalesce(nullif(d.postal_address, '{}'), rc.postal_address) AS postal, d.id, d.created_at,
				NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.recipient_id = d.recipient_id AND e.channel = 'mssante') AS convertible
			FROM deliveries d
			JOIN recipients rc ON rc.id = d.recipient_id
			JOIN reports r ON r.id = d.report_id
			WHERE d.channel = 'paper' AND d.status NOT IN ('cancelled', 'superseded') AND rc.kind <> 'patient'
				AND `+periodWhere+`
		), correspondents AS (
			SELECT key, max(national_id) AS national_id, max(finess) AS finess,
				coalesce((array_agg(rpps ORDER BY created_at DESC, id DESC) FILTER (WHERE rpps <> ''))[1], '') AS rpps,
				(array_agg(kind ORDER BY created_at DESC, id DESC))[1] AS kind,
				coalesce((array_agg(name ORDER BY created_at DESC, id DESC) FILTER (WHERE name <> ''))[1], '') AS name,
				coalesce((array_agg(postal ORDER BY created_at DESC, id DESC) FILTER (WHERE postal <> '{}'))[1], '{}') AS postal,
				count(*) AS letters, count(*) FILTER (WHERE convertible) AS convertible, max(created_at) AS last_letter
			FROM letters GROUP BY key
		)
		SELECT c.national_id, c.finess, c.rpps, c.kind, c.name, c.postal, c.letters, c.convertible,
			box.address IS NOT NULL, coalesce(box.address, ''), c.last_letter
		FROM correspondents c
		LEFT JOIN LATERAL (SELECT min(de.address) AS address FROM directory_entries de
			WHERE (c.national_id <> '' AND de.national_id = c.national_id)
				OR (c.national_id = '' AND c.finess <> '' AND de.box_type IN ('ORG', 'APP') AND de.structure_id = c.finess)
		) box ON true
		ORDER BY c.letters DESC, c.last_letter DESC, c.name, c.key
		LIMIT $4`, append(periodArgs(f.From, f.To, f.Services), f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("adoption campaign: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[CampaignEntry])
	if err != nil {
		return nil, fmt.Errorf("adoption campaign: %w", err)
	}
	return out, nil
}
