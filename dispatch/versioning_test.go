package dispatch_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

type line struct {
	recipient string
	status    dispatch.Status
	reason    correspondents.Reason
}

func lines(v readmodel.ReportView) []line {
	var out []line
	for _, d := range v.Deliveries {
		out = append(out, line{d.Recipient, d.Status, d.Reason})
	}
	return out
}

func TestReplace(t *testing.T) {
	t.Parallel()
	b, outboxDir := setupOutbox(t)

	original := testReport(t)
	first := b.receive(t, original)
	b.waitDeliveries(t, first.ReportID, 4)

	// Version 2 lists only Claire; Julie received version 1 and gets it too.
	v2 := testReport(t)
	v2.Action = dispatch.ActionReplace
	v2.Document.ParentID = original.Document.ID
	setDocumentID(t, &v2, original.Document.ID+"-v2")
	v2.Recipients = v2.Recipients[:1]
	second := b.receive(t, v2)

	got := lines(b.waitDeliveries(t, second.ReportID, 3))
	require.Equal(t, []line{
		{"claire.dupont-demo@medecin-demo.mssante.fr", "sent", "directory_address"},
		{"Claire DUPONT-DEMO", "paper_pending", "paper_copy"},
		{"julie.roux@medecin-demo.mssante.fr", "sent", dispatch.ReasonServed},
	}, got)
	v1, err := b.views.Report(b.ctx, "test", first.ReportID)
	require.NoError(t, err)
	require.Equal(t, line{"Jean MARTIN", "superseded", "several_addresses"}, lines(v1)[3], "what was still pending is superseded")
	require.Equal(t, dispatch.StatusSent, lines(v1)[0].status, "what left stays as it was")

	files, err := filepath.Glob(filepath.Join(outboxDir, "*.eml"))
	require.NoError(t, err)
	require.Len(t, files, 4)
}

func TestDelete(t *testing.T) {
	t.Parallel()
	b, _ := setupOutbox(t)

	original := testReport(t)
	first := b.receive(t, original)
	b.waitDeliveries(t, first.ReportID, 4)

	del := testReport(t)
	del.Action = dispatch.ActionDelete
	del.Document.CDA, del.Document.PDF, del.Recipients = nil, nil, nil
	second := b.receive(t, del)

	got := lines(b.waitDeliveries(t, second.ReportID, 2))
	require.Equal(t, []line{
		{"claire.dupont-demo@medecin-demo.mssante.fr", "sent", dispatch.ReasonServed},
		{"julie.roux@medecin-demo.mssante.fr", "sent", dispatch.ReasonServed},
	}, got, "those who received the document are told it is withdrawn")
	v1, err := b.views.Report(b.ctx, "test", first.ReportID)
	require.NoError(t, err)
	require.Equal(t, dispatch.StatusCancelled, lines(v1)[3].status)

	// The deletion sent again (a new MSH-10) is the same deletion: accepted,
	// nothing more is sent.
	again := testReport(t)
	again.Action = dispatch.ActionDelete
	again.Document.CDA, again.Document.PDF = nil, nil
	resent, err := b.svc.Receive(b.ctx, inbound("MSG-D3", "x"), again, respond)
	require.NoError(t, err)
	require.Equal(t, second.ReportID, resent.ReportID)
	require.Len(t, lines(b.waitDeliveries(t, second.ReportID, 2)), 2)

	// The document is gone: replacing it, or sending it as new, is refused.
	for _, action := range []dispatch.Action{dispatch.ActionReplace, dispatch.ActionNew} {
		r := testReport(t)
		r.Action = action
		want := "a été supprimé : un nouveau document a un nouvel identifiant"
		if action == dispatch.ActionReplace {
			r.Document.ParentID = r.Document.ID
			setDocumentID(t, &r, r.Document.ID+"-v2")
			want = "est inconnu de ce service ou a été supprimé"
		}
		_, err = b.svc.Receive(b.ctx, inbound("MSG-D4-"+string(action), string(action)), r, respond)
		var invalid *dispatch.InvalidError
		require.ErrorAs(t, err, &invalid, action)
		require.Contains(t, invalid.Msg, want)
	}
}

