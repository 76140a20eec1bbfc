package quarantine_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/quarantine"
	"github.com/mssdispatch/mssdispatch/internal/dispatchtest"
)

// The shared helpers (internal/dispatchtest), under short names.
var (
	testReport = dispatchtest.Report
	inbound    = dispatchtest.Inbound
	respond    = dispatchtest.Respond
)

// testBundle is the domain running for a test (its workers sending to an
// outbox), and its quarantine.
type testBundle struct {
	ctx  context.Context
	pool *pgxpool.Pool
	svc  *dispatch.Service
	desk *quarantine.Desk
}

// setup starts the domain on a fresh database, and its quarantine.
func setup(t *testing.T) *testBundle {
	t.Helper()
	outbox, err := mail.NewOutbox(t.TempDir())
	require.NoError(t, err)
	e := dispatchtest.Start(t, outbox, nil)
	return &testBundle{ctx: e.Ctx, pool: e.Pool, svc: e.Service, desk: quarantine.NewDesk(e.Pool, e.Service)}
}

// TestQuarantine checks that the quarantine lists the refused messages
// newest first, page by page, with their reason and never their bytes, and
// that Raw gives the bytes, empty once purged.
func TestQuarantine(t *testing.T) {
	t.Parallel()
	b := setup(t)

	msgs, err := b.desk.List(b.ctx, quarantine.Filter{})
	require.NoError(t, err)
	require.Empty(t, msgs)

	for i := range 5 {
		in := inbound(fmt.Sprintf("MSG-Q-%d", i), fmt.Sprintf("content %d", i))
		_, err := b.svc.Reject(b.ctx, in, []byte(fmt.Sprintf("MSH|^~\\&|DPI|CH|||PID|DUPONT %d", i)),
			dispatch.Refusal{Reason: fmt.Sprintf("PID-3 missing (%d)", i), Patient: fmt.Sprintf("PATIENT %d", i), Document: "Lettre de sortie"},
			[]byte("ACK AR"))
		require.NoError(t, err)
	}
	// A refusal without a key (an unreadable message) is kept too.
	_, err = b.svc.Reject(b.ctx, dispatch.Inbound{Kind: "json", Source: "api"}, []byte(`{"patient": "DUPONT"}`), dispatch.Refusal{Reason: "body is not JSON"}, nil)
	require.NoError(t, err)

	page, err := b.desk.List(b.ctx, quarantine.Filter{Limit: 4})
	require.NoError(t, err)
	require.Len(t, page, 4)
	require.Equal(t, "json", page[0].Kind)
	require.Equal(t, "api", page[0].Source)
	require.Empty(t, page[0].ControlID)
	require.Empty(t, page[0].SendingApplication)
	require.Equal(t, "body is not JSON", page[0].Reason)
	for i, m := range page[1:] {
		n := 4 - i
		require.Equal(t, fmt.Sprintf("MSG-Q-%d", n), m.ControlID)
		require.Equal(t, fmt.Sprintf("PID-3 missing (%d)", n), m.Reason)
		require.Equal(t, fmt.Sprintf("PATIENT %d", n), m.Patient, "whom it is about, as the intake read it")
		require.Equal(t, "Lettre de sortie", m.Document)
		require.Equal(t, "DPI", m.SendingApplication, "MSH-3")
		require.Equal(t, "CH", m.SendingFacility, "MSH-4")
		require.Equal(t, quarantine.Open, m.Status)
		require.True(t, m.Reprocessable())
		require.True(t, m.Dismissable())
		require.Equal(t, "hl7", m.Kind)
		require.Equal(t, "mllp", m.Source)
		require.Equal(t, int64(len(fmt.Sprintf("MSH|^~\\&|DPI|CH|||PID|DUPONT %d", n))), m.Size)
		require.False(t, m.Purged)
		require.False(t, m.ReceivedAt.IsZero())
		require.Greater(t, page[i].ID, m.ID, "newest first")
	}
	require.NotContains(t, fmt.Sprintf("%+v", page), "DUPONT", "the list never carries the bytes")

	rest, err := b.desk.List(b.ctx, quarantine.Filter{BeforeID: page[3].ID, Limit: 4})
	require.NoError(t, err)
	require.Len(t, rest, 2)
	require.Equal(t, "MSG-Q-1", rest[0].ControlID)
	require.Equal(t, "MSG-Q-0", rest[1].ControlID)
	last, err := b.desk.List(b.ctx, quarantine.Filter{BeforeID: rest[1].ID})
	require.NoError(t, err)
	require.Empty(t, last)

	raw, err := b.desk.Raw(b.ctx, "test", rest[0].ID)
	require.NoError(t, err)
	require.Equal(t, "MSH|^~\\&|DPI|CH|||PID|DUPONT 1", string(raw))

	_, err = b.pool.Exec(b.ctx, `UPDATE quarantine SET raw = ''::bytea, purged_at = now() WHERE id = $1`, rest[0].ID)
	require.NoError(t, err)
	raw, err = b.desk.Raw(b.ctx, "test", rest[0].ID)
	require.NoError(t, err)
	require.NotNil(t, raw)
	require.Empty(t, raw)
	rest, err = b.desk.List(b.ctx, quarantine.Filter{BeforeID: page[3].ID, Limit: 1})
	require.NoError(t, err)
	require.Len(t, rest, 1)
	require.True(t, rest[0].Purged)
	require.False(t, rest[0].Reprocessable(), "its bytes are gone")
	require.True(t, rest[0].Dismissable())
	require.Zero(t, rest[0].Size)
	require.Equal(t, "PID-3 missing (1)", rest[0].Reason, "the reason outlives the bytes")

	for _, id := range []int64{0, -1, page[0].ID + 1000} {
		_, err = b.desk.Raw(b.ctx, "test", id)
		require.ErrorIs(t, err, dispatch.ErrNotFound, id)
	}
}

