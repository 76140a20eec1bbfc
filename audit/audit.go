// Package audit is the trace of who did what with patient data and with the
// service's settings: logins and accounts, every view of a report, its
// document, a letter or a batch, every search by patient and export, every
// action on a delivery, every change to the rules and the local directory.
// Entries are written by the code that does the work, in its transaction:
// an action is never committed without its entry, and a view is not served
// when its entry cannot be written. The log is append-only (a trigger
// refuses updates and deletes), except for the retention purge of entries
// older than the retention period, never younger than MinRetentionDays.
package audit

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Querier is a pool or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Actors that are not a user of the dashboard.
const (
	// ActorAPI is the REST API's client (its bearer token).
	ActorAPI = "api"
	// ActorSystem is the service itself (a job, an acknowledgement).
	ActorSystem = "system"
)

// CLIActor is the actor of a command run by the operating system user name.
func CLIActor(name string) string { return "cli:" + cmp.Or(name, "?") }

// Actions are the actions the service records, for the journal's filter.
var Actions = []string{
	// Accounts (auth).
	"login", "login_failed", "logout", "user_added", "user_disabled", "user_enabled", "password_changed", "grants_changed",
	// Views of patient data (dispatch).
	"report_viewed", "document_downloaded", "letter_printed", "patient_searched", "quarantine_viewed",
	// Actions on refused messages (dispatch).
	"quarantine_reprocessed", "quarantine_dismissed",
	// Actions on deliveries (dispatch): "delivery_" and the event they record.
	"delivery_approved", "delivery_held", "delivery_edited", "delivery_paper", "delivery_cancelled", "delivery_resent",
	"delivery_paper_sent", "delivery_returned", "recipient_added", "batch_posted",
	// Settings: the CME's rules (dispatch), the local directory (correspondents).
	"rules_changed", "correspondent_created", "correspondent_changed", "correspondent_deleted", "correspondent_proposed",
	"correspondent_proposal_rejected",
	// Exports, and the log itself.
	"campaign_exported", "audit_exported", "audit_purged",
}

// Entry is one line of the audit log: who did what to what.
type Entry struct {
	// Actor is a username, ActorAPI, ActorSystem or a CLIActor. Required.
	Actor string
	// Action is what was done, e.g. "login", "report_viewed",
	// "delivery_approved", "correspondent_saved". Required.
	Action string
	// Object is what it was done to, e.g. "delivery:123", "user:alice".
	Object string
	// ReportID and DeliveryID are the report and the delivery concerned,
	// when there is one; the journal finds a patient's entries through them.
	ReportID, DeliveryID int64
	// Patient is the IPP or INS a search or an export was about, when it
	// did not go through one report.
	Patient string
	// Detail says more, for a human; never a password.
	Detail string
}

// Record is an entry as stored.
type Record struct {
	ID int64
	At time.Time
	Entry
}

// Write appends e through q: the caller's transaction, so that the entry
// is written with what it records.
func Write(ctx context.Context, q Querier, e Entry) error {
	if e.Action == "" || e.Actor == "" {
		return errors.New("audit: Entry.Actor and Entry.Action are required")
	}
	_, err := q.Exec(ctx, `INSERT INTO audit_log (actor, action, object, report_id, delivery_id, patient, detail)
		VALUES ($1, $2, $3, NULLIF($4, 0), NULLIF($5, 0), $6, $7)`,
		clean(e.Actor, 200), clean(e.Action, 100), clean(e.Object, 200), e.ReportID, e.DeliveryID,
		clean(e.Patient, 100), clean(e.Detail, 4000))
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// WriteAll appends entries in one transaction of pool: all or none. It
// records that patient data is about to be served, which an error keeps
// from being served.
func WriteAll(ctx context.Context, pool *pgxpool.Pool, entries ...Entry) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, e := range entries {
			if err := Write(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// clean makes s storable text of at most limit characters.
func clean(s string, limit int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit])
	}
	return s
}

// Filter selects records; zero fields select everything.
type Filter struct {
	// Actor and Action, when not empty, must be equal.
	Actor, Action string
	// Patient, when not empty, is an IPP or an INS: the entries about one
	// of the patient's reports or deliveries, and the searches for it.
	Patient string
	// ReportID, when positive, selects the entries about that report and
	// its deliveries.
	ReportID int64
	// From and To, when not zero, bound the time of the entries: From
	// included, To excluded.
	From, To time.Time
	// BeforeID, when positive, returns the records older than this id (the
	// ID of the last record of the previous page).
	BeforeID int64
	// Limit defaults to 50, at most MaxLimit; Export ignores it.
	Limit int
}

// Limits of Read's pages.
const (
	defaultLimit = 50
	MaxLimit     = 500
)

// filterSQL selects the records of a Filter ($1 to $7).
const filterSQL = `($1 = '' OR a.actor = $1) AND ($2 = '' OR a.action = $2)
	AND ($3 = '' OR a.patient = $3 OR EXISTS (SELECT 1 FROM reports r WHERE r.id = a.report_id
		AND $3 IN (r.patient_ipp, r.patient_ins)))
	AND ($4 <= 0 OR a.report_id = $4)
	AND ($5::timestamptz IS NULL OR a.at >= $5) AND ($6::timestamptz IS NULL OR a.at < $6)
	AND ($7 <= 0 OR a.id < $7)`

func (f Filter) args() []any {
	var from, to *time.Time
	if !f.From.IsZero() {
		from = &f.From
	}
	if !f.To.IsZero() {
		to = &f.To
	}
	return []any{strings.TrimSpace(f.Actor), strings.TrimSpace(f.Action), strings.TrimSpace(f.Patient), f.ReportID, from, to, f.BeforeID}
}

