package ruleset_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/ruleset"
	"github.com/mssdispatch/mssdispatch/internal/dispatchtest"
	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/rules"
)

// rulesBundle is the domain running (package internal/dispatchtest), its
// emails written to an outbox, and its rules.
type rulesBundle struct {
	env   *dispatchtest.Env
	ctx   context.Context
	pool  *pgxpool.Pool
	store *ruleset.Store
}

// setupRules starts the workers with the outbox transport.
func setupRules(t *testing.T) *rulesBundle {
	t.Helper()
	outbox, err := mail.NewOutbox(t.TempDir())
	require.NoError(t, err)
	e := dispatchtest.Start(t, outbox, nil)
	return &rulesBundle{env: e, ctx: e.Ctx, pool: e.Pool, store: e.Rules}
}

// putRules puts the rules of the YAML source in force, as the CME's tools do.
func (b *rulesBundle) putRules(t *testing.T, source string) rules.Set {
	t.Helper()
	rs, err := b.store.Set(b.ctx, []byte(source), "test", "")
	require.NoError(t, err)
	return rs
}

// receive stores r as a message keyed by its action and document.
func (b *rulesBundle) receive(t *testing.T, r dispatch.Report) dispatch.Receipt {
	t.Helper()
	return b.env.Receive(t, r)
}

// waitResolved waits until the report is resolved and none of its
// deliveries is still queued.
func (b *rulesBundle) waitResolved(t *testing.T, reportID int64) {
	t.Helper()
	b.env.WaitReport(t, reportID, "resolved, no delivery queued", func(v readmodel.ReportView) bool {
		return v.Status == dispatch.ReportResolved && !slices.ContainsFunc(v.Deliveries,
			func(d readmodel.DeliveryView) bool { return d.Status == dispatch.StatusQueued })
	})
}

// testReport is a report listing Claire (by RPPS), Julie (a trusted
// address from the DPI) and Jean (known twice to the directory).
var testReport = dispatchtest.Report

// reportOf is testReport as another document, its id suffixed with name.
func reportOf(t *testing.T, name string) dispatch.Report {
	t.Helper()
	r := testReport(t)
	dispatchtest.SetDocumentID(t, &r, r.Document.ID+"-"+name)
	return r
}

const (
	claireName = "Claire DUPONT-DEMO"
	jeanName   = "Jean MARTIN"
	chPaper    = correspondents.ChannelPaper
)

func TestRulesVersions(t *testing.T) {
	t.Parallel()
	b := setupRules(t)

	rs, err := b.store.InForce(b.ctx)
	require.NoError(t, err)
	require.Equal(t, rules.DefaultSet, rs, "version 0 before the CME writes any")
	v0, source, err := b.store.Version(b.ctx, 0)
	require.NoError(t, err)
	require.Equal(t, rules.DefaultSet, v0)
	parsed, err := rules.Parse(source)
	require.NoError(t, err)
	require.Equal(t, rules.Default.Name, parsed.Rules[0].Name)
	history, err := b.store.History(b.ctx, 0)
	require.NoError(t, err)
	require.Empty(t, history)

	src1 := "# première version\ncomment: from the file\nrules:\n  - name: psy\n    match: {services: [PSY]}\n    action: {send: review}\n"
	before := time.Now()
	v1, err := b.store.Set(b.ctx, []byte(src1), "alice", "CME du 12 mars")
	require.NoError(t, err)
	require.Equal(t, 1, v1.Version)
	require.Equal(t, "alice", v1.CreatedBy)
	require.Equal(t, "CME du 12 mars", v1.Comment, "the comment given replaces the file's")
	require.WithinDuration(t, before, v1.CreatedAt, time.Minute)
	require.Equal(t, []string{"psy", rules.Default.Name}, ruleNames(v1))

	src2 := "comment: from the file\nrules:\n  - name: tout relu\n    action: {send: review}\n"
	v2, err := b.store.Set(b.ctx, []byte(src2), "bob", "")
	require.NoError(t, err)
	require.Equal(t, 2, v2.Version)
	require.Equal(t, "from the file", v2.Comment)

	_, err = b.store.Set(b.ctx, []byte("rules:\n  - name: x\n    action: {send: never}\n"), "bob", "")
	var re *rules.Error
	require.ErrorAs(t, err, &re)
	require.Equal(t, "action.send", re.Field)
	_, err = b.store.Set(b.ctx, []byte(src2), " ", "")
	require.ErrorContains(t, err, "actor is required")

	current, err := b.store.InForce(b.ctx)
	require.NoError(t, err)
	require.Equal(t, v2.Version, current.Version, "invalid rules store nothing")
	require.Equal(t, v2.Rules, current.Rules)
	require.Equal(t, "bob", current.CreatedBy)
	require.True(t, v2.CreatedAt.Equal(current.CreatedAt))

	got1, source1, err := b.store.Version(b.ctx, 1)
	require.NoError(t, err)
	require.Equal(t, src1, string(source1), "the source as written, comments kept")
	require.Equal(t, v1.Rules, got1.Rules)
	require.Equal(t, "CME du 12 mars", got1.Comment)
	for _, v := range []int{3, -1} {
		_, _, err = b.store.Version(b.ctx, v)
		require.ErrorIs(t, err, dispatch.ErrNotFound, v)
	}

	history, err = b.store.History(b.ctx, 0)
	require.NoError(t, err)
	require.Len(t, history, 2)
	require.Equal(t, []int{2, 1}, []int{history[0].Version, history[1].Version}, "newest first")
	require.Equal(t, []string{"bob", "alice"}, []string{history[0].CreatedBy, history[1].CreatedBy})
	require.Equal(t, v1.Rules, history[1].Rules)
	history, err = b.store.History(b.ctx, 1)
	require.NoError(t, err)
	require.Len(t, history, 1)
	require.Equal(t, 2, history[0].Version)
}

