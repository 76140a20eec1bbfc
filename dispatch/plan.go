package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/rules"
)

// Reasons of the deliveries the dispatch decides itself, besides the
// resolver's (correspondents.Reason*).
const (
	// ReasonNotForProfessionals is the reason of a delivery cancelled because
	// the DPI's flags exclude professionals.
	ReasonNotForProfessionals correspondents.Reason = "flags_no_professionals"
	// ReasonServed is the reason of a replacement or deletion sent to an
	// address that received the previous version of the document.
	ReasonServed correspondents.Reason = "previously_served"
	// ReasonRuleNoPatient is the reason of a delivery to the patient cancelled
	// by a CME rule (patient: never).
	ReasonRuleNoPatient correspondents.Reason = "rule_no_patient"
)

// Resolver decides the routes of listed recipients: of each of rcs, reading
// the directories once for all (a *correspondents.Resolver).
type Resolver interface {
	Resolve(ctx context.Context, rc correspondents.Recipient) ([]correspondents.Route, error)
	ResolveAll(ctx context.Context, rcs []correspondents.Recipient) ([][]correspondents.Route, error)
}

// Policy is what a delivery does when it fails or is not acknowledged in
// time: the fallback part of the rule that decided it, kept with the
// delivery so that a later change of the rules does not change it.
type Policy struct {
	OnFailure    string `json:"on_failure"`
	NoDSNHours   int    `json:"no_dsn_hours,omitempty"`
	NoDSNAction  string `json:"no_dsn_action,omitempty"`
	UnreadHours  int    `json:"unread_hours,omitempty"`
	UnreadAction string `json:"unread_action,omitempty"`
}

// policyOf is the fallback policy of a.
func policyOf(a rules.Action) Policy {
	return Policy{OnFailure: a.OnFailure, NoDSNHours: a.NoDSNHours, NoDSNAction: a.NoDSNAction,
		UnreadHours: a.UnreadHours, UnreadAction: a.UnreadAction}
}

// reportFacts is what planning needs of a report.
type reportFacts struct {
	ReceivedAt      time.Time
	DocumentCode    string
	Service         string
	AuthorRPPS      string
	Confidentiality string
	Flags           Flags
	Patient         Patient
}

// PlannedDelivery is a delivery decided for one route of a recipient.
type PlannedDelivery struct {
	NewDelivery
	// Rule is the rule that decided it.
	Rule rules.Rule
}

