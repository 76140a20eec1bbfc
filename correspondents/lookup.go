package correspondents

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// This file holds the directory look-ups of the resolver.

// Mailboxes returns the directory's mailboxes of the person with nationalID,
// personal mailboxes first.
func (s *Store) Mailboxes(ctx context.Context, nationalID string) ([]Mailbox, error) {
	rows, err := s.pool.Query(ctx, `SELECT address, national_id, box_type, last_name, first_name, dematerialised
		FROM directory_entries WHERE national_id = $1
		ORDER BY box_type <> 'PER', address`, nationalID)
	if err != nil {
		return nil, fmt.Errorf("look up mailboxes: %w", err)
	}
	boxes, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Mailbox])
	if err != nil {
		return nil, fmt.Errorf("look up mailboxes: %w", err)
	}
	return boxes, nil
}

// Trusted reports whether domain, or a parent domain of it, is in the trust space.
func (s *Store) Trusted(ctx context.Context, domain string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM trust_domains
		WHERE domain = $1 OR right($1, length(domain) + 1) = '.' || domain)`, domain).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("check trust space: %w", err)
	}
	return ok, nil
}
