package correspondents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store keeps the directory and the trust space in PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// ImportSummary says what an import changed.
type ImportSummary struct {
	Rows    int64 // rows read (for the directory: valid rows, duplicates included)
	Skipped int64 // invalid rows left out
	Added   int64 // entries that were not there before
	Removed int64 // entries that are no longer there
	Changed int64 // entries still there with other values (directory only)
}

// Triggers of an import: what started it, recorded with every attempt.
const (
	TriggerCommand  = "command"  // the mssdispatch directory import or whitelist import command
	TriggerSchedule = "schedule" // the periodic directory sync job
	TriggerAPI      = "api"      // a request to the REST API or the dashboard
)

// Kinds of import, as recorded in directory_imports.
const (
	kindDirectory = "directory"
	kindWhitelist = "whitelist"
)

// progressRows is how many rows a directory import reads between two calls of ImportOptions.Progress.
const progressRows = 10000

// ImportOptions are the options of the imports; the zero value is valid.
type ImportOptions struct {
	// Trigger says what started the import: TriggerCommand, TriggerSchedule
	// or TriggerAPI. Defaults to TriggerCommand.
	Trigger string
	// Force lets an import remove more than half of the current entries;
	// without it such an import fails with a *ShrinkError, so that a
	// truncated download cannot empty the directory or the trust space.
	Force bool
	// Progress, when not nil, is called during a directory import with the
	// number of rows read so far (valid and invalid), every 10,000 rows. It
	// may be called from another goroutine, never concurrently.
	Progress func(rows int64)
	// Downloaded, when not nil, is called by ImportDirectoryFrom and
	// ImportWhitelistFrom with the number of bytes downloaded so far from an
	// https:// source, every MiB and at the end.
	Downloaded func(bytes int64)
	// Client downloads the https:// sources of ImportDirectoryFrom and
	// ImportWhitelistFrom. Defaults to a client with timeouts (see
	// OpenExtractionSource).
	Client *http.Client
}

// trigger returns the trigger to record, checking it.
func (o ImportOptions) trigger() (string, error) {
	switch o.Trigger {
	case "":
		return TriggerCommand, nil
	case TriggerCommand, TriggerSchedule, TriggerAPI:
		return o.Trigger, nil
	}
	return "", fmt.Errorf("unknown import trigger %q", o.Trigger)
}

// ErrEmpty is wrapped by the error of an import with nothing in it: an
// extraction without any row after its header, or a whitelist without any
// domain.
var ErrEmpty = errors.New("nothing to import")

// InvalidRowsError reports a directory import refused because none of its
// rows is valid, or because more than 1 % of them are invalid.
type InvalidRowsError struct {
	Invalid int64      // Rows that could not be read.
	Read    int64      // Rows read, valid and invalid.
	First   *LineError // The first invalid row.
}

// Error implements error.
func (e *InvalidRowsError) Error() string {
	why := "over 1 %"
	if e.Invalid == e.Read {
		why = "no valid row"
	}
	return fmt.Sprintf("%d of %d rows invalid (%s), first: %v", e.Invalid, e.Read, why, e.First)
}

// ShrinkError reports an import refused because it would remove more than
// half of the current entries; ImportOptions.Force lets it through.
type ShrinkError struct {
	Current int64 // Entries before the import.
	Removed int64 // Entries the import would remove.
}

// Error implements error.
func (e *ShrinkError) Error() string {
	return fmt.Sprintf("would remove %d of the %d current entries, more than half (truncated file?)", e.Removed, e.Current)
}

// ImportDirectory replaces the directory with the entries of r in one
// transaction, and records the attempt in directory_imports, failed or not.
//
// Rows are streamed with COPY into a staging table (constant memory),
// duplicates (same address and national id) are folded keeping the first,
// and the new directory is applied as a difference (removed, changed, added
// entries) in the same transaction, so readers see the old or the new
// directory, never a mix. Invalid rows (*LineError) are skipped and counted,
// but the import fails, leaving the previous directory intact, with an
// *InvalidRowsError if no row is valid or more than 1 % are invalid, with
// ErrEmpty if there is no row at all, and with a *ShrinkError if it would
// remove more than half of the current entries and opts.Force is not set.
// source names where r comes from in the record and in errors.
func (s *Store) ImportDirectory(ctx context.Context, source string, r *ExtractionReader, opts ImportOptions) (ImportSummary, error) {
	return s.runImport(ctx, kindDirectory, source, opts, func(trigger string) (ImportSummary, error) {
		return s.importDirectory(ctx, source, trigger, r, opts)
	})
}