func ruleNames(rs rules.Set) []string {
	var names []string
	for _, r := range rs.Rules {
		names = append(names, r.Name)
	}
	return names
}

func TestSetRulesConcurrent(t *testing.T) {
	t.Parallel()
	b := setupRules(t)
	const n = 12
	versions := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rs, err := b.store.Set(b.ctx, fmt.Appendf(nil, "rules:\n  - name: r%d\n", i), fmt.Sprintf("admin%d", i), "")
			if err == nil {
				versions[i] = rs.Version
			}
		})
	}
	wg.Wait()
	slices.Sort(versions)
	want := make([]int, n)
	for i := range want {
		want[i] = i + 1
	}
	require.Equal(t, want, versions, "distinct versions, none lost")
}

// dbSnapshot is every delivery row and the number of events and jobs.
func dbSnapshot(t *testing.T, b *rulesBundle) string {
	t.Helper()
	var deliveries, events, jobs string
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT coalesce(json_agg(d ORDER BY d.id)::text, '') FROM deliveries d`).Scan(&deliveries))
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*)::text || ' ' || coalesce(max(id), 0)::text FROM delivery_events`).Scan(&events))
	jobs = fmt.Sprint(len(b.env.Jobs(t, "")))
	return deliveries + "\n" + events + "\n" + jobs
}

func TestDryRun(t *testing.T) {
	t.Parallel()
	b := setupRules(t)
	store := b.store

	_, err := store.DryRun(b.ctx, []byte("rules:\n  - name: x\n"), 0)
	require.NoError(t, err, "no report yet")

	first := b.receive(t, testReport(t)).ReportID
	b.waitResolved(t, first)
	second := b.receive(t, reportOf(t, "2")).ReportID
	b.waitResolved(t, second)
	docID := testReport(t).Document.ID
	snapshot := dbSnapshot(t, b)

	// The rules in force, exported: nothing changes.
	current, source, err := store.Version(b.ctx, 0)
	require.NoError(t, err)
	dr, err := store.DryRun(b.ctx, source, 0)
	require.NoError(t, err)
	require.Equal(t, ruleset.DryRun{CurrentVersion: current.Version, ReportsChecked: 2, Changed: []ruleset.Change{}}, dr)

	// Paper never, under the default rule's name: only Claire's paper copies go.
	dr, err = store.DryRun(b.ctx, []byte("rules:\n  - name: défaut\n    action: {paper: never}\n"), 0)
	require.NoError(t, err)
	require.Equal(t, 2, dr.ReportsChecked)
	require.Len(t, dr.Changed, 2)
	require.Equal(t, second, dr.Changed[0].ReportID, "newest report first")
	require.Equal(t, docID+"-2", dr.Changed[0].DocumentID)
	c := dr.Changed[1]
	require.Equal(t, first, c.ReportID)
	require.Equal(t, docID, c.DocumentID)
	require.Equal(t, claireName, c.Recipient)
	require.NotNil(t, c.Before)
	require.Equal(t, ruleset.Outcome{Channel: chPaper, Status: dispatch.StatusPaperPending, Reason: correspondents.ReasonPaperCopy,
		Rule: rules.Default.Name, Policy: dispatch.Policy{OnFailure: rules.FallbackPaper}}, *c.Before)
	require.Nil(t, c.After)

	// Everything reviewed, one report: every delivery of the newest changes.
	dr, err = store.DryRun(b.ctx, []byte("rules:\n  - name: Tout relu\n    action: {send: review, paper: always}\n"), 1)
	require.NoError(t, err)
	require.Equal(t, 1, dr.ReportsChecked)
	type change struct {
		recipient     string
		before, after string // channel/status/rule
	}
	show := func(o *ruleset.Outcome) string {
		if o == nil {
			return "-"
		}
		return string(o.Channel) + "/" + string(o.Status) + "/" + o.Rule
	}
	var got []change
	for _, c := range dr.Changed {
		require.Equal(t, second, c.ReportID)
		got = append(got, change{c.Recipient, show(c.Before), show(c.After)})
	}
	require.Equal(t, []change{
		{claireName, "mssante/queued/défaut", "mssante/review/Tout relu"},
		{claireName, "paper/paper_pending/défaut", "paper/review/Tout relu"},
		{"Julie ROUX", "mssante/queued/défaut", "mssante/review/Tout relu"},
		{"Julie ROUX", "-", "paper/review/Tout relu"},
	}, got, "Jean was in review already: another rule name is no change")

	// A delay shows as scheduled: the reports are planned as if they arrived now.
	dr, err = store.DryRun(b.ctx, []byte("rules:\n  - name: défaut\n    action: {send: delay, delay_hours: 1}\n"), 1)
	require.NoError(t, err)
	require.Len(t, dr.Changed, 3, "Jean stays in review")
	for _, c := range dr.Changed {
		require.Equal(t, dispatch.StatusScheduled, c.After.Status)
	}
	out, err := json.Marshal(dr.Changed[0])
	require.NoError(t, err)
	require.Contains(t, string(out), `"before":{"channel":"mssante","status":"queued","address":"claire.dupont-demo@medecin-demo.mssante.fr"`)

	_, err = store.DryRun(b.ctx, []byte("rules:\n  - name: x\n    action: {send: delay}\n"), 0)
	var re *rules.Error
	require.ErrorAs(t, err, &re)
	require.Equal(t, "action.delay_hours", re.Field)

	require.Equal(t, snapshot, dbSnapshot(t, b), "a dry run writes nothing")
}

