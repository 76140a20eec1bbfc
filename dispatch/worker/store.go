package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/queue"
)

// This file holds the workers' own SQL: what the send and watchdog jobs read
// of a delivery, and the blocks of the mail domains (mail_domains), which
// only the send job and the Prober keep. Every change of a report or a delivery and of
// its history goes through package dispatch's store.

// storedDocumentBytes is a document of a report as stored (dispatch.StoredPDF
// makes its PDF).
type storedDocumentBytes struct {
	cda, pdf []byte
	inCDA    bool
}

// loadDocuments returns the documents of report reportID as stored, in
// order, or dispatch.ErrNotFound when it has none.
func loadDocuments(ctx context.Context, q dispatch.DB, reportID int64) ([]storedDocumentBytes, error) {
	rows, err := q.Query(ctx, `SELECT cda, pdf, pdf_in_cda FROM documents WHERE report_id = $1 ORDER BY position`, reportID)
	if err != nil {
		return nil, fmt.Errorf("load documents of report %d: %w", reportID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storedDocumentBytes, error) {
		var d storedDocumentBytes
		return d, row.Scan(&d.cda, &d.pdf, &d.inCDA)
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("load documents of report %d: %w", reportID, err)
	case len(out) == 0:
		return nil, fmt.Errorf("documents of report %d: %w", reportID, dispatch.ErrNotFound)
	}
	return out, nil
}

// outgoing is everything the send job needs of a delivery but the
// document's bytes (its Document has no CDA or PDF: see documentCache).
type outgoing struct {
	DeliveryID int64
	ReportID   int64
	Action     dispatch.Action
	Status     dispatch.Status
	Channel    correspondents.Channel
	Address    string
	MessageID  string
	Patient    dispatch.Patient
	Document   dispatch.Document
	// Recipient is the person or organisation the delivery goes to (its Kind
	// chooses the body).
	Recipient dispatch.Recipient
	Author    dispatch.Recipient
	ReplyTo   string
	Flags     dispatch.Flags
	// BodyProfessional and BodyPatient are the DPI's CORPSMAIL_PS and
	// CORPSMAIL_PATIENT, empty for the default texts.
	BodyProfessional, BodyPatient string
	// Policy is the fallback policy of the rule that decided the delivery.
	Policy dispatch.Policy
	// QueuedAt is when the delivery last became queued.
	QueuedAt time.Time
	// Domain is the address's domain, lower-cased. Blocked is how long its
	// sends must still wait, because the domain or the submission server
	// answered a temporary failure; Failures is true while either has
	// failures on record (a success forgets them).
	Domain   string
	Blocked  time.Duration
	Failures bool
	// Trusted is true when Domain is in the MSSanté trust space now: the
	// whitelist (a domain or a parent of it) or the patients' domain.
	Trusted bool
}

// loadOutgoing returns what the send job needs of delivery deliveryID, or
// dispatch.ErrNotFound.
func loadOutgoing(ctx context.Context, q dispatch.DB, deliveryID int64) (outgoing, error) {
	var o outgoing
	err := q.QueryRow(ctx, `SELECT d.id, d.report_id, r.action, d.status, d.channel, d.address, coalesce(d.message_id, ''),
			r.patient_family, r.patient_given, r.patient_birth_date, r.patient_sex, r.patient_ins, r.patient_ins_oid,
			r.patient_ins_qualified, r.patient_ipp,
			r.document_id, r.document_code, r.document_title,
			rc.role, rc.kind, rc.national_id, rc.rpps, rc.finess, rc.family, rc.given, rc.organisation, rc.address,
			r.author, r.reply_to, r.flags, r.body_professional, r.body_patient, d.policy,
			coalesce((SELECT max(e.at) FROM delivery_events e WHERE e.delivery_id = d.id AND e.to_status = 'queued'
				AND e.from_status IS DISTINCT FROM 'queued'), d.created_at),
			dom.domain, coalesce(blocked.wait, '0'), blocked.failures > 0,
			dom.domain = $3 OR EXISTS (SELECT 1 FROM trust_domains t WHERE t.domain IN (
				SELECT array_to_string(l.labels[i:], '.') FROM (SELECT string_to_array(dom.domain, '.') AS labels) l,
					generate_subscripts(l.labels, 1) AS i))
		FROM deliveries d JOIN reports r ON r.id = d.report_id JOIN recipients rc ON rc.id = d.recipient_id
			CROSS JOIN LATERAL (SELECT `+deliveryDomain+` AS domain) dom
			CROSS JOIN LATERAL (SELECT max(m.blocked_until - now()) FILTER (WHERE m.blocked_until > now()) AS wait,
					count(*) AS failures
				FROM mail_domains m WHERE m.domain IN (dom.domain, $2)) blocked
		WHERE d.id = $1`, deliveryID, serverScope, correspondents.PatientMailDomain).Scan(&o.DeliveryID, &o.ReportID, &o.Action, &o.Status, &o.Channel, &o.Address, &o.MessageID,
		&o.Patient.Family, &o.Patient.Given, &o.Patient.BirthDate, &o.Patient.Sex, &o.Patient.INS, &o.Patient.INSOID,
		&o.Patient.INSQualified, &o.Patient.IPP,
		&o.Document.ID, &o.Document.Code, &o.Document.Title,
		&o.Recipient.Role, &o.Recipient.Kind, &o.Recipient.NationalID, &o.Recipient.RPPS, &o.Recipient.FINESS,
		&o.Recipient.Family, &o.Recipient.Given, &o.Recipient.Organisation, &o.Recipient.Address,
		&o.Author, &o.ReplyTo, &o.Flags, &o.BodyProfessional, &o.BodyPatient, &o.Policy, &o.QueuedAt,
		&o.Domain, &o.Blocked, &o.Failures, &o.Trusted)
	if errors.Is(err, pgx.ErrNoRows) {
		return outgoing{}, fmt.Errorf("delivery %d: %w", deliveryID, dispatch.ErrNotFound)
	}
	if err != nil {
		return outgoing{}, fmt.Errorf("load delivery %d: %w", deliveryID, err)
	}
	return o, nil
}

// block records one more temporary failure of scope (a domain, or
// serverScope) and returns how long its sends now wait (domainBackoff of base).
// A failure while scope is blocked already (the sends that were under way
// when it was blocked, failing for the same reason) neither counts nor
// extends the block: with 20 workers, a 2-minute outage counted 20 failures
// and blocked every email for 13 minutes after the server was back.
func block(ctx context.Context, q dispatch.DB, scope, lastError string, base time.Duration) (time.Duration, error) {
	var failures int
	var remaining time.Duration
	if err := q.QueryRow(ctx, `INSERT INTO mail_domains AS m (domain, blocked_until, failures, last_error)
		VALUES ($1, now(), 1, $2)
		ON CONFLICT (domain) DO UPDATE SET last_error = $2, updated_at = now(),
			failures = CASE WHEN m.blocked_until > now() THEN m.failures ELSE m.failures + 1 END
		RETURNING failures, greatest(blocked_until - now(), '0')`, scope, lastError).Scan(&failures, &remaining); err != nil {
		return 0, fmt.Errorf("block %s: %w", scope, err)
	}
	if remaining > 0 {
		return remaining, nil
	}
	wait := domainBackoff(base, failures)
	if _, err := q.Exec(ctx, `UPDATE mail_domains SET blocked_until = now() + $2 WHERE domain = $1`, scope, wait); err != nil {
		return 0, fmt.Errorf("block %s: %w", scope, err)
	}
	return wait, nil
}

// unblock forgets the failures of domain and of the submission server after a success.
func unblock(ctx context.Context, q dispatch.DB, domain string) error {
	if _, err := q.Exec(ctx, `DELETE FROM mail_domains WHERE domain IN ($1, $2)`, domain, serverScope); err != nil {
		return fmt.Errorf("unblock %s: %w", domain, err)
	}
	return nil
}

// deliveryDomain is the domain of the address of the delivery d, lower-cased:
// the mail_domains key its sends are blocked under.
const deliveryDomain = `lower(substr(d.address, strpos(d.address, '@') + 1))`

// probeClaim is what a prober's claim found: the scope it claimed, if
// any, whether any scope is blocked, and in how long the next one is due
// for a probe (nil: none may be probed now).
type probeClaim struct {
	scope   string
	blocked bool
	next    *time.Duration
}

// probeable is the condition of a row m of mail_domains whose scope may be
// probed: blocked, and a domain only while the submission server ($1) is
// not, its probe would fail at the server.
const probeable = `m.blocked_until > now()
	AND (m.domain = $1 OR NOT EXISTS (SELECT 1 FROM mail_domains s WHERE s.domain = $1 AND s.blocked_until > now()))`

// claimProbe claims a blocked scope due for a probe, if any, for lease: no
// other prober claims it meanwhile (see Prober). The submission server
// comes first.
func claimProbe(ctx context.Context, q dispatch.DB, lease time.Duration) (probeClaim, error) {
	var c probeClaim
	var scope *string
	err := q.QueryRow(ctx, `WITH due AS (
			SELECT domain FROM mail_domains m WHERE `+probeable+` AND (next_probe_at IS NULL OR next_probe_at <= now())
			ORDER BY domain = $1 DESC, next_probe_at NULLS FIRST, domain
			LIMIT 1 FOR UPDATE SKIP LOCKED
		), claimed AS (
			UPDATE mail_domains m SET next_probe_at = now() + $2 FROM due WHERE m.domain = due.domain RETURNING m.domain
		)
		SELECT (SELECT domain FROM claimed), EXISTS (SELECT 1 FROM mail_domains WHERE blocked_until > now()),
			(SELECT min(coalesce(next_probe_at, now())) - now() FROM mail_domains m WHERE `+probeable+`)`,
		serverScope, lease).Scan(&scope, &c.blocked, &c.next)
	if err != nil {
		return probeClaim{}, fmt.Errorf("claim a blocked scope to probe: %w", err)
	}
	if scope != nil {
		c.scope = *scope
	}
	return c, nil
}

// probeFailed records that scope, claimed, still refuses: it is probed
// again after interval. Its block and failures stay as they are.
func probeFailed(ctx context.Context, q dispatch.DB, scope string, interval time.Duration) error {
	if _, err := q.Exec(ctx, `UPDATE mail_domains SET next_probe_at = now() + $2 WHERE domain = $1`, scope, interval); err != nil {
		return fmt.Errorf("record the probe of %s: %w", scope, err)
	}
	return nil
}

// probeAddress returns the address of the oldest email waiting for domain,
// to probe the domain with; found is false when none waits.
func probeAddress(ctx context.Context, q dispatch.DB, domain string) (address string, found bool, err error) {
	err = q.QueryRow(ctx, `SELECT d.address FROM deliveries d
		WHERE d.status = $2 AND d.channel = $3 AND `+deliveryDomain+` = $1 ORDER BY d.id LIMIT 1`,
		domain, dispatch.StatusQueued, correspondents.ChannelMSSante).Scan(&address)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("an address to probe %s: %w", domain, err)
	}
	return address, true, nil
}

