package hl7intake_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/hl7intake"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/quarantine"
	"github.com/mssdispatch/mssdispatch/dispatch/worker"
	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/queue"
)

var quiet = slog.New(slog.DiscardHandler)

type testBundle struct {
	ctx     context.Context
	pool    *pgxpool.Pool
	handler *hl7intake.Handler
	logs    *bytes.Buffer // the handler's and the service's
	metrics *prometheus.Registry
}

// setup returns a handler storing through a real dispatch.Service; jobs are
// enqueued but not worked.
func setup(t testing.TB) *testBundle {
	t.Helper()
	pool := pgtest.NewPool(t)
	outbox, err := mail.NewOutbox(t.TempDir())
	require.NoError(t, err)
	workers := river.NewWorkers()
	resolver := correspondents.NewResolver(correspondents.NewStore(pool))
	require.NoError(t, worker.AddWorkers(workers, worker.WorkerConfig{Pool: pool, Sender: "bal@ch-test.mssante.fr",
		Resolver: resolver, Transport: outbox}))
	client, err := queue.New(pool, queue.Config{Workers: workers, Logger: quiet})
	require.NoError(t, err)
	logs := &bytes.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := dispatch.NewService(dispatch.ServiceConfig{Pool: pool, Jobs: client, Logger: logger})
	require.NoError(t, err)
	metrics := prometheus.NewRegistry()
	h, err := hl7intake.New(hl7intake.Config{Receiver: svc, Quarantine: quarantine.NewDesk(pool, svc), Logger: logger, Registerer: metrics})
	require.NoError(t, err)
	return &testBundle{ctx: context.Background(), pool: pool, handler: h, logs: logs, metrics: metrics}
}

// oru returns testdata/oru_r01.hl7 carrying cdaFile, with segment ends \r,
// after applying edits to its lines.
func oru(t *testing.T, cdaFile string, edits ...func(lines []string) []string) []byte {
	t.Helper()
	tmpl, err := os.ReadFile("testdata/oru_r01.hl7")
	require.NoError(t, err)
	doc, err := os.ReadFile(cdaFile)
	require.NoError(t, err)
	text := strings.Replace(string(tmpl), "{{CDA}}", base64.StdEncoding.EncodeToString(doc), 1)
	lines := strings.Split(strings.TrimSpace(text), "\n")
	for _, edit := range edits {
		lines = edit(lines)
	}
	return []byte(strings.Join(lines, "\r") + "\r")
}

// replace substitutes old by new in the line starting with prefix.
func replace(prefix, old, new string) func([]string) []string {
	return func(lines []string) []string {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				lines[i] = strings.Replace(l, old, new, 1)
			}
		}
		return lines
	}
}

func drop(prefix string) func([]string) []string {
	return func(lines []string) []string {
		var out []string
		for _, l := range lines {
			if !strings.HasPrefix(l, prefix) {
				out = append(out, l)
			}
		}
		return out
	}
}

const n1 = "../../cda/testdata/n1-pdf.xml"

func parseACK(t *testing.T, raw []byte) *hl7.Message {
	t.Helper()
	ack, err := hl7.Parse(raw, hl7.ParseOptions{})
	require.NoError(t, err, "the ACK is valid HL7: %q", raw)
	return ack
}

