package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// This file holds the SQL of the CME rules.

// activeRuleSet returns the rules in force: the newest version, or
// DefaultRuleSet when the CME has written none.
func activeRuleSet(ctx context.Context, q dbtx) (RuleSet, error) {
	var rs RuleSet
	err := q.QueryRow(ctx, `SELECT version, rules, comment, created_by, created_at FROM rule_sets
		ORDER BY version DESC LIMIT 1`).Scan(&rs.Version, &rs.Rules, &rs.Comment, &rs.CreatedBy, &rs.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return DefaultRuleSet, nil
	}
	if err != nil {
		return RuleSet{}, fmt.Errorf("load rules: %w", err)
	}
	if err := rs.Normalise(); err != nil {
		return RuleSet{}, fmt.Errorf("rules version %d: %w", rs.Version, err)
	}
	return rs, nil
}
