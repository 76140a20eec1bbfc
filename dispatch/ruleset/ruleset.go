package ruleset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/rules"
)

// Dry runs check the newest DefaultDryRunReports reports unless told
// otherwise, and never more than MaxDryRunReports.
const (
	DefaultDryRunReports = 50
	MaxDryRunReports     = 500
)

// Bounds of Store.History.
const (
	defaultHistory = 50
	maxHistory     = 500
)

// Store keeps the versions of the CME's rules and runs the dry run of a
// proposed version.
type Store struct {
	pool *pgxpool.Pool
	// resolver decides recipients' routes in a dry run.
	resolver dispatch.Resolver
	logger   *slog.Logger
}

// New returns the rules kept in pool; a dry run resolves recipients with
// resolver. logger defaults to slog.Default().
func New(pool *pgxpool.Pool, resolver dispatch.Resolver, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.Default()
	}
	return &Store{pool: pool, resolver: resolver, logger: logger}
}

// Set reads a rule set from its YAML source (rules.Parse), stores it as the
// next version with the source as written, and returns it: the reports
// received from then on are dispatched under it. actor is who made the
// change; comment, when not empty, replaces the source's comment. Invalid
// rules are a *rules.Error and store nothing.
func (s *Store) Set(ctx context.Context, source []byte, actor, comment string) (rules.Set, error) {
	if strings.TrimSpace(actor) == "" {
		return rules.Set{}, errors.New("set rules: actor is required")
	}
	rs, err := rules.Parse(source)
	if err != nil {
		return rules.Set{}, err
	}
	if comment = strings.TrimSpace(comment); comment != "" {
		rs.Comment = comment
	}
	rs, err = insertRuleSet(ctx, s.pool, rs, source, actor)
	if err != nil {
		return rules.Set{}, err
	}
	s.logger.InfoContext(ctx, "rules changed", "version", rs.Version, "rules", len(rs.Rules), "actor", actor)
	return rs, nil
}

// InForce returns the rules in force: the newest version, or
// rules.DefaultSet (version 0) when the CME has written none.
func (s *Store) InForce(ctx context.Context) (rules.Set, error) {
	return InForce(ctx, s.pool)
}

// Version returns a version of the rules and its YAML source as written, or
// dispatch.ErrNotFound. Version 0 is rules.DefaultSet, its source
// rules.Marshal's.
func (s *Store) Version(ctx context.Context, version int) (rules.Set, []byte, error) {
	switch {
	case version < 0:
		return rules.Set{}, nil, fmt.Errorf("rules version %d: %w", version, dispatch.ErrNotFound)
	case version == 0:
		source, err := rules.Marshal(rules.DefaultSet)
		if err != nil {
			return rules.Set{}, nil, err
		}
		return rules.DefaultSet, source, nil
	}
	return ruleSetVersion(ctx, s.pool, version)
}

// History returns the stored versions of the rules, newest first: at most
// limit (defaults to 50, at most 500), each with its rules, author, time
// and comment. The built-in version 0 is not part of it.
func (s *Store) History(ctx context.Context, limit int) ([]rules.Set, error) {
	if limit <= 0 {
		limit = defaultHistory
	}
	return ruleSetHistory(ctx, s.pool, min(limit, maxHistory))
}

// DryRun is what a proposed rule set would change, compared with the rules
// in force, on recent reports.
type DryRun struct {
	// CurrentVersion is the version of the rules in force.
	CurrentVersion int `json:"current_version"`
	// ReportsChecked is the number of reports planned under both.
	ReportsChecked int `json:"reports_checked"`
	// Changed lists the deliveries that would change for their recipient,
	// newest report first.
	Changed []Change `json:"changed"`
}

// Change is one delivery of a report (a recipient on a channel) that
// the proposed rules change for its recipient.
type Change struct {
	ReportID   int64  `json:"report_id"`
	DocumentID string `json:"document_id"`
	// Recipient is the recipient's name (else address).
	Recipient string `json:"recipient"`
	// Before is the delivery under the rules in force, nil when they make none.
	Before *Outcome `json:"before"`
	// After is the delivery under the proposed rules, nil when they make none.
	After *Outcome `json:"after"`
}

// Outcome is a delivery as planned: where it goes, the status it would
// start in, and the rule that decided it with its fallback policy.
type Outcome struct {
	Channel correspondents.Channel `json:"channel"`
	Status  dispatch.Status        `json:"status"`
	Address string                 `json:"address,omitempty"`
	// DelayHours is the delay of a scheduled delivery: it would go out that
	// many hours after the report was received.
	DelayHours int                   `json:"delay_hours,omitempty"`
	Reason     correspondents.Reason `json:"reason"`
	Rule       string                `json:"rule"`
	Policy     dispatch.Policy       `json:"policy"`
}