// TestRefusalLogs: a refusal is logged with its codes, never its text,
// which repeats the message's values (issue #19: an INS mismatch put both
// INS in a WARN line); the quarantine keeps the codes and the service too,
// which says who may read the text.
func TestRefusalLogs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	msg := oru(t, n1, replace("PID|", "280017512345678^", "299127512300012^"), replace("PV1|", "PV1|1|O", "PV1|1|O|CARDIO^^^CH"))
	ack := parseACK(t, b.handler.ServeMLLP(b.ctx, msg))
	require.Equal(t, "AE", ack.Segment("MSA").Get(1))
	require.Contains(t, ack.Segment("ERR").Get(8), "299127512300012", "the DPI is told what is wrong")
	var q struct {
		service, messageType, location, reason string
		code                                   int
	}
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT service, message_type, error_code, error_location, reason FROM quarantine`).Scan(
		&q.service, &q.messageType, &q.code, &q.location, &q.reason))
	require.Equal(t, "CARDIO", q.service)
	require.Equal(t, "ORU^R01", q.messageType)
	require.Equal(t, hl7.CodeDataType, q.code)
	require.Equal(t, "PID^1^3", q.location)
	require.Equal(t, ack.Segment("ERR").Get(8), q.reason)

	logs := b.logs.String()
	require.Contains(t, logs, `msg="HL7 message refused" source=mllp control_id=MSG0001 bytes=`)
	require.Contains(t, logs, "err_code=102 err_location=PID^1^3\n")
	for _, data := range []string{"299127512300012", "280017512345678", "INS", "DUPONT", "Marie", "19800115", "IPP0012345"} {
		require.NotContains(t, logs, data)
	}
}

func TestAccept(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ack := parseACK(t, b.handler.ServeMLLP(b.ctx, oru(t, n1)))
	require.Equal(t, "AA", ack.Segment("MSA").Get(1))
	require.Equal(t, "MSG0001", ack.Segment("MSA").Get(2))
	for _, e := range ack.SegmentsNamed("ERR") {
		require.Equal(t, "W", e.Get(4), "an AA carries warnings only: %s", e.Get(8))
	}

	var r struct {
		source, app, controlID, documentID, code, title, family, given, birth, ins, insOID, ipp string
	}
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT source, sending_application, message_control_id, document_id,
		document_code, document_title, patient_family, patient_given, patient_birth_date, patient_ins, patient_ins_oid, patient_ipp
		FROM reports`).Scan(&r.source, &r.app, &r.controlID, &r.documentID, &r.code, &r.title, &r.family, &r.given,
		&r.birth, &r.ins, &r.insOID, &r.ipp))
	require.Equal(t, "mllp", r.source)
	require.Equal(t, "DPI_TEST", r.app)
	require.Equal(t, "MSG0001", r.controlID)
	require.Equal(t, "1.2.250.1.999.42.1.4^LDL-20240312-000123", r.documentID)
	require.Equal(t, "11490-0", r.code)
	require.Equal(t, "Lettre de liaison de sortie", r.title)
	require.Equal(t, []string{"DUPONT", "Marie", "19800115", "280017512345678", "1.2.250.1.213.1.4.10", "IPP0012345"},
		[]string{r.family, r.given, r.birth, r.ins, r.insOID, r.ipp})

	rows, err := b.pool.Query(b.ctx, "SELECT national_id, rpps, family, address FROM recipients ORDER BY position")
	require.NoError(t, err)
	var got [][4]string
	for rows.Next() {
		var rc [4]string
		require.NoError(t, rows.Scan(&rc[0], &rc[1], &rc[2], &rc[3]))
		got = append(got, rc)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, [][4]string{
		{"899900000002", "99900000002", "DUPONT-DEMO", ""},
		{"899900000007", "99900000007", "ROUX", "julie.roux@medecin-demo.mssante.fr"},
	}, got, "only RCT participations are recipients")

	var pdfApart, inCDA bool
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT pdf IS NOT NULL, pdf_in_cda FROM documents").Scan(&pdfApart, &inCDA))
	require.True(t, inCDA, "the level-1 CDA has a PDF")
	require.False(t, pdfApart, "the PDF is kept in its CDA only, not twice")
}

func TestRetransmission(t *testing.T) {
	t.Parallel()
	b := setup(t)
	msg := oru(t, n1)
	for range 2 {
		ack := parseACK(t, b.handler.ServeMLLP(b.ctx, msg))
		require.Equal(t, "AA", ack.Segment("MSA").Get(1))
	}
	var n int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT count(*) FROM reports").Scan(&n))
	require.Equal(t, 1, n)
}

func TestRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name    string
		msg     []byte
		ack     string
		msa2    string
		errLoc  string // ERR-2 as SEG^seq^field
		errCode string
	}{
		{"not HL7", []byte("hello"), "AE", "", "", ""},
		{"unsupported type", oru(t, n1, replace("MSH", "ORU^R01^ORU_R01", "ADT^A01^ADT_A01"), replace("MSH", "|MSG0001|", "|R01|")), "AE", "R01", "MSH^1^9", "200"},
		{"no control id", oru(t, n1, replace("MSH", "|MSG0001|", "||")), "AE", "", "MSH^1^10", "101"},
		{"malformed MSH-2", oru(t, n1, replace("MSH", `MSH|^~\&|`, `MSH|^~^&|`), replace("MSH", "|MSG0001|", "|R08|")), "AE", "R08", "MSH^1^2", "102"},
		{"no PID", oru(t, n1, drop("PID"), replace("MSH", "|MSG0001|", "|R02|")), "AE", "R02", "PID^1", "100"},
		{"no document", oru(t, n1, drop("OBX"), replace("MSH", "|MSG0001|", "|R03|")), "AE", "R03", "OBX^1^5", "101"},
		{"bad base64", oru(t, n1, replace("OBX", "^Base64^", "^Base64^!!"), replace("MSH", "|MSG0001|", "|R04|")), "AE", "R04", "OBX^1^5", "102"},
		{"not a CDA", oru(t, "../../cda/testdata/not-cda.xml", replace("MSH", "|MSG0001|", "|R05|")), "AE", "R05", "OBX^1^5", "102"},
		{"correction without a parent", oru(t, n1, replace("OBX", "||||||F", "||||||C"), replace("ORC", "ORC|NW", "ORC|RO"), replace("MSH", "|MSG0001|", "|R06|")), "AE", "R06", "OBX^1^5", "101"},
		{"empty recipient", oru(t, n1, replace("PRT|1", "899900000002^DUPONT-DEMO^Claire^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^L^^^IDNPS", ""), replace("MSH", "|MSG0001|", "|R07|")), "AE", "R07", "PRT^1^5", "101"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ack := parseACK(t, b.handler.HandleHL7(b.ctx, tt.msg))
			require.Equal(t, tt.ack, ack.Segment("MSA").Get(1))
			require.Equal(t, tt.msa2, ack.Segment("MSA").Get(2))
			if tt.name != "not HL7" { // the header mirrors the message's, even one that cannot be parsed
				msh := ack.Segment("MSH")
				require.Equal(t, []string{"MSSDISPATCH", "CH_TEST", "DPI_TEST", "CH_TEST", "P", "2.5"},
					[]string{msh.Get(3), msh.Get(4), msh.Get(5), msh.Get(6), msh.Get(11), msh.Get(12)})
			}
			errSeg := ack.Segment("ERR")
			require.NotNil(t, errSeg, "a refusal says why")
			require.NotEmpty(t, errSeg.Get(8), "ERR-8 has a message for people")
			if tt.errLoc != "" {
				loc := errSeg.Field(2).Rep(0)
				got := strings.TrimRight(loc.Comp(1)+"^"+loc.Comp(2)+"^"+loc.Comp(3), "^")
				require.Equal(t, tt.errLoc, got)
				require.Equal(t, tt.errCode, errSeg.Component(3, 1))
			}
		})
	}
	var n int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT count(*) FROM reports").Scan(&n))
	require.Zero(t, n, "nothing refused is stored")
}

func TestStoreFailureIsAR(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.pool.Close() // the database is gone
	ack := parseACK(t, b.handler.ServeMLLP(b.ctx, oru(t, n1)))
	require.Equal(t, "AR", ack.Segment("MSA").Get(1), "the DPI must send it again")
	require.Equal(t, "MSG0001", ack.Segment("MSA").Get(2))
	require.Equal(t, "207", ack.Segment("ERR").Component(3, 1))
}

