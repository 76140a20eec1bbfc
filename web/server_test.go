package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/hl7intake"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/worker"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/letters"
	"github.com/mssdispatch/mssdispatch/paper"
	"github.com/mssdispatch/mssdispatch/queue"
	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/web"
)

const token = "s3cret-token"

var quiet = slog.New(slog.DiscardHandler)

type testBundle struct {
	pool *pgxpool.Pool
	srv  *httptest.Server
	// client holds the jobs; work starts it.
	client *queue.Client
	// accounts holds the dashboard's users.
	accounts *auth.Store
}

// work starts the job queue, so that reports get resolved and sent.
func (b *testBundle) work(t testing.TB) {
	t.Helper()
	require.NoError(t, b.client.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, b.client.Stop(ctx))
	})
}

// setup serves the real handler over the real service (jobs enqueued, not
// worked until work is called), its configuration changed by configure.
func setup(t testing.TB, configure ...func(*web.Config)) *testBundle {
	t.Helper()
	pool := pgtest.NewPool(t)
	registry := prometheus.NewRegistry()
	outbox, err := mail.NewOutbox(t.TempDir())
	require.NoError(t, err)
	directory := correspondents.NewStore(pool)
	resolver := correspondents.NewResolver(directory)
	workers := river.NewWorkers()
	require.NoError(t, worker.AddWorkers(workers, worker.WorkerConfig{Pool: pool, Sender: "bal@ch-test.mssante.fr",
		Resolver: resolver, Transport: outbox, Registerer: registry, Logger: quiet}))
	paperCfg := letters.Config{Pool: pool, Logger: quiet, Letterhead: paper.Letterhead{Name: "CH Démo"}}
	require.NoError(t, letters.AddBatches(workers, paperCfg))
	client, err := queue.New(pool, queue.Config{Workers: workers, FetchPollInterval: 100 * time.Millisecond, Logger: quiet})
	require.NoError(t, err)
	service, err := dispatch.NewService(dispatch.ServiceConfig{Pool: pool, Jobs: client, Resolver: resolver, Logger: quiet,
		Custodian: dispatch.Organisation{FINESS: "999000017", Name: "CH DEMO"}})
	require.NoError(t, err)
	desk, err := letters.NewDesk(paperCfg, client)
	require.NoError(t, err)
	intake, err := hl7intake.New(hl7intake.Config{Receiver: service, Registerer: registry, Logger: quiet})
	require.NoError(t, err)
	jobsUI, err := web.NewJobsUI(t.Context(), client, quiet)
	require.NoError(t, err)
	accounts := auth.NewStore(pool)
	sessions, err := auth.NewSessions(auth.SessionConfig{Store: accounts, Logger: quiet})
	require.NoError(t, err)
	cfg := web.Config{APIToken: token, Reports: service, Intake: service, HL7: intake,
		Directory: directory, Resolver: resolver, Rules: service, DB: pool, Gatherer: registry, Logger: quiet,
		Dashboard: service, Accounts: accounts, Sessions: sessions, Letters: desk, Views: readmodel.New(pool), Quarantine: service, Audit: audit.NewLog(pool),
		Hospital: "CH Démo", HospitalAddresses: []string{"secretariat@ch-test.mssante.fr"}, JobsUI: jobsUI}
	for _, c := range configure {
		c(&cfg)
	}
	h, err := web.NewHandler(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testBundle{pool: pool, srv: srv, client: client, accounts: accounts}
}

// call sends a request with the bearer token and the given header name, value pairs.
func (b *testBundle) call(t testing.TB, method, path, body string, header ...string) (int, http.Header, string) {
	t.Helper()
	return b.do(t, method, path, "Bearer "+token, body, header...)
}

func (b *testBundle) do(t testing.TB, method, path, auth, body string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, b.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(data)
}

func sampleORU(t *testing.T) string {
	t.Helper()
	tmpl, err := os.ReadFile("../dispatch/hl7intake/testdata/oru_r01.hl7")
	require.NoError(t, err)
	doc, err := os.ReadFile("../cda/testdata/n1-pdf.xml")
	require.NoError(t, err)
	return strings.ReplaceAll(strings.Replace(string(tmpl), "{{CDA}}", base64.StdEncoding.EncodeToString(doc), 1), "\n", "\r")
}

func TestProbes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, _, body := b.do(t, "GET", "/healthz", "", "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"ok"}`, body)
	code, _, _ = b.do(t, "GET", "/readyz", "", "")
	require.Equal(t, http.StatusOK, code)
	code, _, body = b.do(t, "GET", "/metrics", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "mssdispatch_sends_total")

	b.pool.Close()
	code, _, body = b.do(t, "GET", "/readyz", "", "")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"error":"database unreachable"}`, body)
}

func TestAPIAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, auth := range []string{"", "Bearer wrong", token, "Basic " + token} {
		code, h, body := b.do(t, "GET", "/api/v1/reports/1", auth, "")
		require.Equal(t, http.StatusUnauthorized, code, auth)
		require.Equal(t, "application/json", h.Get("Content-Type"))
		require.Contains(t, body, `"error"`)
	}
}

// TestHL7NUL posts messages holding a NUL byte, raw or escaped, as a DPI
// using the REST API would: each gets an AE (not a 503 the DPI would retry
// forever) and is kept whole in quarantine, and the next message goes
// through.
func TestHL7NUL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bearer := "Bearer " + token
	for name, nul := range map[string]string{"raw": "\x00", "escaped": `\X00\`} {
		msg := strings.Replace(strings.Replace(sampleORU(t), "DUPONT^Marie", "DUPONT"+nul+"^Marie", 1), "|MSG0001|", "|NUL-"+name+"|", 1)
		code, _, ack := b.do(t, "POST", "/api/v1/hl7", bearer, msg)
		require.Equal(t, http.StatusOK, code, name)
		require.Contains(t, ack, "MSA|AE|NUL-"+name, name)
		require.Contains(t, ack, "NUL", name)
		var kept bool
		require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM quarantine WHERE raw = $1)",
			[]byte(msg)).Scan(&kept))
		require.True(t, kept, "%s: kept whole", name)
	}
	code, _, ack := b.do(t, "POST", "/api/v1/hl7", bearer, sampleORU(t))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, ack, "MSA|AA|MSG0001")
}

func TestHL7AndReports(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bearer := "Bearer " + token

	code, h, ack := b.do(t, "POST", "/api/v1/hl7", bearer, sampleORU(t))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, h.Get("Content-Type"), "hl7")
	require.Contains(t, ack, "MSA|AA|MSG0001")

	code, _, ack = b.do(t, "POST", "/api/v1/hl7", bearer, "not hl7")
	require.Equal(t, http.StatusOK, code, "an HL7 refusal is still an HL7 answer")
	require.Contains(t, ack, "MSA|AE")

	code, _, body := b.do(t, "POST", "/api/v1/hl7", bearer, "  ")
	require.Equal(t, http.StatusOK, code, "an empty message gets the ACK MLLP would give it")
	require.Contains(t, body, "MSA|AE")
	_, _, metrics := b.do(t, "GET", "/metrics", "", "")
	require.Contains(t, metrics, `mssdispatch_intake_duration_seconds_count{source="api"} 3`, "the messages timed to their ACK")
	require.Contains(t, metrics, `mssdispatch_intake_messages_total{ack="AE",source="api"} 2`)

	docID := "1.2.250.1.999.42.1.4^LDL-20240312-000123"
	code, _, body = b.do(t, "GET", "/api/v1/reports?document_id="+url.QueryEscape(docID), bearer, "")
	require.Equal(t, http.StatusOK, code, body)
	var v struct {
		ID         int64  `json:"id"`
		DocumentID string `json:"document_id"`
		Status     string `json:"status"`
		Deliveries []any  `json:"deliveries"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &v))
	require.Equal(t, docID, v.DocumentID)
	require.Equal(t, dispatch.ReportReceived, v.Status)
	require.NotNil(t, v.Deliveries, "deliveries is a list, empty until resolved")

	code, _, body2 := b.do(t, "GET", "/api/v1/reports/"+jsonNumber(v.ID), bearer, "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, body, body2)

	for path, want := range map[string]int{
		"/api/v1/reports/999999":         http.StatusNotFound,
		"/api/v1/reports/abc":            http.StatusBadRequest,
		"/api/v1/reports/-1":             http.StatusBadRequest,
		"/api/v1/reports":                http.StatusBadRequest,
		"/api/v1/reports?document_id=x^": http.StatusNotFound,
		"/api/v1/nothing":                http.StatusNotFound,
	} {
		code, h, body := b.do(t, "GET", path, bearer, "")
		require.Equal(t, want, code, path)
		require.Equal(t, "application/json", h.Get("Content-Type"), path)
		require.Contains(t, body, `"error"`, path)
	}
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