// TestQuarantineScope: a refused message's reason, which repeats its values
// (patient data), is listed only to the viewers of its service (issue #19);
// the others get what it is and where it failed.
func TestQuarantineScope(t *testing.T) {
	t.Parallel()
	b := setup(t)
	refuse := func(controlID, service string) {
		in := inbound(controlID, controlID)
		in.Service = service
		_, err := b.svc.Reject(b.ctx, in, []byte("MSH|^~\\&|DPI|CH|||PID|DUPONT"), dispatch.Refusal{
			Reason: "l'INS de PID-3, 280017512345678, n'est pas celui du CDA", Code: 102, Location: "PID^1^3",
			Patient: "DUPONT Marie · IPP 123", Document: "Lettre de sortie du 12/03/2024"}, []byte("ACK AE"))
		require.NoError(t, err)
	}
	refuse("MSG-CARDIO", "CARDIO")
	refuse("MSG-PNEUMO", "PNEUMO")
	refuse("MSG-UNKNOWN", "")

	reasons := func(services []string) map[string]string {
		msgs, err := b.desk.List(b.ctx, quarantine.Filter{Services: services})
		require.NoError(t, err)
		got := map[string]string{}
		for _, m := range msgs {
			require.Equal(t, "ORU^R01", m.MessageType)
			require.Equal(t, 102, m.ErrorCode)
			require.Equal(t, "PID^1^3", m.ErrorLocation)
			require.Equal(t, m.Reason == "", m.Restricted, m.ControlID)
			require.Equal(t, m.Patient == "", m.Restricted, "the patient is withheld too")
			require.Equal(t, m.Document == "", m.Restricted, "and the document")
			require.Equal(t, !m.Restricted, m.Dismissable(), "only those who see it whole act on it")
			require.Equal(t, !m.Restricted, m.Reprocessable())
			require.Equal(t, "DPI", m.SendingApplication, "where it came from is no patient data")
			got[m.ControlID+" "+m.Service] = m.Reason
		}
		return got
	}
	const reason = "l'INS de PID-3, 280017512345678, n'est pas celui du CDA"
	require.Equal(t, map[string]string{"MSG-CARDIO CARDIO": reason, "MSG-PNEUMO PNEUMO": reason, "MSG-UNKNOWN ": reason},
		reasons(nil), "every service")
	require.Equal(t, map[string]string{"MSG-CARDIO CARDIO": reason, "MSG-PNEUMO PNEUMO": "", "MSG-UNKNOWN ": ""},
		reasons([]string{"CARDIO"}), "a secretary of cardiology: an unknown service is not hers")
	require.Equal(t, map[string]string{"MSG-CARDIO CARDIO": "", "MSG-PNEUMO PNEUMO": "", "MSG-UNKNOWN ": ""},
		reasons([]string{}), "no service")
}