func TestPatientOnly(t *testing.T) {
	t.Parallel()
	b, _ := setupOutbox(t)

	r := testReport(t)
	r.Flags = dispatch.Flags{Present: true, ToPatient: true}
	r.Patient.INSQualified = true
	r.Recipients = append(r.Recipients[:1], dispatch.Recipient{Role: dispatch.RolePatient, Kind: dispatch.KindPatient,
		Family: "DUPONT", Given: "Marie", Address: r.Patient.INS + "@patient.mssante.fr"})
	rc := b.receive(t, r)
	require.Equal(t, []line{
		{"Claire DUPONT-DEMO", "cancelled", dispatch.ReasonNotForProfessionals},
		{"280017512345678@patient.mssante.fr", "sent", "patient_mailbox"},
	}, lines(b.waitDeliveries(t, rc.ReportID, 2)))
}

func TestReject(t *testing.T) {
	t.Parallel()
	b, _ := setupOutbox(t)

	in := inbound("MSG-BAD", "bad content")
	answer, err := b.svc.Reject(b.ctx, in, []byte("raw message"), dispatch.Refusal{Reason: "OBX-5 is not base64"}, []byte("AE 1"))
	require.NoError(t, err)
	require.Equal(t, dispatch.Answer{Response: []byte("AE 1")}, answer)

	answer, err = b.svc.Reject(b.ctx, in, []byte("raw message"), dispatch.Refusal{Reason: "OBX-5 is not base64"}, []byte("AE 2"))
	require.NoError(t, err)
	require.Equal(t, "AE 1", string(answer.Response), "a retransmitted refusal gets the first response")
	prev, found, err := b.svc.Previous(b.ctx, in)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, dispatch.Answer{Response: []byte("AE 1")}, prev)

	// Unparseable input has no key: kept, not remembered.
	answer, err = b.svc.Reject(b.ctx, dispatch.Inbound{Kind: "hl7", Source: "mllp"}, []byte("garbage"), dispatch.Refusal{Reason: "not HL7"}, []byte("AR"))
	require.NoError(t, err)
	require.Equal(t, "AR", string(answer.Response))

	var quarantined, attempts int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT count(*) FROM quarantine").Scan(&quarantined))
	require.Equal(t, 2, quarantined, "one row per distinct refused message")
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT attempts FROM inbound_messages WHERE message_control_id = 'MSG-BAD'").Scan(&attempts))
	require.Equal(t, 3, attempts)
}