// heldEmail is an email a scope's block held: its send job's args, and
// whether its history says it waits (its last event is a retry).
type heldEmail struct {
	job     dispatch.SendArgs
	retried bool
}

// heldBy returns the emails waiting for scope: those of the domain, or for
// the submission server every email but those of a domain blocked itself.
func heldBy(ctx context.Context, q dispatch.DB, scope string) ([]heldEmail, error) {
	rows, err := q.Query(ctx, `SELECT d.id, coalesce(d.message_id, ''), coalesce((SELECT e.event FROM delivery_events e
				WHERE e.delivery_id = d.id ORDER BY e.id DESC LIMIT 1) = $4, false)
		FROM deliveries d CROSS JOIN LATERAL (SELECT `+deliveryDomain+` AS domain) dom
		WHERE d.status = $2 AND d.channel = $3 AND CASE WHEN $1 = $5
			THEN NOT EXISTS (SELECT 1 FROM mail_domains m WHERE m.domain = dom.domain AND m.blocked_until > now())
			ELSE dom.domain = $1 END`,
		scope, dispatch.StatusQueued, correspondents.ChannelMSSante, dispatch.EventRetry, serverScope)
	if err != nil {
		return nil, fmt.Errorf("emails held by %s: %w", scope, err)
	}
	held, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (heldEmail, error) {
		var h heldEmail
		return h, row.Scan(&h.job.DeliveryID, &h.job.MessageID, &h.retried)
	})
	if err != nil {
		return nil, fmt.Errorf("emails held by %s: %w", scope, err)
	}
	return held, nil
}

