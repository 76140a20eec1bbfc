package correspondents

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mssdispatch/mssdispatch/audit"
)

// A local correspondent changes where every service's letters go: a user
// who may not change the local directory proposes a change, and one who may
// applies or rejects it. Every step is in the audit log.

// Statuses of a LocalProposal.
const (
	ProposalPending  = "pending"
	ProposalApplied  = "applied"
	ProposalRejected = "rejected"
)

// rowQuerier is a pool or a transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ErrDecided is returned for a proposal that was already applied or rejected.
var ErrDecided = errors.New("proposal already decided")

// LocalProposal is a change of the local directory waiting for approval.
type LocalProposal struct {
	ID int64
	// Proposed is the correspondent as proposed: its ID is the one it
	// changes, 0 for a new one.
	Proposed LocalCorrespondent
	// Current is that correspondent as it is now; nil for a new one.
	Current    *LocalCorrespondent
	Why        string
	ProposedBy string
	ProposedAt time.Time
	Status     string
	DecidedBy  string
	DecidedAt  *time.Time
	// Decision is why it was rejected.
	Decision string
}

// Changes lists what applying p would change, as "name: old → new".
func (p LocalProposal) Changes() string {
	if p.Current == nil {
		return "nouveau : " + p.Proposed.describe()
	}
	return changes(*p.Current, p.Proposed)
}

// ProposeLocal records actor's proposal to create c (ID 0) or change the
// local correspondent c.ID, with why. It returns a *ValidationError for
// invalid fields and ErrNotFound for an unknown ID; nothing changes until
// ApplyProposal.
func (s *Store) ProposeLocal(ctx context.Context, c LocalCorrespondent, actor, why string) (LocalProposal, error) {
	if err := c.normalise(); err != nil {
		return LocalProposal{}, err
	}
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var current *int64
		detail := "nouveau : " + c.describe()
		if c.ID != 0 {
			before, err := lockLocal(ctx, tx, c.ID)
			if err != nil {
				return err
			}
			current, detail = &c.ID, changes(before, c)
		}
		if err := tx.QueryRow(ctx, `INSERT INTO local_correspondent_proposals (correspondent_id, proposed, why, proposed_by)
			VALUES ($1, $2, $3, $4) RETURNING id`, current, c, strings.TrimSpace(why), actor).Scan(&id); err != nil {
			return fmt.Errorf("propose local correspondent: %w", err)
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: actor, Action: "correspondent_proposed", Object: fmt.Sprintf("proposal:%d", id),
			Detail: detail})
	})
	if err != nil {
		return LocalProposal{}, err
	}
	return loadProposal(ctx, s.pool, id)
}

// ProposalFilter selects proposals; zero fields select all.
type ProposalFilter struct {
	Status     string
	ProposedBy string
	// Limit defaults to 50, at most 500.
	Limit int
}

const proposalColumns = `p.id, p.proposed, coalesce(p.correspondent_id, 0), p.why, p.proposed_by, p.proposed_at, p.status,
	p.decided_by, p.decided_at, p.decision`

// LocalProposals returns the proposals f selects, newest first, each with
// the correspondent it would change as it is now.
func (s *Store) LocalProposals(ctx context.Context, f ProposalFilter) ([]LocalProposal, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	rows, err := s.pool.Query(ctx, `SELECT `+proposalColumns+` FROM local_correspondent_proposals p
		WHERE ($1 = '' OR p.status = $1) AND ($2 = '' OR p.proposed_by = $2) ORDER BY p.id DESC LIMIT $3`,
		f.Status, f.ProposedBy, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list proposals: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (LocalProposal, error) { return scanProposal(row) })
	if err != nil {
		return nil, fmt.Errorf("list proposals: %w", err)
	}
	for i := range out {
		if err := withCurrent(ctx, s.pool, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ApplyProposal makes the pending proposal id the local directory's entry,
// in the name of actor, and returns it as stored. It returns ErrDecided for
// a proposal already decided, and SaveLocal's errors.
func (s *Store) ApplyProposal(ctx context.Context, id int64, actor string) (LocalCorrespondent, error) {
	var saved LocalCorrespondent
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		p, err := lockPending(ctx, tx, id)
		if err != nil {
			return err
		}
		if saved, err = saveLocal(ctx, tx, p.Proposed, actor, fmt.Sprintf("proposition n° %d de %s", id, p.ProposedBy)); err != nil {
			return err
		}
		return decide(ctx, tx, id, ProposalApplied, actor, "")
	})
	return saved, err
}

// RejectProposal rejects the pending proposal id, in the name of actor, with why.
func (s *Store) RejectProposal(ctx context.Context, id int64, actor, why string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := lockPending(ctx, tx, id); err != nil {
			return err
		}
		if err := decide(ctx, tx, id, ProposalRejected, actor, why); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: actor, Action: "correspondent_proposal_rejected", Object: fmt.Sprintf("proposal:%d", id),
			Detail: why})
	})
}

// lockPending locks and returns the proposal id: ErrNotFound, or ErrDecided
// when it is not pending.
func lockPending(ctx context.Context, tx pgx.Tx, id int64) (LocalProposal, error) {
	p, err := scanProposal(tx.QueryRow(ctx, `SELECT `+proposalColumns+` FROM local_correspondent_proposals p WHERE p.id = $1 FOR UPDATE`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return LocalProposal{}, fmt.Errorf("proposal %d: %w", id, ErrNotFound)
	case err != nil:
		return LocalProposal{}, fmt.Errorf("load proposal %d: %w", id, err)
	case p.Status != ProposalPending:
		return LocalProposal{}, fmt.Errorf("proposal %d is %s: %w", id, p.Status, ErrDecided)
	}
	return p, nil
}

func decide(ctx context.Context, tx pgx.Tx, id int64, status, actor, why string) error {
	_, err := tx.Exec(ctx, `UPDATE local_correspondent_proposals SET status = $2, decided_by = $3, decided_at = now(), decision = $4
		WHERE id = $1`, id, status, actor, strings.TrimSpace(why))
	if err != nil {
		return fmt.Errorf("decide proposal %d: %w", id, err)
	}
	return nil
}

// proposal returns the proposal id with its current correspondent.
func loadProposal(ctx context.Context, q rowQuerier, id int64) (LocalProposal, error) {
	p, err := scanProposal(q.QueryRow(ctx, `SELECT `+proposalColumns+` FROM local_correspondent_proposals p WHERE p.id = $1`, id))
	if err != nil {
		return LocalProposal{}, fmt.Errorf("load proposal %d: %w", id, err)
	}
	return p, withCurrent(ctx, q, &p)
}

// withCurrent loads the correspondent p changes, when it changes one.
func withCurrent(ctx context.Context, q rowQuerier, p *LocalProposal) error {
	if p.Proposed.ID == 0 {
		return nil
	}
	c, err := scanLocal(q.QueryRow(ctx, `SELECT `+localColumns+` FROM local_correspondents WHERE id = $1`, p.Proposed.ID))
	if err != nil {
		return fmt.Errorf("load the correspondent of proposal %d: %w", p.ID, err)
	}
	p.Current = &c
	return nil
}

func scanProposal(row pgx.Row) (LocalProposal, error) {
	var p LocalProposal
	var target int64
	err := row.Scan(&p.ID, &p.Proposed, &target, &p.Why, &p.ProposedBy, &p.ProposedAt, &p.Status, &p.DecidedBy, &p.DecidedAt, &p.Decision)
	p.Proposed.ID = target
	return p, err
}