// planReport decides the deliveries of the recipients of a report under the
// rules rs: it skips the author and, unless useFallbacks, the correspondents
// listed outside PRT RCT; it resolves each recipient with the paper policy
// of its rule and applies the rule's send mode to each route. It writes
// nothing, so that a dry run of other rules can call it too (Replan).
func planReport(ctx context.Context, resolver Resolver, rs rules.Set, rf reportFacts, recipients []StoredRecipient, useFallbacks bool) ([]PlannedDelivery, error) {
	// Each recipient's rule and routes, in order: those the directories
	// decide are resolved together, after this pass.
	type planned struct {
		r      StoredRecipient
		rule   rules.Rule
		routes []correspondents.Route
		fixed  Status // the status of routes decided here, "" for the resolved ones
	}
	var steps []planned
	var listed []correspondents.Recipient
	var resolvedAt []int
	for _, r := range recipients {
		if r.Role == RoleSender || (isFallbackRole(r.Role) && !useFallbacks) {
			continue
		}
		p := planned{r: r, rule: rs.Decide(rules.Facts{DocumentCode: rf.DocumentCode, Service: rf.Service, AuthorRPPS: rf.AuthorRPPS,
			RecipientKind: r.Kind, Confidentiality: rf.Confidentiality})}
		switch {
		case r.Kind != KindPatient && !rf.Flags.SendsToProfessionals():
			p.routes, p.fixed = []correspondents.Route{{Channel: correspondents.ChannelMSSante, Name: r.Name(), Reason: ReasonNotForProfessionals,
				Text: "Le DPI a demandé de ne pas envoyer ce document aux professionnels (DESTMSSANTEPS=N)."}}, StatusCancelled
		case r.Kind == KindPatient && p.rule.Action.Patient == rules.PatientNever:
			p.routes, p.fixed = []correspondents.Route{{Channel: correspondents.ChannelMSSante, Name: r.Name(), Reason: ReasonRuleNoPatient,
				Text: fmt.Sprintf("La règle « %s » n'envoie pas ce document au patient.", p.rule.Name)}}, StatusCancelled
		case r.Role == RoleServed:
			// Told of the new version or the deletion where they got the old one.
			p.routes = []correspondents.Route{{Channel: correspondents.ChannelMSSante, Address: r.Address, Name: r.Name(),
				Reason: ReasonServed, Text: fmt.Sprintf("A reçu la version précédente du document à cette adresse (%s).", r.Address)}}
		default:
			rc := correspondents.Recipient{Kind: r.Kind, NationalID: r.NationalID, FINESS: r.FINESS, Name: r.Name(),
				Address: r.Address, PostalAddress: r.PostalAddress, Paper: p.rule.Action.Paper}
			if r.Kind == KindPatient {
				rc.INS, rc.INSQualified, rc.PostalAddress = rf.Patient.INS, rf.Patient.INSQualified, rf.Patient.Address
			}
			listed, resolvedAt = append(listed, rc), append(resolvedAt, len(steps))
		}
		steps = append(steps, p)
	}
	if len(listed) > 0 {
		routes, err := resolver.ResolveAll(ctx, listed)
		if err != nil {
			return nil, err
		}
		for i, at := range resolvedAt {
			steps[at].routes = routes[i]
		}
	}
	var plan []PlannedDelivery
	for _, p := range steps {
		for _, route := range p.routes {
			status := p.fixed
			if status == "" {
				status = initialStatus(p.rule, route, rf.ReceivedAt)
			}
			d := NewDelivery{RecipientID: p.r.ID, Channel: route.Channel, Status: status, Address: route.Address,
				Name: route.Name, PostalAddress: route.PostalAddress, Reason: route.Reason, ReasonText: route.Text,
				RuleName: p.rule.Name, RuleVersion: rs.Version, Policy: policyOf(p.rule.Action), Choices: route.Choices}
			if status == StatusScheduled {
				t := rf.ReceivedAt.Add(time.Duration(p.rule.Action.DelayHours) * time.Hour)
				d.ScheduledFor = &t
			}
			if held := heldText(p.rule, rs.Version, route, status, d.ScheduledFor); held != "" {
				d.ReasonText = held + " " + d.ReasonText
			}
			plan = append(plan, PlannedDelivery{NewDelivery: d, Rule: p.rule})
		}
	}
	return plan, nil
}

// heldText says why a delivery the resolver could send waits: the rule
// (in its version) holds it, and what the rule asks; "" when no rule holds it.
func heldText(rule rules.Rule, version int, route correspondents.Route, status Status, until *time.Time) string {
	switch {
	case status == StatusScheduled && until != nil:
		return fmt.Sprintf("Retenu par la règle « %s » (version %d) : envoi différé de %d h, jusqu'au %s.",
			rule.Name, version, rule.Action.DelayHours, until.In(Zone).Format("02/01/2006 à 15:04"))
	case status != StatusReview || route.Review:
		return ""
	case rule.Action.Send == rules.SendReview:
		return fmt.Sprintf("Retenu par la règle « %s » (version %d) : le secrétariat vérifie avant l'envoi.", rule.Name, version)
	}
	return fmt.Sprintf("Retenu par la règle « %s » (version %d) : l'adresse du DPI diffère de l'annuaire, à vérifier.", rule.Name, version)
}

// initialStatus is the status a route starts in under rule: review when the
// resolver could not decide or the rule wants a secretary, scheduled while
// the rule's delay runs, else queued (MSSanté) or paper_pending.
func initialStatus(rule rules.Rule, route correspondents.Route, receivedAt time.Time) Status {
	a := rule.Action
	switch {
	case route.Review, a.Send == rules.SendReview,
		route.Reason == correspondents.ReasonDPIAddressMismatch && a.AddressMismatch == rules.MismatchReview:
		return StatusReview
	case a.Send == rules.SendDelay && time.Now().Before(receivedAt.Add(time.Duration(a.DelayHours)*time.Hour)):
		return StatusScheduled
	case route.Channel == correspondents.ChannelMSSante:
		return StatusQueued
	}
	return StatusPaperPending
}