// forRecipient is what of o makes a difference to the recipient: whether,
// where and when the delivery goes, and, for an email that may go, what
// happens when it fails or is not acknowledged. Which rule decided it, and
// the reason it gives a secretary, do not.
func (o Outcome) forRecipient() Outcome {
	o.Rule, o.Reason = "", ""
	if o.Channel != correspondents.ChannelMSSante || o.Status == dispatch.StatusCancelled {
		o.Policy = dispatch.Policy{}
	}
	return o
}

// DryRun plans the newest reports that have deliveries (reports, defaults to
// 50, at most 500) under the rules in force and under the rules of source,
// with the same resolver, and returns the deliveries that would change for
// their recipient: channel, initial status, address, delay or (for an
// email) fallback policy; a rule renamed or moved with the same effect
// changes none. Every report is
// planned with all its recipients as if it arrived now, so that a delay
// shows as scheduled. It writes nothing. Invalid rules are a *rules.Error.
func (s *Store) DryRun(ctx context.Context, source []byte, reports int) (DryRun, error) {
	proposed, err := rules.Parse(source)
	if err != nil {
		return DryRun{}, err
	}
	current, err := InForce(ctx, s.pool)
	if err != nil {
		return DryRun{}, err
	}
	if reports <= 0 {
		reports = DefaultDryRunReports
	}
	refs, err := recentResolvedReports(ctx, s.pool, min(reports, MaxDryRunReports))
	if err != nil {
		return DryRun{}, fmt.Errorf("dry run: %w", err)
	}
	out := DryRun{CurrentVersion: current.Version, ReportsChecked: len(refs), Changed: []Change{}}
	now := time.Now()
	for _, ref := range refs {
		plans, recipients, err := dispatch.Replan(ctx, s.pool, s.resolver, ref.ID, now, current, proposed)
		if err != nil {
			return DryRun{}, fmt.Errorf("dry run, report %d: %w", ref.ID, err)
		}
		out.Changed = append(out.Changed, comparePlans(ref, recipients, plans[0], plans[1])...)
	}
	return out, nil
}

// deliveryKey identifies a planned delivery: a recipient on a channel.
type deliveryKey struct {
	recipientID int64
	channel     correspondents.Channel
}

// comparePlans returns the deliveries of a report that two plans make
// differently for their recipient (see Outcome.forRecipient), in the order
// of its recipients.
func comparePlans(ref reportRef, recipients []dispatch.StoredRecipient, before, after []dispatch.PlannedDelivery) []Change {
	index := func(plan []dispatch.PlannedDelivery) map[deliveryKey]Outcome {
		m := map[deliveryKey]Outcome{}
		for _, p := range plan {
			k := deliveryKey{p.RecipientID, p.Channel}
			if _, dup := m[k]; dup { // as dispatch.InsertDelivery: one per recipient and channel
				continue
			}
			policy := p.Policy
			if policy.NoDSNHours == 0 { // the action of a deadline that is off does not matter
				policy.NoDSNAction = ""
			}
			if policy.UnreadHours == 0 {
				policy.UnreadAction = ""
			}
			o := Outcome{Channel: p.Channel, Status: p.Status, Address: p.Address, Reason: p.Reason,
				Rule: p.RuleName, Policy: policy}
			if p.ScheduledFor != nil {
				o.DelayHours = p.Rule.Action.DelayHours
			}
			m[k] = o
		}
		return m
	}
	b, a := index(before), index(after)
	var keys []deliveryKey
	seen := map[deliveryKey]bool{}
	for _, plan := range [][]dispatch.PlannedDelivery{before, after} {
		for _, p := range plan {
			if k := (deliveryKey{p.RecipientID, p.Channel}); !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	var changes []Change
	for _, r := range recipients {
		name := r.Name()
		if name == "" {
			name = r.Address
		}
		for _, k := range keys {
			if k.recipientID != r.ID {
				continue
			}
			ob, inBefore := b[k]
			oa, inAfter := a[k]
			if inBefore && inAfter && ob.forRecipient() == oa.forRecipient() {
				continue
			}
			c := Change{ReportID: ref.ID, DocumentID: ref.DocumentID, Recipient: name}
			if inBefore {
				c.Before = &ob
			}
			if inAfter {
				c.After = &oa
			}
			changes = append(changes, c)
		}
	}
	return changes
}