// TestQuarantineDismiss: a user who sees a refused message whole may set it
// aside, saying why; it stays listed, dismissed, with who did it and why,
// and the audit log records it in the same transaction. Before issue #20,
// a quarantined message could only be looked at.
func TestQuarantineDismiss(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := inbound("MSG-CARDIO", "cardio")
	in.Service = "CARDIO"
	_, err := b.svc.Reject(b.ctx, in, []byte("MSH|^~\\&|DPI|CH"), dispatch.Refusal{Reason: "PID-3 vide", Code: 101,
		Location: "PID^1^3", Patient: "DUPONT Marie"}, []byte("ACK AE"))
	require.NoError(t, err)
	open, err := b.desk.List(b.ctx, quarantine.Filter{Status: quarantine.Open})
	require.NoError(t, err)
	require.Len(t, open, 1)
	id := open[0].ID

	err = b.desk.Dismiss(b.ctx, id, "pneumo", []string{"PNEUMO"}, "doublon")
	require.ErrorIs(t, err, dispatch.ErrNotFound, "a message of another service")
	var invalid *dispatch.InvalidError
	require.ErrorAs(t, b.desk.Dismiss(b.ctx, id, "cardio", []string{"CARDIO"}, "  "), &invalid, "a reason is required")
	require.Equal(t, "why", invalid.Field)
	require.ErrorIs(t, b.desk.Dismiss(b.ctx, id+1000, "cardio", nil, "doublon"), dispatch.ErrNotFound)

	// The audit log unavailable, nothing changes.
	_, err = b.pool.Exec(b.ctx, `CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$;
		CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit()`)
	require.NoError(t, err)
	require.ErrorContains(t, b.desk.Dismiss(b.ctx, id, "cardio", []string{"CARDIO"}, "renvoyé corrigé"), "audit log unavailable")
	open, err = b.desk.List(b.ctx, quarantine.Filter{Status: quarantine.Open})
	require.NoError(t, err)
	require.Len(t, open, 1, "still open")
	_, err = b.pool.Exec(b.ctx, `DROP TRIGGER refuse_audit ON audit_log`)
	require.NoError(t, err)

	require.NoError(t, b.desk.Dismiss(b.ctx, id, "cardio", []string{"CARDIO"}, " renvoyé corrigé par le DPI "))
	open, err = b.desk.List(b.ctx, quarantine.Filter{Status: quarantine.Open})
	require.NoError(t, err)
	require.Empty(t, open)
	all, err := b.desk.List(b.ctx, quarantine.Filter{Services: []string{"CARDIO"}})
	require.NoError(t, err)
	require.Len(t, all, 1)
	m := all[0]
	require.Equal(t, quarantine.Dismissed, m.Status)
	require.Equal(t, "cardio", m.ActedBy)
	require.NotNil(t, m.ActedAt)
	require.Equal(t, "renvoyé corrigé par le DPI", m.Note)
	require.Equal(t, "PID-3 vide", m.Reason, "the reason stays")
	require.False(t, m.Dismissable())
	require.False(t, m.Reprocessable())
	other, err := b.desk.List(b.ctx, quarantine.Filter{Services: []string{"PNEUMO"}})
	require.NoError(t, err)
	require.Empty(t, other[0].Note, "why, which may name the patient, is withheld as the reason is")

	err = b.desk.Dismiss(b.ctx, id, "root", nil, "encore")
	require.ErrorIs(t, err, quarantine.ErrHandled)
	_, err = b.desk.Requeue(b.ctx, id, "root", nil)
	require.ErrorIs(t, err, quarantine.ErrHandled)

	records, err := audit.NewLog(b.pool).Read(b.ctx, audit.Filter{Action: "quarantine_dismissed"})
	require.NoError(t, err)
	require.Len(t, records, 1)
	require.Equal(t, audit.Entry{Actor: "cardio", Action: "quarantine_dismissed", Object: fmt.Sprintf("quarantine:%d", id),
		Detail: "renvoyé corrigé par le DPI"}, records[0].Entry)
}