// resumeScope lifts the block of scope, which accepts again, in one
// transaction: its failures (and the submission server's) are forgotten,
// each email it held whose history says it waits gets an EventResumed with
// detail, and the send jobs of all of them are made available now. It
// returns how many emails it held, and how many got the event.
func resumeScope(ctx context.Context, pool *pgxpool.Pool, scope, detail string) (held, resumed int, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := unblock(ctx, tx, scope); err != nil {
			return err
		}
		emails, err := heldBy(ctx, tx, scope)
		if err != nil {
			return err
		}
		var ids []int64
		for _, h := range emails {
			if h.retried {
				ids = append(ids, h.job.DeliveryID)
			}
		}
		if err := dispatch.InsertEvents(ctx, tx, ids, dispatch.StatusQueued, dispatch.StatusQueued, dispatch.EventResumed,
			dispatch.SystemActor, detail); err != nil {
			return err
		}
		held, resumed = len(emails), len(ids)
		_, err = queue.WorkNow(ctx, tx, sendJobs(emails))
		return err
	})
	return held, resumed, err
}

// wakeHeld makes the send jobs of the emails scope holds available now.
func wakeHeld(ctx context.Context, q dispatch.DB, scope string) (int64, error) {
	emails, err := heldBy(ctx, q, scope)
	if err != nil {
		return 0, err
	}
	return queue.WorkNow(ctx, q, sendJobs(emails))
}