// TestResend sends a report's document again with a new key, as a DPI's
// operator resending it or an interface engine restarted would: nobody gets
// it twice, a recipient the first message did not list gets it, and the
// same id with other bytes is refused.
func TestResend(t *testing.T) {
	t.Parallel()
	b, outboxDir := setupOutbox(t)
	first := b.receive(t, testReport(t))
	b.waitDeliveries(t, first.ReportID, 4)
	emails := func() int {
		files, err := filepath.Glob(filepath.Join(outboxDir, "*.eml"))
		require.NoError(t, err)
		return len(files)
	}
	require.Equal(t, 2, emails())

	again, err := b.svc.Receive(b.ctx, inbound("MSG-AGAIN", "again"), testReport(t), respond)
	require.NoError(t, err)
	require.Equal(t, first.ReportID, again.ReportID, "the same report")
	require.Equal(t, "ACK 1", string(again.Response))

	more := testReport(t)
	more.Recipients = append(more.Recipients, dispatch.Recipient{Role: dispatch.RoleResultCopiesTo, Kind: dispatch.KindProfessional,
		Family: "NOUVEAU", Given: "Luc", Address: "luc.nouveau@medecin-demo.mssante.fr"})
	added, err := b.svc.Receive(b.ctx, inbound("MSG-MORE", "more"), more, respond)
	require.NoError(t, err)
	require.Equal(t, first.ReportID, added.ReportID)
	v := b.waitDeliveries(t, first.ReportID, 5)
	require.Contains(t, lines(v), line{"luc.nouveau@medecin-demo.mssante.fr", "sent", correspondents.ReasonDPIAddress})
	require.Equal(t, 3, emails(), "only the new recipient got it")

	detail, err := b.views.ReportDetail(b.ctx, "test", first.ReportID)
	require.NoError(t, err)
	var resent []string
	for _, e := range detail.Timeline {
		if e.Event == dispatch.ReportEventResent {
			resent = append(resent, e.Detail)
		}
	}
	require.Len(t, resent, 2)
	require.Contains(t, resent[0], "MSG-AGAIN")
	require.Contains(t, resent[1], "1 nouveau(x) destinataire(s)")

	other := testReport(t)
	other.Document.CDA = bytes.Replace(other.Document.CDA, []byte("</title>"), []byte("</title><!-- autre -->"), 1)
	_, err = b.svc.Receive(b.ctx, inbound("MSG-OTHER", "other"), other, respond)
	var invalid *dispatch.InvalidError
	require.ErrorAs(t, err, &invalid)
	require.Contains(t, invalid.Msg, "déjà été reçu avec un autre contenu")
	require.Equal(t, 3, emails())
}

// TestPatientMailbox checks that the patient is sent to only at the mailbox
// of their qualified INS: an address the DPI gave that is not it, or an
// identity not qualified, leaves the patient's delivery for review, the
// rest of the report going on, with a warning in the report's history.
func TestPatientMailbox(t *testing.T) {
	t.Parallel()
	b, outboxDir := setupOutbox(t)
	for name, tt := range map[string]struct {
		address   string
		qualified bool
		want      line
	}{
		"another address": {"27707280017512345678@patient.mssante.fr", true,
			line{"280017512345678@patient.mssante.fr", "review", correspondents.ReasonPatientAddressMismatch}},
		"not qualified": {"", false, line{"Marie DUPONT", "review", correspondents.ReasonPatientNotQualified}},
		"its own":       {"280017512345678@patient.mssante.fr", true, line{"280017512345678@patient.mssante.fr", "sent", correspondents.ReasonPatientMailbox}},
	} {
		r := testReport(t)
		setDocumentID(t, &r, r.Document.ID+"-"+strings.ReplaceAll(name, " ", "-"))
		r.Flags = dispatch.Flags{Present: true, ToProfessionals: true, ToPatient: true}
		r.Patient.INSQualified = tt.qualified
		r.Recipients = append(r.Recipients[1:2], dispatch.Recipient{Role: dispatch.RolePatient, Kind: dispatch.KindPatient,
			Family: "DUPONT", Given: "Marie", Address: tt.address})
		rc := b.receive(t, r)
		v := b.waitDeliveries(t, rc.ReportID, 2)
		require.Equal(t, []line{{"julie.roux@medecin-demo.mssante.fr", "sent", correspondents.ReasonDPIAddress}, tt.want}, lines(v), name)
		detail, err := b.views.ReportDetail(b.ctx, "test", rc.ReportID)
		require.NoError(t, err)
		warned := slices.ContainsFunc(detail.Timeline, func(e readmodel.TimelineEvent) bool { return e.Event == dispatch.ReportEventWarning })
		require.Equal(t, tt.want.status == "review", warned, "%s: a warning in the history", name)
	}
	emails, err := os.ReadDir(outboxDir)
	require.NoError(t, err)
	for _, e := range emails {
		raw, err := os.ReadFile(filepath.Join(outboxDir, e.Name()))
		require.NoError(t, err)
		require.NotContains(t, string(raw), "27707280017512345678", "nothing to the DPI's other address")
	}
}