// TestRequeue: a message is taken up again only by a user who sees it
// whole, while open, and when its bytes can go through the intake again;
// accepted, its row names the report, the key it was refused with is
// accepted from then on, and the audit log says so, all in one
// transaction (the HL7 intake's side is in hl7intake's TestReprocess).
func TestRequeue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	refuse := func(in dispatch.Inbound, why dispatch.Refusal) int64 {
		t.Helper()
		in.Service = "CARDIO"
		_, err := b.svc.Reject(b.ctx, in, []byte("MSH|^~\\&|DPI|CH"), why, []byte("ACK AE"))
		require.NoError(t, err)
		msgs, err := b.desk.List(b.ctx, quarantine.Filter{Limit: 1})
		require.NoError(t, err)
		return msgs[0].ID
	}
	api := refuse(dispatch.Inbound{Kind: "json", Source: "api", ControlID: "KEY-1", Fingerprint: []byte("x")}, dispatch.Refusal{Reason: "x"})
	partial := refuse(dispatch.Inbound{Kind: "hl7", Source: "mllp"}, dispatch.Refusal{Reason: "trop grand", Partial: true})
	in := inbound("MSG-1", "content")
	id := refuse(in, dispatch.Refusal{Reason: "le document X est inconnu", Code: 101})

	for _, c := range []struct {
		id       int64
		services []string
		want     error
	}{
		{api, nil, quarantine.ErrNotReprocessable},
		{partial, nil, quarantine.ErrNotReprocessable},
		{id, []string{"PNEUMO"}, dispatch.ErrNotFound},
		{id + 1000, nil, dispatch.ErrNotFound},
	} {
		_, err := b.desk.Requeue(b.ctx, c.id, "alice", c.services)
		require.ErrorIs(t, err, c.want, c.id)
	}

	// The audit log unavailable, nothing is stored.
	q, err := b.desk.Requeue(b.ctx, id, "alice", []string{"CARDIO"})
	require.NoError(t, err)
	require.Equal(t, "mllp", q.Source)
	require.Equal(t, "MSH|^~\\&|DPI|CH", string(q.Raw))
	_, found, err := q.Previous(b.ctx, in)
	require.NoError(t, err)
	require.False(t, found, "its own refusal is not the answer")
	_, err = b.pool.Exec(b.ctx, `CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$;
		CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit()`)
	require.NoError(t, err)
	_, err = q.Receive(b.ctx, in, testReport(t), respond)
	require.ErrorContains(t, err, "audit log unavailable")
	_, err = q.Outcome()
	require.ErrorContains(t, err, "audit log unavailable")
	var reports int
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM reports`).Scan(&reports))
	require.Zero(t, reports)
	_, err = b.pool.Exec(b.ctx, `DROP TRIGGER refuse_audit ON audit_log`)
	require.NoError(t, err)

	q, err = b.desk.Requeue(b.ctx, id, "alice", []string{"CARDIO"})
	require.NoError(t, err)
	rc, err := q.Receive(b.ctx, in, testReport(t), respond)
	require.NoError(t, err)
	got, err := q.Outcome()
	require.NoError(t, err)
	require.Equal(t, quarantine.Reprocessed{ReportID: rc.ReportID}, got)
	msgs, err := b.desk.List(b.ctx, quarantine.Filter{Limit: 1})
	require.NoError(t, err)
	require.Equal(t, quarantine.Accepted, msgs[0].Status)
	require.Equal(t, rc.ReportID, msgs[0].ReportID)
	require.Equal(t, "alice", msgs[0].ActedBy)
	prev, found, err := b.svc.Previous(b.ctx, in)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, dispatch.Answer{Response: fmt.Appendf(nil, "ACK %d", rc.ReportID), Accepted: true}, prev,
		"a retransmission now gets the acceptance")
	records, err := audit.NewLog(b.pool).Read(b.ctx, audit.Filter{Action: "quarantine_reprocessed"})
	require.NoError(t, err)
	require.Len(t, records, 1)
	require.Equal(t, audit.Entry{Actor: "alice", Action: "quarantine_reprocessed", Object: fmt.Sprintf("quarantine:%d", id),
		ReportID: rc.ReportID, Detail: fmt.Sprintf("accepté : compte rendu n° %d", rc.ReportID)}, records[0].Entry)

	// Once accepted, it is not taken up again, even by one who had it in hand.
	_, err = b.desk.Requeue(b.ctx, id, "bob", nil)
	require.ErrorIs(t, err, quarantine.ErrHandled)
	_, err = q.Reject(b.ctx, in, nil, dispatch.Refusal{Reason: "late"}, nil)
	require.ErrorIs(t, err, quarantine.ErrHandled)
}

// TestQuarantineRemedy: who can make a refused message go through, by its
// kind and error code.
func TestQuarantineRemedy(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		m    quarantine.Message
		want quarantine.Remedy
	}{
		{quarantine.Message{Kind: "hl7", ErrorCode: 101}, quarantine.RemedyContent},
		{quarantine.Message{Kind: "hl7", ErrorCode: 102}, quarantine.RemedyContent},
		{quarantine.Message{Kind: "hl7", ErrorCode: 100}, quarantine.RemedyContent},
		{quarantine.Message{Kind: "hl7", ErrorCode: 207}, quarantine.RemedyContent},
		{quarantine.Message{Kind: "hl7", ErrorCode: 200}, quarantine.RemedyInterface},
		{quarantine.Message{Kind: "hl7", ErrorCode: 203}, quarantine.RemedyInterface},
		{quarantine.Message{Kind: "hl7", ErrorCode: 205}, quarantine.RemedyInterface},
		{quarantine.Message{Kind: "hl7", ErrorCode: 207, Partial: true}, quarantine.RemedyInterface},
		{quarantine.Message{Kind: "json"}, quarantine.RemedyCaller},
	} {
		require.Equal(t, c.want, c.m.Remedy(), "%+v", c.m)
	}
}