// Replan decides again, writing nothing, the deliveries of all the
// recipients of report reportID under each of the rule sets, as if the
// report was received at receivedAt; the correspondents listed outside PRT
// RCT count when they were sent to. It returns them, a plan per set, with
// the report's recipients in their order, read once: what a dry run of
// proposed rules compares (package dispatch/ruleset).
func Replan(ctx context.Context, q DB, resolver Resolver, reportID int64, receivedAt time.Time, sets ...rules.Set) ([][]PlannedDelivery, []StoredRecipient, error) {
	rf, recipients, usedFallbacks, err := reportRecipients(ctx, q, reportID)
	if err != nil {
		return nil, nil, err
	}
	rf.ReceivedAt = receivedAt
	plans := make([][]PlannedDelivery, len(sets))
	for i, rs := range sets {
		if plans[i], err = planReport(ctx, resolver, rs, rf, recipients, usedFallbacks); err != nil {
			return nil, nil, err
		}
	}
	return plans, recipients, nil
}

// ReportPlan is the deliveries the rules decide for the recipients of a
// report that have none yet (PlanReport); Apply creates them.
type ReportPlan struct {
	reportID   int64
	rules      rules.Set
	deliveries []PlannedDelivery
}

// PlanReport decides, writing nothing, the deliveries of the recipients of
// report reportID that have none yet, under the rules rs (those in force:
// package dispatch/ruleset's InForce), resolving each recipient with
// resolver. fallbackRecipients sends to the correspondents listed outside
// PRT RCT (ROL, PV1-8, OBR-28, PD1-4) when the report lists no PRT RCT.
func PlanReport(ctx context.Context, q DB, resolver Resolver, rs rules.Set, reportID int64, fallbackRecipients bool) (ReportPlan, error) {
	rf, recipients, err := unresolvedRecipients(ctx, q, reportID)
	if err != nil {
		return ReportPlan{}, err
	}
	useFallbacks := fallbackRecipients && !hasRole(recipients, RoleResultCopiesTo)
	plan, err := planReport(ctx, resolver, rs, rf, recipients, useFallbacks)
	if err != nil {
		return ReportPlan{}, fmt.Errorf("resolve report %d: %w", reportID, err)
	}
	return ReportPlan{reportID: reportID, rules: rs, deliveries: plan}, nil
}

// Apply creates in tx the planned deliveries (an MSSanté one with a new
// Message-ID in domain), enqueues with ins the jobs that take each new one
// further (its send when queued, its release when scheduled), and marks the
// report resolved. It returns the number of jobs enqueued.
func (p ReportPlan) Apply(ctx context.Context, tx pgx.Tx, ins JobInserter, domain string) (jobs int, err error) {
	var params []river.InsertManyParams
	for _, planned := range p.deliveries {
		d := planned.NewDelivery
		if d.Channel == correspondents.ChannelMSSante {
			d.MessageID = NewMessageID(domain)
		}
		id, created, err := InsertDelivery(ctx, tx, p.reportID, d, RuleActor(planned.Rule))
		if err != nil {
			return 0, err
		}
		if created {
			params = append(params, followUp(id, d)...)
		}
	}
	if err := InsertJobs(ctx, tx, ins, params); err != nil {
		return 0, err
	}
	if err := setReportStatus(ctx, tx, p.reportID, ReportResolved); err != nil {
		return 0, err
	}
	return len(params), nil
}

// Deliveries is the number of deliveries planned.
func (p ReportPlan) Deliveries() int { return len(p.deliveries) }

// RulesVersion is the version of the rules that decided the deliveries.
func (p ReportPlan) RulesVersion() int { return p.rules.Version }

func hasRole(rs []StoredRecipient, role string) bool {
	for _, r := range rs {
		if r.Role == role {
			return true
		}
	}
	return false
}

// isFallbackRole reports whether role is a correspondent listed outside PRT RCT.
func isFallbackRole(role string) bool {
	switch role {
	case RoleGP, RoleReferring, RoleAttending, RoleAdmitting, RoleConsulting, RoleResultsCopy, RolePrimaryCare:
		return true
	}
	return false
}
