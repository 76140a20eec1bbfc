package hl7intake_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/hl7intake"
	"github.com/mssdispatch/mssdispatch/dispatch/quarantine"
	"github.com/mssdispatch/mssdispatch/hl7"
)

// replacement is the ORU sent with controlID that replaces the document of
// oru(t, n1) by its version 2 (testdata/n1-pdf-v2.xml), whose CDA edit may
// change.
func replacement(t *testing.T, controlID string, edit ...func(cda string) string) []byte {
	t.Helper()
	file := "testdata/n1-pdf-v2.xml"
	if len(edit) > 0 {
		doc, err := os.ReadFile(file)
		require.NoError(t, err)
		cda := string(doc)
		for _, e := range edit {
			cda = e(cda)
		}
		file = filepath.Join(t.TempDir(), "v2.xml")
		require.NoError(t, os.WriteFile(file, []byte(cda), 0o600))
	}
	return oru(t, file, replace("MSH", "|MSG0001|", "|"+controlID+"|"), replace("ORC", "ORC|NW", "ORC|RO"),
		replace("OBX|1|", "||||||F", "||||||C"))
}

// quarantined is the row of the quarantine kept for the message controlID.
type quarantined struct {
	id                                  int64
	status, reason, actedBy             string
	application, facility, patient, doc string
	reportID                            int64
}

