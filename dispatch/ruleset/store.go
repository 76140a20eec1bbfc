package ruleset

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/rules"
)

// This file holds the SQL of the CME rules: their versions, and the reports
// a dry run of a proposed version plans again.

// InForce returns the rules in force: the newest version, or
// rules.DefaultSet (version 0) when the CME has written none. q is a pool
// or a transaction.
func InForce(ctx context.Context, q dispatch.DB) (rules.Set, error) {
	var rs rules.Set
	err := q.QueryRow(ctx, `SELECT version, rules, comment, created_by, created_at FROM rule_sets
		ORDER BY version DESC LIMIT 1`).Scan(&rs.Version, &rs.Rules, &rs.Comment, &rs.CreatedBy, &rs.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return rules.DefaultSet, nil
	}
	if err != nil {
		return rules.Set{}, fmt.Errorf("load rules: %w", err)
	}
	if err := rs.Normalise(); err != nil {
		return rules.Set{}, fmt.Errorf("rules version %d: %w", rs.Version, err)
	}
	return rs, nil
}

// insertRuleSet stores rs, normalised, as the next version with its YAML
// source, and returns it with its version and creation time. Writers are
// serialised by a lock on the table (readers are not blocked), so that two
// concurrent versions get distinct numbers.
func insertRuleSet(ctx context.Context, db *pgxpool.Pool, rs rules.Set, source []byte, actor string) (rules.Set, error) {
	rs.CreatedBy = actor
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "LOCK TABLE rule_sets IN EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("lock rules: %w", err)
		}
		if err := tx.QueryRow(ctx, `INSERT INTO rule_sets (version, rules, source, comment, created_by)
			SELECT coalesce(max(version), 0) + 1, $1, $2, $3, $4 FROM rule_sets
			RETURNING version, created_at`, rs.Rules, string(source), rs.Comment, actor).Scan(&rs.Version, &rs.CreatedAt); err != nil {
			return err
		}
		detail := fmt.Sprintf("%d règles", len(rs.Rules))
		if rs.Comment != "" {
			detail += " : " + rs.Comment
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: actor, Action: "rules_changed", Object: fmt.Sprintf("rules:%d", rs.Version), Detail: detail})
	})
	if err != nil {
		return rules.Set{}, fmt.Errorf("store rules: %w", err)
	}
	return rs, nil
}

// ruleSetVersion returns the stored version and its YAML source, or ErrNotFound.
func ruleSetVersion(ctx context.Context, q dispatch.DB, version int) (rules.Set, []byte, error) {
	var rs rules.Set
	var source string
	err := q.QueryRow(ctx, `SELECT version, rules, source, comment, created_by, created_at FROM rule_sets
		WHERE version = $1`, version).Scan(&rs.Version, &rs.Rules, &source, &rs.Comment, &rs.CreatedBy, &rs.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return rules.Set{}, nil, fmt.Errorf("rules version %d: %w", version, dispatch.ErrNotFound)
	}
	if err != nil {
		return rules.Set{}, nil, fmt.Errorf("load rules version %d: %w", version, err)
	}
	if err := rs.Normalise(); err != nil {
		return rules.Set{}, nil, fmt.Errorf("rules version %d: %w", version, err)
	}
	return rs, []byte(source), nil
}

// ruleSetHistory returns the newest limit versions, newest first.
func ruleSetHistory(ctx context.Context, q dispatch.DB, limit int) ([]rules.Set, error) {
	rows, err := q.Query(ctx, `SELECT version, rules, comment, created_by, created_at FROM rule_sets
		ORDER BY version DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list rules versions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (rules.Set, error) {
		var rs rules.Set
		if err := row.Scan(&rs.Version, &rs.Rules, &rs.Comment, &rs.CreatedBy, &rs.CreatedAt); err != nil {
			return rules.Set{}, err
		}
		if err := rs.Normalise(); err != nil {
			return rules.Set{}, fmt.Errorf("rules version %d: %w", rs.Version, err)
		}
		return rs, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list rules versions: %w", err)
	}
	return out, nil
}

// reportRef names a report.
type reportRef struct {
	ID         int64
	DocumentID string
}

// recentResolvedReports returns the newest n reports that have deliveries, newest first.
func recentResolvedReports(ctx context.Context, q dispatch.DB, n int) ([]reportRef, error) {
	rows, err := q.Query(ctx, `SELECT r.id, r.document_id FROM reports r
		WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.report_id = r.id)
		ORDER BY r.id DESC LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[reportRef])
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	return out, nil
}