// sendJobs returns the send jobs' args of emails.
func sendJobs(emails []heldEmail) []river.JobArgs {
	jobs := make([]river.JobArgs, len(emails))
	for i, h := range emails {
		jobs[i] = h.job
	}
	return jobs
}

// countBlocked returns how many scopes are blocked now.
func countBlocked(ctx context.Context, q dispatch.DB) (int, error) {
	var n int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM mail_domains WHERE blocked_until > now()`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count the blocked scopes: %w", err)
	}
	return n, nil
}

// sweepDeadlines takes up to limit deliveries whose acknowledgement deadline
// (ack_due_at) has come, locked (skipping those another sweep holds), moves
// each one's ack_due_at on to its next deadline still to come, or clears it,
// and returns the deadlines passed that still apply, with the number of
// deliveries taken: a DSN deadline to an email still only sent, a read
// deadline to an email sent or delivered, unread and not yet flagged. A
// deadline whose acknowledgement came (or whose email failed, was read, was
// resent) has nothing to apply.
func sweepDeadlines(ctx context.Context, q dispatch.DB, limit int) (passed []DeadlineArgs, swept int, err error) {
	rows, err := q.Query(ctx, `WITH due AS (
			SELECT id,
				CASE WHEN status = 'sent' AND (policy->>'no_dsn_hours')::int > 0
					THEN sent_at + make_interval(hours => (policy->>'no_dsn_hours')::int) END AS dsn,
				CASE WHEN status IN ('sent', 'delivered') AND read_at IS NULL AND attention = ''
						AND (policy->>'unread_hours')::int > 0
					THEN sent_at + make_interval(hours => (policy->>'unread_hours')::int) END AS unread
			FROM deliveries WHERE ack_due_at <= now()
			ORDER BY ack_due_at LIMIT $1 FOR UPDATE SKIP LOCKED
		), moved AS (
			UPDATE deliveries d SET ack_due_at = LEAST(CASE WHEN due.dsn > now() THEN due.dsn END,
				CASE WHEN due.unread > now() THEN due.unread END)
			FROM due WHERE d.id = due.id
		)
		SELECT id, coalesce(dsn <= now(), false), coalesce(unread <= now(), false) FROM due`, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("sweep deadlines: %w", err)
	}
	var id int64
	var dsn, unread bool
	_, err = pgx.ForEachRow(rows, []any{&id, &dsn, &unread}, func() error {
		swept++
		if dsn {
			passed = append(passed, DeadlineArgs{DeliveryID: id, Deadline: DeadlineDSN})
		}
		if unread {
			passed = append(passed, DeadlineArgs{DeliveryID: id, Deadline: DeadlineRead})
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("sweep deadlines: %w", err)
	}
	return passed, swept, nil
}
