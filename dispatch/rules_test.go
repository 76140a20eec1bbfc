package dispatch_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertest"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/rules"
)

// rulesBundle is a testBundle whose outbox directory is known.
type rulesBundle struct {
	*testBundle
	outbox string
}

// setupRules starts the workers with the outbox transport.
func setupRules(t *testing.T) *rulesBundle {
	t.Helper()
	dir := t.TempDir()
	outbox, err := mail.NewOutbox(dir)
	require.NoError(t, err)
	return &rulesBundle{testBundle: setup(t, outbox), outbox: dir}
}

// putRules puts the rules of the YAML source in force, as the CME's tools do.
func (b *rulesBundle) putRules(t *testing.T, source string) rules.Set {
	t.Helper()
	rs, err := b.env.Rules.Set(b.ctx, []byte(source), "test", "")
	require.NoError(t, err)
	return rs
}

// ruleDelivery is a delivery row with what the rules decided.
type ruleDelivery struct {
	Recipient    string
	Channel      correspondents.Channel
	Status       dispatch.Status
	Reason       correspondents.Reason
	Rule         string
	Version      int
	Policy       dispatch.Policy
	ScheduledFor *time.Time
	ID           int64
}

// waitResolved waits until the report is resolved and none of its
// deliveries is still queued, and returns its deliveries in recipient order.
func (b *rulesBundle) waitResolved(t *testing.T, reportID int64) []ruleDelivery {
	t.Helper()
	b.waitReport(t, reportID, "resolved, no delivery queued", func(v readmodel.ReportView) bool {
		return v.Status == dispatch.ReportResolved && !slices.ContainsFunc(v.Deliveries,
			func(d readmodel.DeliveryView) bool { return d.Status == dispatch.StatusQueued })
	})
	return b.ruleDeliveries(t, reportID)
}

func (b *rulesBundle) ruleDeliveries(t *testing.T, reportID int64) []ruleDelivery {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, `SELECT CASE WHEN d.channel = 'mssante' AND d.address <> '' THEN d.address
			ELSE d.recipient_name END, d.channel, d.status, d.reason, d.rule_name, d.rule_version, d.policy,
			d.scheduled_for, d.id
		FROM deliveries d JOIN recipients r ON r.id = d.recipient_id
		WHERE d.report_id = $1 ORDER BY r.position, d.channel`, reportID)
	require.NoError(t, err)
	defer rows.Close()
	var out []ruleDelivery
	for rows.Next() {
		var d ruleDelivery
		require.NoError(t, rows.Scan(&d.Recipient, &d.Channel, &d.Status, &d.Reason, &d.Rule, &d.Version, &d.Policy,
			&d.ScheduledFor, &d.ID))
		out = append(out, d)
	}
	require.NoError(t, rows.Err())
	return out
}

// ruleOutcome is what a test checks of a delivery.
type ruleOutcome struct {
	recipient string
	channel   correspondents.Channel
	status    dispatch.Status
	reason    correspondents.Reason
	rule      string
}

func outcomes(ds []ruleDelivery) []ruleOutcome {
	var out []ruleOutcome
	for _, d := range ds {
		out = append(out, ruleOutcome{d.Recipient, d.Channel, d.Status, d.Reason, d.Rule})
	}
	return out
}

func (b *rulesBundle) emails(t *testing.T) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(b.outbox, "*.eml"))
	require.NoError(t, err)
	return len(files)
}

const (
	claireName = "Claire DUPONT-DEMO"
	jeanName   = "Jean MARTIN"
	chMSS      = correspondents.ChannelMSSante
	chPaper    = correspondents.ChannelPaper
)

// TestRuleSendReview: send review holds every delivery for a secretary.
func TestRuleSendReview(t *testing.T) {
	t.Parallel()
	b := setupRules(t)
	b.putRules(t, "rules:\n  - name: Tout relu\n    action: {send: review}\n")

	ds := b.waitResolved(t, b.receive(t, testReport(t)).ReportID)
	require.Equal(t, []ruleOutcome{
		{claire, chMSS, dispatch.StatusReview, correspondents.ReasonDirectoryAddress, "Tout relu"},
		{claireName, chPaper, dispatch.StatusReview, correspondents.ReasonPaperCopy, "Tout relu"},
		{julie, chMSS, dispatch.StatusReview, correspondents.ReasonDPIAddress, "Tout relu"},
		{jeanName, chMSS, dispatch.StatusReview, correspondents.ReasonSeveralAddresses, "Tout relu"},
	}, outcomes(ds))
	for _, d := range ds {
		require.Equal(t, 1, d.Version)
	}
	rivertest.RequireNotInserted(b.ctx, t, b.driver(), dispatch.SendArgs{}, nil)
	require.Zero(t, b.emails(t))
}