const recordColumns = `a.id, a.at, a.actor, a.action, a.object, coalesce(a.report_id, 0), coalesce(a.delivery_id, 0), a.patient, a.detail`

func scanRecord(row pgx.CollectableRow) (Record, error) {
	var r Record
	err := row.Scan(&r.ID, &r.At, &r.Actor, &r.Action, &r.Object, &r.ReportID, &r.DeliveryID, &r.Patient, &r.Detail)
	return r, err
}

// Log is the audit log of a database, for those who read, export and purge
// it; entries are written with Write, in the transaction of what they record.
type Log struct {
	pool *pgxpool.Pool
}

// NewLog is the audit log of the database of pool.
func NewLog(pool *pgxpool.Pool) *Log { return &Log{pool: pool} }

// Read returns the records selected by f, newest first.
func (l *Log) Read(ctx context.Context, f Filter) ([]Record, error) {
	if f.Limit <= 0 {
		f.Limit = defaultLimit
	}
	f.Limit = min(f.Limit, MaxLimit)
	rows, err := l.pool.Query(ctx, `SELECT `+recordColumns+` FROM audit_log a WHERE `+filterSQL+` ORDER BY a.id DESC LIMIT $8`,
		append(f.args(), f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	records, err := pgx.CollectRows(rows, scanRecord)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return records, nil
}

// CSVHeader is the first line of Export's CSV.
var CSVHeader = []string{"id", "date", "utilisateur", "action", "objet", "compte_rendu", "envoi", "patient", "detail"}

// Export writes every record selected by f (its Limit and BeforeID
// ignored), oldest first, as CSV (comma-separated, UTF-8, RFC 4180) to w,
// streaming them. The export itself is recorded first, in the name of
// actor: it is in the log whether it completes or not, and ends its own
// CSV. It returns the number of records written.
func (l *Log) Export(ctx context.Context, actor string, f Filter, w io.Writer) (int, error) {
	f.BeforeID = 0
	if err := Write(ctx, l.pool, Entry{Actor: actor, Action: "audit_exported", Patient: f.Patient, ReportID: f.ReportID,
		Detail: f.describe()}); err != nil {
		return 0, err
	}
	rows, err := l.pool.Query(ctx, `SELECT `+recordColumns+` FROM audit_log a WHERE `+filterSQL+` ORDER BY a.id`, f.args()...)
	if err != nil {
		return 0, fmt.Errorf("export audit log: %w", err)
	}
	defer rows.Close()
	out := csv.NewWriter(w)
	if err := out.Write(CSVHeader); err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return n, fmt.Errorf("export audit log: %w", err)
		}
		if err := out.Write([]string{strconv.FormatInt(r.ID, 10), r.At.UTC().Format(time.RFC3339), r.Actor, r.Action, r.Object,
			idText(r.ReportID), idText(r.DeliveryID), r.Patient, r.Detail}); err != nil {
			return n, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("export audit log: %w", err)
	}
	out.Flush()
	return n, out.Error()
}

// describe says what f selects, for the entry of an export.
func (f Filter) describe() string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, name+"="+v)
		}
	}
	add("utilisateur", f.Actor)
	add("action", f.Action)
	add("patient", f.Patient)
	add("compte_rendu", idText(f.ReportID))
	if !f.From.IsZero() {
		add("du", f.From.Format(time.RFC3339))
	}
	if !f.To.IsZero() {
		add("au", f.To.Format(time.RFC3339))
	}
	if len(parts) == 0 {
		return "tout le journal"
	}
	return strings.Join(parts, " ")
}

func idText(id int64) string {
	if id <= 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}

// MinRetentionDays is the shortest retention of the audit log: six months,
// the minimum of the CNIL's recommendation on logging (délibération
// n° 2021-122). The database refuses to purge younger entries.
const MinRetentionDays = 183

// DefaultRetentionDays is the retention of the audit log unless the
// hospital sets another: one year, the maximum of the CNIL's recommendation
// for a standard log; a hospital's DPO may choose up to three years for a
// log used for internal control.
const DefaultRetentionDays = 365

// Purge deletes, in batches of at most batch, the entries older than days
// (at least MinRetentionDays), and records how many it deleted as an entry
// of ActorSystem. It returns that number.
func (l *Log) Purge(ctx context.Context, days, batch int) (int64, error) {
	if days < MinRetentionDays {
		return 0, fmt.Errorf("audit: retention of %d days: want at least %d", days, MinRetentionDays)
	}
	var total int64
	for {
		var n int64
		err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
			// The trigger lets this transaction delete what is older than the cutoff.
			if _, err := tx.Exec(ctx, `SELECT set_config('mssdispatch.audit_purge_days', $1, true)`, strconv.Itoa(days)); err != nil {
				return fmt.Errorf("purge audit log: %w", err)
			}
			tag, err := tx.Exec(ctx, `DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log
				WHERE at < now() - make_interval(days => $1) ORDER BY id LIMIT $2)`, days, batch)
			if err != nil {
				return fmt.Errorf("purge audit log: %w", err)
			}
			n = tag.RowsAffected()
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < int64(batch) {
			break
		}
	}
	if total == 0 {
		return 0, nil
	}
	return total, pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		return Write(ctx, tx, Entry{Actor: ActorSystem, Action: "audit_purged",
			Detail: fmt.Sprintf("%d entrées de plus de %d jours supprimées", total, days)})
	})
}