// TestDryRunCountsWhatMattersToRecipients checks that a dry run lists only
// the deliveries that change for their recipient: not those a renamed or
// moved rule decides the same way, nor the fallback policy of a letter; but
// a delay that changes.
func TestDryRunCountsWhatMattersToRecipients(t *testing.T) {
	t.Parallel()
	b := setupRules(t)
	code := testReport(t).Document.Code
	b.putRules(t, `rules:
  - name: Compte rendu relu
    match: {document_codes: ["`+code+`"]}
    action: {send: review}
  - name: Psychiatrie relue
    match: {services: [PSY]}
    action: {send: review, patient: never}
`)
	b.waitResolved(t, b.receive(t, testReport(t)).ReportID)

	changes := func(source string) []string {
		t.Helper()
		dr, err := b.store.DryRun(b.ctx, []byte(source), 0)
		require.NoError(t, err)
		require.Equal(t, 1, dr.ReportsChecked)
		var out []string
		for _, c := range dr.Changed {
			out = append(out, fmt.Sprintf("%s %s %s→%s", c.Recipient, c.After.Channel, c.Before.Status, c.After.Status))
		}
		return out
	}
	require.Empty(t, changes(`rules:
  - name: Psychiatrie
    match: {services: [PSY]}
    action: {send: review, patient: never}
  - name: Ce type de document, relu
    match: {document_codes: ["`+code+`"]}
    action: {send: review, paper: directory}
`), "the rules renamed and swapped decide the same")

	// A delay that changes is a change, though the rule and the status are the same.
	b.putRules(t, "rules:\n  - name: Différé\n    action: {send: delay, delay_hours: 24}\n")
	dr, err := b.store.DryRun(b.ctx, []byte("rules:\n  - name: Différé\n    action: {send: delay, delay_hours: 48}\n"), 0)
	require.NoError(t, err)
	require.Len(t, dr.Changed, 3, "Claire's email and letter, Julie's email; Jean stays in review")
	for _, c := range dr.Changed {
		require.Equal(t, dispatch.StatusScheduled, c.Before.Status)
		require.Equal(t, 24, c.Before.DelayHours)
		require.Equal(t, 48, c.After.DelayHours)
	}

	// What an email does when it fails is a change; a letter has no such thing.
	require.Equal(t, []string{
		claireName + " mssante scheduled→scheduled",
		"Julie ROUX mssante scheduled→scheduled",
		jeanName + " mssante review→review",
	}, changes("rules:\n  - name: Différé\n    action: {send: delay, delay_hours: 24, on_failure: worklist}\n"))
}