// ImportDirectoryFrom runs a whole directory import from src, a file path
// or an https:// URL (see OpenExtractionSource): it opens or downloads the
// extraction, checks its header and imports it as ImportDirectory does. It
// returns the summary of a successful import, or an error, and records the
// attempt in directory_imports either way, including a failed download or
// a wrong header.
func (s *Store) ImportDirectoryFrom(ctx context.Context, src string, opts ImportOptions) (ImportSummary, error) {
	source := redact(src)
	return s.runImport(ctx, kindDirectory, source, opts, func(trigger string) (ImportSummary, error) {
		rc, err := OpenExtractionSource(ctx, src, opts.Client, opts.Downloaded)
		if err != nil {
			return ImportSummary{}, err
		}
		defer rc.Close()
		r, err := NewExtractionReader(rc)
		if err != nil {
			return ImportSummary{}, err
		}
		return s.importDirectory(ctx, source, trigger, r, opts)
	})
}

// ImportWhitelist replaces the trust space with domains in one transaction,
// and records the attempt in directory_imports, failed or not. It fails with
// ErrEmpty when domains is empty, and with a *ShrinkError if it would remove
// more than half of the current domains and opts.Force is not set.
func (s *Store) ImportWhitelist(ctx context.Context, source string, domains []string, opts ImportOptions) (ImportSummary, error) {
	return s.runImport(ctx, kindWhitelist, source, opts, func(trigger string) (ImportSummary, error) {
		return s.importWhitelist(ctx, source, trigger, domains, opts)
	})
}

// ImportWhitelistFrom runs a whole whitelist import from src, a file path or
// an https:// URL (see ReadWhitelistSource), as ImportWhitelist does. It
// returns the summary of a successful import, or an error, and records the
// attempt in directory_imports either way, including a failed download or
// an unreadable whitelist.
func (s *Store) ImportWhitelistFrom(ctx context.Context, src string, opts ImportOptions) (ImportSummary, error) {
	source := redact(src)
	return s.runImport(ctx, kindWhitelist, source, opts, func(trigger string) (ImportSummary, error) {
		domains, err := ReadWhitelistSource(ctx, src, opts.Client, opts.Downloaded)
		if err != nil {
			return ImportSummary{}, err
		}
		return s.importWhitelist(ctx, source, trigger, domains, opts)
	})
}