func (b *testBundle) quarantined(t *testing.T, controlID string) quarantined {
	t.Helper()
	var q quarantined
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT id, status, reason, acted_by, sending_application, sending_facility,
			patient, document, coalesce(report_id, 0)
		FROM quarantine WHERE message_control_id = $1`, controlID).Scan(&q.id, &q.status, &q.reason, &q.actedBy,
		&q.application, &q.facility, &q.patient, &q.doc, &q.reportID))
	return q
}

// ackCode returns MSA-1 of the ACK raw.
func ackCode(t *testing.T, raw []byte) string {
	t.Helper()
	return parseACK(t, raw).Segment("MSA").Get(1)
}

// TestReprocess: a replacement that came before the document it replaces
// is refused and quarantined with where it came from, whom and what it is
// about; processed again by a secretary before the DPI sent the original,
// it is refused again; after, it is accepted as a report, its row names
// it, the DPI's retransmission gets the acceptance, and the audit log has
// each attempt. Before issue #20 the quarantine could only be looked at.
func TestReprocess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, "AE", ackCode(t, b.handler.ServeMLLP(b.ctx, replacement(t, "RPLC-1"))))
	q := b.quarantined(t, "RPLC-1")
	require.Equal(t, quarantined{id: q.id, status: "open", reason: q.reason, application: "DPI_TEST", facility: "CH_TEST",
		patient: "DUPONT Marie · né(e) le 15/01/1980 · IPP IPP0012345", doc: "Lettre de sortie du 12/03/2024"}, q)
	require.Contains(t, q.reason, "est inconnu de ce service")

	_, err := b.handler.Reprocess(b.ctx, q.id, "pneumo", []string{"PNEUMO"})
	require.ErrorIs(t, err, dispatch.ErrNotFound, "a message of a service the user does not see")

	got, err := b.handler.Reprocess(b.ctx, q.id, "alice", nil)
	require.NoError(t, err)
	require.Zero(t, got.ReportID, "the original is still unknown")
	require.Contains(t, got.Refusal.Reason, "est inconnu de ce service")
	require.Equal(t, "OBX^1^5", got.Refusal.Location)
	again := b.quarantined(t, "RPLC-1")
	require.Equal(t, "open", again.status)
	require.Equal(t, "alice", again.actedBy)
	require.Equal(t, 1, b.count(t, "quarantine"), "no second row")

	require.Equal(t, "AA", ackCode(t, b.handler.ServeMLLP(b.ctx, oru(t, n1, replace("MSH", "|MSG0001|", "|ORIG-1|")))))
	got, err = b.handler.Reprocess(b.ctx, q.id, "alice", nil)
	require.NoError(t, err)
	require.Positive(t, got.ReportID)
	require.Equal(t, 1, b.count(t, fmt.Sprintf("reports WHERE id = %d AND action = 'replace'", got.ReportID)))
	done := b.quarantined(t, "RPLC-1")
	require.Equal(t, "accepted", done.status)
	require.Equal(t, got.ReportID, done.reportID)

	ack := parseACK(t, b.handler.ServeMLLP(b.ctx, replacement(t, "RPLC-1")))
	require.Equal(t, "AA", ack.Segment("MSA").Get(1), "the DPI's retransmission gets the acceptance")
	require.Equal(t, 2, b.count(t, "reports"), "and stores nothing")

	_, err = b.handler.Reprocess(b.ctx, q.id, "alice", nil)
	require.ErrorIs(t, err, quarantine.ErrHandled)

	// Processing again is no message received: the DPI's three only.
	require.NoError(t, testutil.GatherAndCompare(b.metrics, strings.NewReader(`
# HELP mssdispatch_intake_messages_total HL7 messages received, by source (mllp, api) and ACK code (AA, AE, AR).
# TYPE mssdispatch_intake_messages_total counter
mssdispatch_intake_messages_total{ack="AA",source="api"} 0
mssdispatch_intake_messages_total{ack="AA",source="mllp"} 2
mssdispatch_intake_messages_total{ack="AE",source="api"} 0
mssdispatch_intake_messages_total{ack="AE",source="mllp"} 1
mssdispatch_intake_messages_total{ack="AR",source="api"} 0
mssdispatch_intake_messages_total{ack="AR",source="mllp"} 0
`), "mssdispatch_intake_messages_total"))
	require.Equal(t, []string{"accepté", "toujours refusé : erreur 101 OBX^1^5"}, b.auditDetails(t, "quarantine_reprocessed"))
	for _, data := range []string{"DUPONT", "Marie", "19800115", "IPP0012345", "280017512345678"} {
		require.NotContains(t, b.logs.String(), data)
	}
}

// auditDetails returns the details of the audit entries of action, newest
// first, without the report they name.
func (b *testBundle) auditDetails(t *testing.T, action string) []string {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, `SELECT split_part(detail, ' : compte', 1) FROM audit_log WHERE action = $1 ORDER BY id DESC`, action)
	require.NoError(t, err)
	details, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return details
}

// TestReprocessResent: the DPI sent the same replacement again under a new
// MSH-10 before a secretary processed the quarantined one again: that
// makes no second report, the row names the first.
func TestReprocessResent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, "AE", ackCode(t, b.handler.ServeMLLP(b.ctx, replacement(t, "RPLC-1"))))
	require.Equal(t, "AA", ackCode(t, b.handler.ServeMLLP(b.ctx, oru(t, n1, replace("MSH", "|MSG0001|", "|ORIG-1|")))))
	require.Equal(t, "AA", ackCode(t, b.handler.ServeMLLP(b.ctx, replacement(t, "RPLC-2"))))
	var first int64
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT id FROM reports WHERE action = 'replace'`).Scan(&first))

	got, err := b.handler.Reprocess(b.ctx, b.quarantined(t, "RPLC-1").id, "alice", nil)
	require.NoError(t, err)
	require.Equal(t, quarantine.Reprocessed{ReportID: first}, got)
	require.Equal(t, 1, b.count(t, "reports WHERE action = 'replace'"), "no duplicate")
	require.Equal(t, first, b.quarantined(t, "RPLC-1").reportID)
}