// TestNULOverMLLP sends messages holding a NUL byte, raw or escaped, as a
// DPI's feed would: each gets an AE (sent again, it would fail again) and is
// kept whole in quarantine, and the next message on the connection is
// accepted. Before, PostgreSQL refused the text and the DPI got an AR, sent
// it again, forever, its feed blocked behind it.
func TestNULOverMLLP(t *testing.T) {
	t.Parallel()
	b := setup(t)
	srv := &mllp.Server{Handler: b.handler, Logger: quiet}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	c, err := mllp.Dial(b.ctx, ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()

	bad := map[string][]byte{
		"raw NUL in PID-5":       oru(t, n1, replace("PID", "DUPONT^Marie", "DUPONT\x00^Marie"), replace("MSH", "|MSG0001|", "|NUL1|")),
		"escaped NUL in PID-5":   oru(t, n1, replace("PID", "DUPONT^Marie", `DUPONT\X00\^Marie`), replace("MSH", "|MSG0001|", "|NUL2|")),
		"raw NUL in MSH-10":      oru(t, n1, replace("MSH", "|MSG0001|", "|NUL\x003|")),
		"escaped NUL in an OBX":  oru(t, n1, replace("OBX", "||||||F", `||||||F|\X41004142\`), replace("MSH", "|MSG0001|", "|NUL4|")),
		"raw NUL in a PRT-15":    oru(t, n1, replace("PRT|2|", "Julie.Roux@", "Julie.Roux\x00@"), replace("MSH", "|MSG0001|", "|NUL5|")),
		"raw NUL in the base64":  oru(t, n1, replace("OBX", "^Base64^", "^Base64^PD94\x00"), replace("MSH", "|MSG0001|", "|NUL6|")),
		"escaped NUL in MSH-4":   oru(t, n1, replace("MSH", "|CH_TEST|", `|CH\X00\TEST|`), replace("MSH", "|MSG0001|", "|NUL7|")),
		"raw NUL before the MSH": append([]byte("\x00"), oru(t, n1, replace("MSH", "|MSG0001|", "|NUL8|"))...),
	}
	for name, msg := range bad {
		raw, err := c.Send(b.ctx, msg)
		require.NoError(t, err, name)
		ack := parseACK(t, raw)
		if name == "raw NUL before the MSH" { // bytes before the message are dropped
			require.Equal(t, "AA", ack.Segment("MSA").Get(1), name)
			continue
		}
		require.Equal(t, "AE", ack.Segment("MSA").Get(1), name)
		require.Contains(t, ack.Segment("ERR").Get(8), "NUL", name)
		var kept int
		require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT count(*) FROM quarantine WHERE raw = $1", msg).Scan(&kept))
		require.Equal(t, 1, kept, "%s: kept whole", name)

		raw, err = c.Send(b.ctx, oru(t, n1, replace("MSH", "|MSG0001|", "|NEXT-"+strings.ReplaceAll(name, " ", "-")+"|")))
		require.NoError(t, err, name)
		require.Equal(t, "AA", parseACK(t, raw).Segment("MSA").Get(1), "%s: the feed goes on", name)
	}
}

func TestTooLargeOverMLLP(t *testing.T) {
	t.Parallel()
	b := setup(t)
	srv := &mllp.Server{Handler: b.handler, MaxMessageSize: 64 << 10, Logger: quiet}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	big := oru(t, n1, replace("OBX", "^Base64^", "^Base64^"+strings.Repeat("QUFB", 32<<10)))
	c, err := mllp.Dial(b.ctx, ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	raw, err := c.Send(b.ctx, big)
	require.NoError(t, err)
	ack := parseACK(t, raw)
	require.Equal(t, "AE", ack.Segment("MSA").Get(1), "sent again, it would be refused again")
	require.Equal(t, "MSG0001", ack.Segment("MSA").Get(2))
	require.Contains(t, ack.Segment("ERR").Get(8), "dépasse la taille")
	var kept int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT count(*) FROM quarantine WHERE length(raw) > 0").Scan(&kept))
	require.Equal(t, 1, kept, "its head is kept in quarantine")

	// The connection goes on with the next message.
	raw, err = c.Send(b.ctx, oru(t, n1))
	require.NoError(t, err)
	require.Equal(t, "AA", parseACK(t, raw).Segment("MSA").Get(1))
}
