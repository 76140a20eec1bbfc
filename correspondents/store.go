package correspondents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
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
	Added   int64
	Removed int64
	Changed int64
}

// Mailbox is a directory entry for one MSSanté address.
type Mailbox struct {
	Address        string
	NationalID     string
	BoxType        string
	LastName       string
	FirstName      string
	Dematerialised bool
}

// ImportDirectory replaces the directory with the entries of r in one
// transaction: rows are streamed with COPY into a staging table, duplicates are
// folded, and the swap is atomic, so readers see the old or the new directory,
// never a mix. Invalid rows are skipped and counted; progress, when not nil, is
// called every 10,000 rows.
func (s *Store) ImportDirectory(ctx context.Context, source string, r *ExtractionReader, progress func(rows int64)) (ImportSummary, error) {
	var sum ImportSummary
	var read int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE directory_staging
			(LIKE directory_entries INCLUDING DEFAULTS) ON COMMIT DROP`); err != nil {
			return fmt.Errorf("create staging table: %w", err)
		}
		cols := []string{"address", "national_id", "box_type", "last_name", "first_name",
			"profession", "structure_id", "org_name", "dematerialised", "postal_address"}
		rows, err := tx.CopyFrom(ctx, pgx.Identifier{"directory_staging"}, cols, pgx.CopyFromFunc(func() ([]any, error) {
			for {
				e, err := r.Next()
				if errors.Is(err, io.EOF) {
					return nil, nil
				}
				var lineErr *LineError
				if errors.As(err, &lineErr) {
					sum.Skipped++
					continue
				}
				if err != nil {
					return nil, err
				}
				read++
				if progress != nil && read%10000 == 0 {
					progress(read)
				}
				postal, err := json.Marshal(e.PostalAddress)
				if err != nil {
					return nil, err
				}
				return []any{e.Address, e.NationalID, e.BoxType, e.LastName, e.FirstName,
					e.ProfessionLabel, e.StructureID, e.OrgName, e.Dematerialised, postal}, nil
			}
		}))
		if err != nil {
			return fmt.Errorf("copy directory rows: %w", err)
		}
		sum.Rows = rows
		err = tx.QueryRow(ctx, `
			WITH new AS (
				SELECT DISTINCT ON (address, national_id) * FROM directory_staging ORDER BY address, national_id
			)
			SELECT
				(SELECT count(*) FROM new WHERE NOT EXISTS (SELECT 1 FROM directory_entries d
					WHERE d.address = new.address AND d.national_id = new.national_id)),
				(SELECT count(*) FROM directory_entries d WHERE NOT EXISTS (SELECT 1 FROM new
					WHERE d.address = new.address AND d.national_id = new.national_id)),
				(SELECT count(*) FROM new JOIN directory_entries d USING (address, national_id)
					WHERE (new.*) IS DISTINCT FROM (d.*))`).Scan(&sum.Added, &sum.Removed, &sum.Changed)
		if err != nil {
			return fmt.Errorf("compare directory: %w", err)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM directory_entries"); err != nil {
			return fmt.Errorf("clear directory: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO directory_entries
			SELECT DISTINCT ON (address, national_id) * FROM directory_staging ORDER BY address, national_id`); err != nil {
			return fmt.Errorf("swap directory: %w", err)
		}
		return recordImport(ctx, tx, "directory", source, sum)
	})
	if err != nil {
		return ImportSummary{}, fmt.Errorf("import directory from %s: %w", source, err)
	}
	return sum, nil
}

// ImportWhitelist replaces the trust space with domains in one transaction.
func (s *Store) ImportWhitelist(ctx context.Context, source string, domains []string) (ImportSummary, error) {
	sum := ImportSummary{Rows: int64(len(domains))}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			SELECT
				(SELECT count(*) FROM unnest($1::text[]) AS n(domain) WHERE n.domain NOT IN (SELECT domain FROM trust_domains)),
				(SELECT count(*) FROM trust_domains WHERE domain <> ALL ($1::text[]))`, domains).Scan(&sum.Added, &sum.Removed)
		if err != nil {
			return fmt.Errorf("compare trust space: %w", err)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM trust_domains"); err != nil {
			return fmt.Errorf("clear trust space: %w", err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO trust_domains (domain) SELECT DISTINCT unnest($1::text[])", domains); err != nil {
			return fmt.Errorf("insert trust space: %w", err)
		}
		return recordImport(ctx, tx, "whitelist", source, sum)
	})
	if err != nil {
		return ImportSummary{}, fmt.Errorf("import whitelist from %s: %w", source, err)
	}
	return sum, nil
}

func recordImport(ctx context.Context, tx pgx.Tx, kind, source string, sum ImportSummary) error {
	_, err := tx.Exec(ctx, `INSERT INTO directory_imports (kind, source, rows, skipped, added, removed, changed)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, kind, source, sum.Rows, sum.Skipped, sum.Added, sum.Removed, sum.Changed)
	if err != nil {
		return fmt.Errorf("record import: %w", err)
	}
	return nil
}