// TestReprocessRefusedAgain: processed again, a message gets the reason of
// now, not of then: the DPI sent a corrected version of the document
// meanwhile. A message refused because its MSH-10 served another one is
// refused again for it.
func TestReprocessRefusedAgain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, "AE", ackCode(t, b.handler.ServeMLLP(b.ctx, replacement(t, "RPLC-1"))))
	require.Equal(t, "AA", ackCode(t, b.handler.ServeMLLP(b.ctx, oru(t, n1, replace("MSH", "|MSG0001|", "|ORIG-1|")))))
	corrected := replacement(t, "RPLC-2", func(cda string) string {
		return strings.Replace(cda, "<title>Lettre de liaison de sortie</title>", "<title>Lettre de liaison de sortie corrigée</title>", 1)
	})
	require.Equal(t, "AA", ackCode(t, b.handler.ServeMLLP(b.ctx, corrected)))

	q := b.quarantined(t, "RPLC-1")
	_, err := b.handler.Reprocess(b.ctx, q.id, "alice", []string{""})
	require.ErrorIs(t, err, dispatch.ErrNotFound, "a message of no known service is for those who see every service")
	got, err := b.handler.Reprocess(b.ctx, q.id, "alice", nil)
	require.NoError(t, err)
	require.Zero(t, got.ReportID)
	require.Contains(t, got.Refusal.Reason, "a déjà été reçu avec un autre contenu")
	require.Equal(t, got.Refusal.Reason, b.quarantined(t, "RPLC-1").reason, "the row gives the new reason")
	require.Equal(t, "open", b.quarantined(t, "RPLC-1").status)

	reused := oru(t, n1, replace("MSH", "|MSG0001|", "|ORIG-1|"), replace("PID|", "DUPONT^Marie", "DUPONT^Marion"))
	ack := parseACK(t, b.handler.ServeMLLP(b.ctx, reused))
	require.Equal(t, "AE", ack.Segment("MSA").Get(1))
	require.Equal(t, "205", ack.Segment("ERR").Component(3, 1))
	var id int64
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT id FROM quarantine WHERE message_control_id = 'ORIG-1'`).Scan(&id))
	got, err = b.handler.Reprocess(b.ctx, id, "alice", nil)
	require.NoError(t, err)
	require.Equal(t, hl7.CodeDuplicateKey, got.Refusal.Code)
	require.Equal(t, 2, b.count(t, "reports"))
}

// TestReprocessable: what cannot go through the intake again is not tried:
// the head of a message over the size limit.
func TestReprocessable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	head := oru(t, n1, replace("MSH", "|MSG0001|", "|BIG-1|"))
	require.Equal(t, "AE", ackCode(t, b.handler.ServeMLLPTooLarge(b.ctx, head, 40<<20)))
	var id int64
	var partial bool
	var application, patient string
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT id, partial, sending_application, patient FROM quarantine`).Scan(
		&id, &partial, &application, &patient))
	require.True(t, partial)
	require.Equal(t, "DPI_TEST", application, "where it came from, read from its head")
	require.Contains(t, patient, "DUPONT Marie")
	_, err := b.handler.Reprocess(b.ctx, id, "alice", nil)
	require.ErrorIs(t, err, quarantine.ErrNotReprocessable)
}

// TestAbout: whom and what a message is about, for the quarantine, as far
// as it can be read.
func TestAbout(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, msg         string
		patient, document string
	}{
		{"ORU", "MSH|^~\\&|A|B|||||ORU^R01|1|P|2.5\rPID|1||280017512345678^^^X^INS~IPP9^^^X^PI||DUPONT^Marie^^^^^L||19800115\r" +
			"OBR|1|||11490-0^Lettre de sortie^LN|||20240312143000\rOBX|1|ED|11490-0^CR de sortie^LN||^text^XML^Base64^AA||||||F\r",
			"DUPONT Marie · né(e) le 15/01/1980 · IPP IPP9", "CR de sortie du 12/03/2024"},
		{"MDM, the legal name", "MSH|^~\\&|A|B|||||MDM^T02|1|P|2.6\rPID|1||IPP9^^^X^PI||MARTIN^Marie^^^^^D~DUPONT^Marie^^^^^L\r" +
			"TXA|1|11490-0^Lettre de sortie|TEXT|20240405100000\r", "DUPONT Marie · IPP IPP9", "Lettre de sortie du 05/04/2024"},
		{"codes only", "MSH|^~\\&|A|B|||||ORU^R01|1|P|2.5\rPID|1||IPP9^^^X^PI\rOBR|1|||11490-0\r", "IPP IPP9", "11490-0"},
		{"nothing", "MSH|^~\\&|A|B|||||ORU^R01|1|P|2.5\rPID|1||||||19800115\r", "", ""},
	} {
		msg, err := hl7.Parse([]byte(c.msg), hl7.ParseOptions{})
		require.NoError(t, err, c.name)
		require.Equal(t, c.patient, hl7intake.PatientOf(msg), c.name)
		require.Equal(t, c.document, hl7intake.DocumentOf(msg), c.name)
	}
}