// TestRuleSendDelay: send delay schedules the deliveries DelayHours after
// the report, with a release job at that time that sends them on.
func TestRuleSendDelay(t *testing.T) {
	t.Parallel()
	b := setupRules(t)
	b.putRules(t, "rules:\n  - name: Lettres différées\n    match: {document_codes: [11490-0]}\n    action: {send: delay, delay_hours: 2}\n")

	id := b.receive(t, testReport(t)).ReportID
	ds := b.waitResolved(t, id)
	require.Equal(t, []ruleOutcome{
		{claire, chMSS, dispatch.StatusScheduled, correspondents.ReasonDirectoryAddress, "Lettres différées"},
		{claireName, chPaper, dispatch.StatusScheduled, correspondents.ReasonPaperCopy, "Lettres différées"},
		{julie, chMSS, dispatch.StatusScheduled, correspondents.ReasonDPIAddress, "Lettres différées"},
		{jeanName, chMSS, dispatch.StatusReview, correspondents.ReasonSeveralAddresses, "Lettres différées"},
	}, outcomes(ds), "what the resolver cannot decide still waits in review")
	var receivedAt time.Time
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT received_at FROM reports WHERE id = $1", id).Scan(&receivedAt))
	for _, d := range ds[:3] {
		require.NotNil(t, d.ScheduledFor, d.Recipient)
		require.True(t, receivedAt.Add(2*time.Hour).Equal(*d.ScheduledFor), "%s: scheduled for %s", d.Recipient, d.ScheduledFor)
		jobs := b.deliveryJobs(t, dispatch.ReleaseArgs{}.Kind(), d.ID)
		require.Len(t, jobs, 1, d.Recipient)
		require.Equal(t, rivertype.JobStateScheduled, jobs[0].State)
		require.WithinDuration(t, *d.ScheduledFor, jobs[0].ScheduledAt, time.Millisecond, "the release job runs when the delay ends")
	}
	require.Nil(t, ds[3].ScheduledFor)
	require.Zero(t, b.emails(t))

	// The delay ends: the release worker sends the emails and the paper copy waits to be printed.
	b.releaseNow(t, dispatch.ReleaseArgs{}.Kind())
	require.Eventually(t, func() bool {
		got := outcomes(b.ruleDeliveries(t, id))
		return got[0].status == dispatch.StatusSent && got[1].status == dispatch.StatusPaperPending &&
			got[2].status == dispatch.StatusSent && got[3].status == dispatch.StatusReview
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, 2, b.emails(t))
}

// TestRulePatientNever: patient never cancels the patient's delivery, whatever the flags.
func TestRulePatientNever(t *testing.T) {
	t.Parallel()
	b := setupRules(t)
	b.putRules(t, "rules:\n  - name: Pas au patient\n    match: {recipient_kinds: [patient]}\n    action: {patient: never}\n")

	r := testReport(t)
	r.Patient.INSQualified = true
	r.Flags = dispatch.Flags{Present: true, ToProfessionals: true, ToPatient: true}
	ds := b.waitResolved(t, b.receive(t, r).ReportID)
	require.Len(t, ds, 5)
	patient := ds[4]
	require.Equal(t, ruleOutcome{"Marie DUPONT", chMSS, dispatch.StatusCancelled, dispatch.ReasonRuleNoPatient, "Pas au patient"},
		outcomes(ds)[4])
	require.Equal(t, 1, patient.Version)
	for _, d := range ds[:4] {
		require.Equal(t, rules.Default.Name, d.Rule, "the professionals fall to the default rule")
	}
	require.Equal(t, 2, b.emails(t), "Claire and Julie, not the patient")
}

// TestRulePaperAlways: paper always adds a paper copy for a recipient who
// ticked dématérialisation.
func TestRulePaperAlways(t *testing.T) {
	t.Parallel()
	b := setupRules(t)
	b.putRules(t, "rules:\n  - name: Papier toujours\n    action: {paper: always}\n")

	ds := b.waitResolved(t, b.receive(t, testReport(t)).ReportID)
	require.Equal(t, []ruleOutcome{
		{claire, chMSS, dispatch.StatusSent, correspondents.ReasonDirectoryAddress, "Papier toujours"},
		{claireName, chPaper, dispatch.StatusPaperPending, correspondents.ReasonPaperCopy, "Papier toujours"},
		{julie, chMSS, dispatch.StatusSent, correspondents.ReasonDPIAddress, "Papier toujours"},
		{"Julie ROUX", chPaper, dispatch.StatusPaperPending, correspondents.ReasonPaperCopy, "Papier toujours"},
		{jeanName, chMSS, dispatch.StatusReview, correspondents.ReasonSeveralAddresses, "Papier toujours"},
	}, outcomes(ds), "Julie is dématérialisée and still gets paper")
}

// TestRulePaperNever: paper never drops the paper copies and sends to
// review a recipient who would get paper only.
func TestRulePaperNever(t *testing.T) {
	t.Parallel()
	b := setupRules(t)
	b.putRules(t, "rules:\n  - name: Jamais de papier\n    match: {document_codes: [11490-0]}\n    action: {paper: never}\n")

	r := testReport(t)
	// Marc PETIT's only address is outside the trust space: paper only, by default.
	r.Recipients = append(r.Recipients, dispatch.Recipient{Role: "RCT", Kind: dispatch.KindProfessional,
		NationalID: "899900000006", RPPS: "99900000006", Family: "PETIT", Given: "Marc"})
	ds := b.waitResolved(t, b.receive(t, r).ReportID)
	require.Equal(t, []ruleOutcome{
		{claire, chMSS, dispatch.StatusSent, correspondents.ReasonDirectoryAddress, "Jamais de papier"},
		{julie, chMSS, dispatch.StatusSent, correspondents.ReasonDPIAddress, "Jamais de papier"},
		{jeanName, chMSS, dispatch.StatusReview, correspondents.ReasonSeveralAddresses, "Jamais de papier"},
		{"Marc PETIT", chPaper, dispatch.StatusReview, correspondents.ReasonUntrustedAddress, "Jamais de papier"},
	}, outcomes(ds), "no paper copy for Claire, Marc left to a secretary")

	// Another document type falls to the default rule: Marc on paper.
	other := reportOf(t, "imagerie")
	other.Document.Code = "18748-4"
	other.Recipients = r.Recipients[3:]
	ds = b.waitResolved(t, b.receive(t, other).ReportID)
	require.Equal(t, []ruleOutcome{
		{"Marc PETIT", chPaper, dispatch.StatusPaperPending, correspondents.ReasonUntrustedAddress, rules.Default.Name},
	}, outcomes(ds))
}

// TestRuleAddressMismatchReview: address_mismatch review holds an address
// the DPI gave but the directory does not know for the person.
func TestRuleAddressMismatchReview(t *testing.T) {
	t.Parallel()
	b := setupRules(t)
	b.putRules(t, "rules:\n  - name: Adresses vérifiées\n    action: {address_mismatch: review}\n")

	r := testReport(t)
	r.Recipients[1].Address = "julie.cabinet@medecin-demo.mssante.fr"
	ds := b.waitResolved(t, b.receive(t, r).ReportID)
	require.Equal(t, []ruleOutcome{
		{claire, chMSS, dispatch.StatusSent, correspondents.ReasonDirectoryAddress, "Adresses vérifiées"},
		{claireName, chPaper, dispatch.StatusPaperPending, correspondents.ReasonPaperCopy, "Adresses vérifiées"},
		{"julie.cabinet@medecin-demo.mssante.fr", chMSS, dispatch.StatusReview, correspondents.ReasonDPIAddressMismatch, "Adresses vérifiées"},
		{jeanName, chMSS, dispatch.StatusReview, correspondents.ReasonSeveralAddresses, "Adresses vérifiées"},
	}, outcomes(ds))

	// Under the default rule the DPI's address is used.
	b.putRules(t, "rules:\n  - name: défaut\n")
	r2 := reportOf(t, "default")
	r2.Recipients = []dispatch.Recipient{r.Recipients[1]}
	ds = b.waitResolved(t, b.receive(t, r2).ReportID)
	require.Equal(t, []ruleOutcome{
		{"julie.cabinet@medecin-demo.mssante.fr", chMSS, dispatch.StatusSent, correspondents.ReasonDPIAddressMismatch, "défaut"},
	}, outcomes(ds))
	require.Equal(t, 2, ds[0].Version)
}

// TestRuleMatch: each criterion of a match, the first matching rule wins,
// and the rule's name and version are kept with each delivery.
func TestRuleMatch(t *testing.T) {
	t.Parallel()
	b := setupRules(t)
	rs := b.putRules(t, `rules:
  - name: par auteur
    match: {authors: ["99900000010"]}
    action: {send: review}
  - name: par service
    match: {services: [psy]}
    action: {send: review}
  - name: par confidentialité
    match: {confidentiality: [V]}
    action: {send: review}
  - name: par destinataire
    match: {recipient_kinds: [organisation]}
    action: {send: review}
  - name: par document
    match: {document_codes: [11490-0]}
    action: {send: review}
  - name: reste
`)
	organisation := dispatch.Recipient{Role: "RCT", Kind: dispatch.KindOrganisation, FINESS: "999000025", Organisation: "CLINIQUE DES LILAS DEMO"}
	tests := []struct {
		name   string
		change func(*dispatch.Report)
		// rules are the rules of the deliveries to Julie and to the clinic.
		rules [2]string
	}{
		{"document-code", func(*dispatch.Report) {}, [2]string{"par document", "par destinataire"}},
		{"other-document", func(r *dispatch.Report) { r.Document.Code = "11502-2" }, [2]string{"reste", "par destinataire"}},
		{"service-case", func(r *dispatch.Report) { r.Service = "PSY" }, [2]string{"par service", "par service"}},
		{"author-first", func(r *dispatch.Report) {
			r.Service = "PSY"
			r.Author = dispatch.Recipient{Role: "SB", Kind: dispatch.KindProfessional, NationalID: "899900000010", RPPS: "99900000010", Family: "DEMO"}
		}, [2]string{"par auteur", "par auteur"}},
		{"confidentiality", func(r *dispatch.Report) { r.Document.Confidentiality = "V" }, [2]string{"par confidentialité", "par confidentialité"}},
	}
	for _, tt := range tests {
		r := reportOf(t, tt.name)
		r.Recipients = []dispatch.Recipient{r.Recipients[1], organisation}
		tt.change(&r)
		ds := b.waitResolved(t, b.receive(t, r).ReportID)
		require.Len(t, ds, 2, tt.name)
		require.Equal(t, julie, ds[0].Recipient)
		var got [2]string
		for i, d := range ds {
			require.Equal(t, rs.Version, d.Version, tt.name)
			got[i] = d.Rule
		}
		require.Equal(t, tt.rules, got, tt.name)
	}
}

// TestRulePolicy: the fallback policy of the deciding rule is kept with each delivery.
func TestRulePolicy(t *testing.T) {
	t.Parallel()
	b := setupRules(t)
	b.putRules(t, `rules:
  - name: Lettre suivie
    match: {document_codes: [11490-0], recipient_kinds: [professional]}
    action:
      on_failure: worklist
      no_dsn_hours: 24
      unread_hours: 72
      unread_action: paper
`)
	r := testReport(t)
	r.Recipients = r.Recipients[1:2]
	r.Flags = dispatch.Flags{Present: true, ToProfessionals: true, ReadAck: true}
	ds := b.waitResolved(t, b.receive(t, r).ReportID)
	require.Len(t, ds, 1)
	require.Equal(t, dispatch.Policy{OnFailure: rules.FallbackWorklist, NoDSNHours: 24, NoDSNAction: rules.FallbackWorklist,
		UnreadHours: 72, UnreadAction: rules.FallbackPaper}, ds[0].Policy)
	var raw []byte
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT policy FROM deliveries WHERE id = $1", ds[0].ID).Scan(&raw))
	require.JSONEq(t, `{"on_failure":"worklist","no_dsn_hours":24,"no_dsn_action":"worklist","unread_hours":72,"unread_action":"paper"}`, string(raw))

	// The email sent, its deadlines come from the policy: the DSN one, then,
	// once that one is swept, the read one.
	require.Equal(t, dispatch.StatusSent, ds[0].Status)
	sentAt, due := b.env.AckDue(t, ds[0].ID)
	require.NotNil(t, due)
	require.Equal(t, sentAt.Add(24*time.Hour).UTC(), due.UTC())
	b.env.PassTime(t, 25*time.Hour, ds[0].ID)
	b.env.Sweep(t)
	sentAt, due = b.env.AckDue(t, ds[0].ID)
	require.NotNil(t, due)
	require.Equal(t, sentAt.Add(72*time.Hour).UTC(), due.UTC())
}

// TestRulesVocabulary keeps the words of the rules equal to those of the
// directory that applies them: a rule's paper policy goes to the resolver
// as written, and its recipient kinds are the recipients' kinds.
func TestRulesVocabulary(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{correspondents.PaperDirectory, correspondents.PaperAlways, correspondents.PaperNever},
		[]string{rules.PaperDirectory, rules.PaperAlways, rules.PaperNever})
	require.Equal(t, []string{correspondents.KindProfessional, correspondents.KindOrganisation, correspondents.KindPatient},
		rules.RecipientKinds)
}