// runImport runs one import attempt. A successful import records itself in
// its transaction; a failed one is recorded here, after the rollback, in its
// own statement, even when ctx is cancelled.
func (s *Store) runImport(ctx context.Context, kind, source string, opts ImportOptions, do func(trigger string) (ImportSummary, error)) (ImportSummary, error) {
	trigger, err := opts.trigger()
	if err != nil {
		return ImportSummary{}, fmt.Errorf("import %s from %s: %w", kind, source, err)
	}
	sum, err := do(trigger)
	if err == nil {
		return sum, nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if rerr := recordImport(rctx, s.pool, kind, source, trigger, sum, err); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return ImportSummary{}, fmt.Errorf("import %s from %s: %w", kind, source, err)
}

// importDirectory is ImportDirectory without the record of a failure. The
// summary it returns with an error holds what was counted before the failure.
func (s *Store) importDirectory(ctx context.Context, source, trigger string, r *ExtractionReader, opts ImportOptions) (ImportSummary, error) {
	var sum ImportSummary
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockImport(ctx, tx, kindDirectory); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE directory_staging
			(LIKE directory_entries INCLUDING DEFAULTS, line bigint NOT NULL) ON COMMIT DROP`); err != nil {
			return fmt.Errorf("create staging table: %w", err)
		}
		// In the order of directoryRows.fill.
		cols := []string{"address", "national_id", "box_type", "last_name", "first_name",
			"profession", "structure_id", "org_name", "dematerialised", "postal_address", "rpps",
			"profession_code", "specialty", "search_name", "search_city", "line"}
		src := &directoryRows{r: r, progress: opts.Progress, values: make([]any, len(cols))}
		rows, err := tx.CopyFrom(ctx, pgx.Identifier{"directory_staging"}, cols, src)
		sum.Rows, sum.Skipped = rows, src.invalid
		if src.err != nil {
			return src.err // Rather than the server's echo of its text.
		}
		if err != nil {
			return fmt.Errorf("copy directory rows: %w", err)
		}
		switch read := src.valid + src.invalid; {
		case read == 0:
			return fmt.Errorf("%w: no row after the header", ErrEmpty)
		case src.valid == 0 || src.invalid*100 > read:
			return &InvalidRowsError{Invalid: src.invalid, Read: read, First: src.first}
		}

		// Fold duplicates, keeping the first row of each (address, national id).
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE directory_new ON COMMIT DROP AS
			SELECT DISTINCT ON (address, national_id) * FROM directory_staging ORDER BY address, national_id, line`); err != nil {
			return fmt.Errorf("fold duplicate rows: %w", err)
		}
		if _, err := tx.Exec(ctx, `DROP TABLE directory_staging`); err != nil {
			return fmt.Errorf("drop staging table: %w", err)
		}
		// Temporary tables have no statistics until analysed.
		if _, err := tx.Exec(ctx, `ANALYZE directory_new`); err != nil {
			return fmt.Errorf("analyse new directory: %w", err)
		}

		var current int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM directory_entries`).Scan(&current); err != nil {
			return fmt.Errorf("count directory: %w", err)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM directory_entries d WHERE NOT EXISTS
			(SELECT 1 FROM directory_new n WHERE n.address = d.address AND n.national_id = d.national_id)`)
		if err != nil {
			return fmt.Errorf("remove old entries: %w", err)
		}
		sum.Removed = tag.RowsAffected()
		if err := checkShrink(current, sum.Removed, opts.Force); err != nil {
			return err
		}
		tag, err = tx.Exec(ctx, `UPDATE directory_entries d SET
				box_type = n.box_type, last_name = n.last_name, first_name = n.first_name,
				profession = n.profession, structure_id = n.structure_id, org_name = n.org_name,
				dematerialised = n.dematerialised, postal_address = n.postal_address, rpps = n.rpps,
				profession_code = n.profession_code, specialty = n.specialty,
				search_name = n.search_name, search_city = n.search_city
			FROM directory_new n
			WHERE n.address = d.address AND n.national_id = d.national_id
				AND (d.box_type, d.last_name, d.first_name, d.profession, d.structure_id, d.org_name,
					d.dematerialised, d.postal_address, d.rpps, d.profession_code, d.specialty,
					d.search_name, d.search_city)
				IS DISTINCT FROM (n.box_type, n.last_name, n.first_name, n.profession, n.structure_id, n.org_name,
					n.dematerialised, n.postal_address, n.rpps, n.profession_code, n.specialty,
					n.search_name, n.search_city)`)
		if err != nil {
			return fmt.Errorf("update changed entries: %w", err)
		}
		sum.Changed = tag.RowsAffected()
		tag, err = tx.Exec(ctx, `INSERT INTO directory_entries (address, national_id, box_type, last_name, first_name,
				profession, structure_id, org_name, dematerialised, postal_address, rpps, profession_code,
				specialty, search_name, search_city)
			SELECT address, national_id, box_type, last_name, first_name,
				profession, structure_id, org_name, dematerialised, postal_address, rpps, profession_code,
				specialty, search_name, search_city
			FROM directory_new n WHERE NOT EXISTS
				(SELECT 1 FROM directory_entries d WHERE d.address = n.address AND d.national_id = n.national_id)`)
		if err != nil {
			return fmt.Errorf("add new entries: %w", err)
		}
		sum.Added = tag.RowsAffected()
		return recordImport(ctx, tx, kindDirectory, source, trigger, sum, nil)
	})
	return sum, err
}

// directoryRows feeds CopyFrom with the valid entries of an extraction,
// counting the invalid ones. It reuses one row buffer: CopyFrom encodes each
// row before asking for the next.
type directoryRows struct {
	r        *ExtractionReader
	progress func(rows int64)

	valid, invalid int64
	first          *LineError

	values []any
	err    error
}

// Next implements pgx.CopyFromSource.
func (d *directoryRows) Next() bool {
	for {
		e, err := d.r.Next()
		if errors.Is(err, io.EOF) {
			return false
		}
		if lineErr, ok := errors.AsType[*LineError](err); ok {
			d.invalid++
			if d.first == nil {
				d.first = lineErr
			}
			d.tick()
			continue
		}
		if err != nil {
			d.err = fmt.Errorf("read extraction: %w", err)
			return false
		}
		d.valid++
		d.tick()
		if err := d.fill(&e); err != nil {
			d.err = err
			return false
		}
		return true
	}
}

// tick reports progress every progressRows rows read.
func (d *directoryRows) tick() {
	if read := d.valid + d.invalid; d.progress != nil && read%progressRows == 0 {
		d.progress(read)
	}
}

// fill sets the row values of e, in the order of the staging columns.
func (d *directoryRows) fill(e *Entry) error {
	rpps := ""
	if e.PPIDType == "8" {
		rpps = e.PPID
	}
	name := e.LastName + " " + e.FirstName
	if e.LastName == "" {
		name = e.OrgName + " " + e.Service
	}
	postal, err := json.Marshal(e.PostalAddress)
	if err != nil {
		return fmt.Errorf("encode postal address: %w", err)
	}
	v := d.values
	v[0], v[1], v[2], v[3], v[4] = e.Address, e.NationalID, e.BoxType, e.LastName, e.FirstName
	v[5], v[6], v[7], v[8], v[9] = e.ProfessionLabel, e.StructureID, e.OrgName, e.Dematerialised, postal
	v[10], v[11], v[12], v[13], v[14] = rpps, e.ProfessionCode, e.SkillLabel, SearchKey(name), SearchKey(e.PostalAddress.City)
	v[15] = int64(d.r.Line())
	return nil
}

// Values implements pgx.CopyFromSource.
func (d *directoryRows) Values() ([]any, error) { return d.values, nil }

// Err implements pgx.CopyFromSource.
func (d *directoryRows) Err() error { return d.err }

// importWhitelist is ImportWhitelist without the record of a failure.
func (s *Store) importWhitelist(ctx context.Context, source, trigger string, domains []string, opts ImportOptions) (ImportSummary, error) {
	sum := ImportSummary{Rows: int64(len(domains))}
	if len(domains) == 0 {
		return sum, fmt.Errorf("%w: no domain", ErrEmpty)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockImport(ctx, tx, kindWhitelist); err != nil {
			return err
		}
		var current int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM trust_domains`).Scan(&current); err != nil {
			return fmt.Errorf("count trust space: %w", err)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM trust_domains WHERE domain <> ALL ($1::text[])`, domains)
		if err != nil {
			return fmt.Errorf("remove old domains: %w", err)
		}
		sum.Removed = tag.RowsAffected()
		if err := checkShrink(current, sum.Removed, opts.Force); err != nil {
			return err
		}
		tag, err = tx.Exec(ctx, `INSERT INTO trust_domains (domain) SELECT DISTINCT unnest($1::text[])
			ON CONFLICT (domain) DO NOTHING`, domains)
		if err != nil {
			return fmt.Errorf("add new domains: %w", err)
		}
		sum.Added = tag.RowsAffected()
		return recordImport(ctx, tx, kindWhitelist, source, trigger, sum, nil)
	})
	return sum, err
}

// checkShrink returns a *ShrinkError when removed is more than half of current, unless force.
func checkShrink(current, removed int64, force bool) error {
	if !force && current > 0 && removed*2 > current {
		return &ShrinkError{Current: current, Removed: removed}
	}
	return nil
}

// lockImport serialises the imports of one kind, across processes, until the end of tx.
func lockImport(ctx context.Context, tx pgx.Tx, kind string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('mssdispatch.correspondents.import'), hashtext($1))`, kind); err != nil {
		return fmt.Errorf("lock %s imports: %w", kind, err)
	}
	return nil
}

// execer is a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// recordImport records one import attempt: succeeded when failure is nil,
// failed with its text otherwise.
func recordImport(ctx context.Context, db execer, kind, source, trigger string, sum ImportSummary, failure error) error {
	status, text := "succeeded", ""
	if failure != nil {
		status, text = "failed", failure.Error()
	}
	_, err := db.Exec(ctx, `INSERT INTO directory_imports
		(kind, source, trigger, status, error, rows, skipped, added, removed, changed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		kind, source, trigger, status, text, sum.Rows, sum.Skipped, sum.Added, sum.Removed, sum.Changed)
	if err != nil {
		return fmt.Errorf("record import: %w", err)
	}
	return nil
}
