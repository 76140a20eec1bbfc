package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	dmail "github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/internal/smtptest"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

const (
	testSender = "bal-applicative@ch-demo.mssante.fr"
	testToken  = "test-token-of-at-least-32-characters"
)

// quiet is the in-process services' logger: nothing on the terminal, every
// line, debug included, to the log scan (logscan_test.go).
var quiet = slog.New(slog.NewTextHandler(captured.source(), &slog.HandlerOptions{Level: slog.LevelDebug}))

// mapEnv is an environment for run.
func mapEnv(vars map[string]string) env {
	return env{lookup: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
}

// runOK runs a command and fails t unless it exits 0; it returns stdout.
func runOK(t testing.TB, e env, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, e, &stdout, &stderr)
	require.Equal(t, 0, code, "mssdispatch %s: %s", strings.Join(args, " "), stderr.String())
	return stdout.String()
}

// demoDatabase returns a migrated database loaded with the demo directory and
// whitelist through the CLI, and its URL.
func demoDatabase(t testing.TB) string {
	t.Helper()
	dbURL := pgtest.NewDatabase(t)
	importDemo(t, dbURL)
	return dbURL
}

// importDemo loads the demo directory and whitelist into the migrated
// database at dbURL through the CLI.
func importDemo(t testing.TB, dbURL string) {
	t.Helper()
	e := mapEnv(map[string]string{"MSSDISPATCH_DATABASE_URL": dbURL})
	out := runOK(t, e, "directory", "import", "../../testdata/demo/Extraction_Correspondance_MSSante.txt")
	require.Contains(t, out, "directory imported")
	out = runOK(t, e, "whitelist", "import", "../../testdata/demo/liste_blanche.xml")
	require.Contains(t, out, "whitelist imported")
}

type running struct {
	mllpAddr, httpAddr string
	cancel             context.CancelFunc
	done               chan error
}

// testInstances numbers the in-process instances.
var testInstances atomic.Int64

// start runs serve in the background with cfg and waits until it listens;
// without cfg.Instance, the instance is named test-N, its own.
func start(t testing.TB, cfg serveConfig) *running {
	t.Helper()
	if cfg.Instance == "" {
		cfg.Instance = fmt.Sprintf("test-%d", testInstances.Add(1))
	}
	cfg.MLLPAddr, cfg.HTTPAddr, cfg.APIToken, cfg.Sender, cfg.HL7Charset = "127.0.0.1:0", "127.0.0.1:0", testToken, testSender, "UNICODE UTF-8"
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		r.done <- serve(ctx, cfg, quiet, func(m, h net.Addr) {
			r.mllpAddr, r.httpAddr = m.String(), h.String()
			close(ready)
		})
	}()
	select {
	case <-ready:
	case err := <-r.done:
		t.Fatalf("serve stopped at start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels serve and checks that it shuts down cleanly within the limit.
func (r *running) stop(t testing.TB) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		require.NoError(t, err)
	case <-time.After(shutdownTimeout + 2*time.Second):
		t.Fatal("serve did not stop in time")
	}
}

func sendMLLP(t *testing.T, addr string, msg []byte) *hl7.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mllp.Dial(ctx, addr)
	require.NoError(t, err)
	defer c.Close()
	raw, err := c.Send(ctx, msg)
	require.NoError(t, err)
	ack, err := hl7.Parse(raw, hl7.ParseOptions{})
	require.NoError(t, err)
	return ack
}

func getReport(t *testing.T, httpAddr, documentID string) readmodel.ReportView {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+httpAddr+"/api/v1/reports?document_id="+url.QueryEscape(documentID), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var v readmodel.ReportView
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	return v
}

// TestEndToEnd drives one report from a real MLLP connection to a real SMTP
// server that requires STARTTLS and the BAL applicative's client certificate.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	smtpSrv := smtptest.Start(t, smtptest.Options{RequireClientCert: true})
	cert := smtpSrv.CA.Client(t, testSender)
	r := start(t, serveConfig{
		DatabaseURL: demoDatabase(t),
		Transport:   "smtp",
		SMTP: dmail.SMTPConfig{Addr: smtpSrv.Addr, TLS: dmail.TLSStartTLS, CAFile: smtpSrv.CA.File,
			CertFile: cert.CertFile, KeyFile: cert.KeyFile},
	})

	msg, documentID, err := sampleReport(time.Now())
	require.NoError(t, err)
	ack := sendMLLP(t, r.mllpAddr, msg)
	require.Equal(t, "AA", ack.Segment("MSA").Get(1))
	require.Equal(t, hl7.ControlIDOf(msg), ack.Segment("MSA").Get(2))

	msgs := smtpSrv.WaitMessages(t, 2, 30*time.Second)
	var to []string
	for _, m := range msgs {
		require.Equal(t, testSender, m.From)
		require.Equal(t, testSender, m.ClientCN, "authenticated by the client certificate")
		require.Equal(t, smtp.DSNReturnHeaders, m.MailOptions.Return, "RET=HDRS")
		require.True(t, strings.HasPrefix(m.MailOptions.EnvelopeID, "mssdispatch-"), "ENVID = the delivery")
		require.Len(t, m.RcptOptions, 1)
		require.ElementsMatch(t, []smtp.DSNNotify{smtp.DSNNotifySuccess, smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed}, m.RcptOptions[0].Notify)
		require.Equal(t, m.To[0], m.RcptOptions[0].OriginalRecipient, "ORCPT")
		to = append(to, m.To...)
		mr, err := gomail.CreateReader(bytes.NewReader(m.Data))
		require.NoError(t, err)
		subject, err := mr.Header.Subject()
		require.NoError(t, err)
		require.Equal(t, "XDM/1.0/DDM+Lettre de liaison de sortie DUPONT Marie 15/01/1980", subject)
		attachments := map[string][]byte{}
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			if h, ok := p.Header.(*gomail.AttachmentHeader); ok {
				name, _ := h.Filename()
				attachments[name], err = io.ReadAll(p.Body)
				require.NoError(t, err)
			}
		}
		require.Len(t, attachments, 2)
		require.Contains(t, attachments, "IHE_XDM.ZIP")
		want, err := sampleFiles.ReadFile("sample/compte-rendu.pdf")
		require.NoError(t, err)
		require.Equal(t, want, attachments["Lettre_de_liaison_de_sortie.pdf"])
	}
	require.ElementsMatch(t, []string{"claire.dupont-demo@medecin-demo.mssante.fr", "julie.roux@medecin-demo.mssante.fr"}, to)

	require.Eventually(t, func() bool {
		v := getReport(t, r.httpAddr, documentID)
		sent := 0
		for _, d := range v.Deliveries {
			if d.Status == dispatch.StatusSent {
				sent++
			}
		}
		return sent == 2 && len(v.Deliveries) == 4
	}, 10*time.Second, 50*time.Millisecond)
	v := getReport(t, r.httpAddr, documentID)
	require.Equal(t, "Claire DUPONT-DEMO", v.Deliveries[1].Recipient)
	require.Equal(t, dispatch.StatusPaperPending, v.Deliveries[1].Status, "no dématérialisation: a paper copy too")
	require.Equal(t, "Jean MARTIN", v.Deliveries[3].Recipient)
	require.Equal(t, dispatch.StatusReview, v.Deliveries[3].Status, "two directory addresses: a secretary decides")
}

// failAtCommit makes every commit that inserted a report fail, at COMMIT time
// (a deferred constraint trigger), after every statement succeeded; with a
// delay it sleeps at commit instead.
func failAtCommit(t *testing.T, dbURL string, body string) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(context.Background(), fmt.Sprintf(`
		CREATE FUNCTION at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN %s; RETURN NULL; END $$;
		CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON reports
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION at_commit();`, body))
	require.NoError(t, err)
}

func countReports(t *testing.T, dbURL string) int {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	defer pool.Close()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM reports").Scan(&n))
	return n
}

func TestNoAAWhenCommitFails(t *testing.T) {
	t.Parallel()
	dbURL := demoDatabase(t)
	failAtCommit(t, dbURL, "RAISE EXCEPTION 'commit refused by the test'")
	r := start(t, serveConfig{DatabaseURL: dbURL, Transport: "outbox", OutboxDir: t.TempDir()})

	msg, _, err := sampleReport(time.Now())
	require.NoError(t, err)
	ack := sendMLLP(t, r.mllpAddr, msg)
	require.Equal(t, "AR", ack.Segment("MSA").Get(1), "never AA for what is not committed")
	require.Equal(t, "207", ack.Segment("ERR").Component(3, 1))
	require.Zero(t, countReports(t, dbURL))
}

func TestShutdownAcknowledgesInFlight(t *testing.T) {
	t.Parallel()
	dbURL := demoDatabase(t)
	failAtCommit(t, dbURL, "PERFORM pg_sleep(2)")
	r := start(t, serveConfig{DatabaseURL: dbURL, Transport: "outbox", OutboxDir: t.TempDir()})
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	defer pool.Close()

	msg, _, err := sampleReport(time.Now())
	require.NoError(t, err)
	type result struct {
		raw []byte
		err error
	}
	results := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := mllp.Dial(ctx, r.mllpAddr)
		if err != nil {
			results <- result{err: err}
			return
		}
		defer c.Close()
		raw, err := c.Send(ctx, msg)
		results <- result{raw, err}
	}()
	// The message is being committed: its commit sleeps in at_commit.
	require.Eventually(t, func() bool {
		var n int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event = 'PgSleep'`).Scan(&n)
		return err == nil && n > 0
	}, 30*time.Second, 10*time.Millisecond, "the message is being committed")
	began := time.Now()
	r.stop(t)
	require.Less(t, time.Since(began), shutdownTimeout)
	res := <-results
	require.NoError(t, res.err, "the connection of a message in flight stays open until its ACK")
	ack, err := hl7.Parse(res.raw, hl7.ParseOptions{})
	require.NoError(t, err)
	require.Equal(t, "AA", ack.Segment("MSA").Get(1), "a message in flight at shutdown is committed and acknowledged")
	require.Equal(t, 1, countReports(t, dbURL))
}

func TestServeRefusesOldSchema(t *testing.T) {
	t.Parallel()
	err := serve(context.Background(), serveConfig{DatabaseURL: pgtest.NewEmptyDatabase(t), Transport: "outbox",
		OutboxDir: t.TempDir(), MLLPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", APIToken: "x", Sender: testSender}, quiet, nil)
	require.ErrorContains(t, err, "mssdispatch migrate")
}

// TestPoolSize checks the pool serve opens: the connections asked for,
// unless the URL sets pool_max_conns.
func TestPoolSize(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmptyDatabase(t)
	for _, c := range []struct {
		url        string
		conns, max int32
	}{
		{url, 0, max(4, int32(runtime.NumCPU()))},
		{url, 30, 30},
		{url + "&pool_max_conns=3", 30, 3},
	} {
		pool, err := openPool(context.Background(), c.url, int(c.conns), nil)
		require.NoError(t, err)
		require.Equal(t, c.max, pool.Config().MaxConns, "%s, %d", c.url, c.conns)
		pool.Close()
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	e := mapEnv(map[string]string{"MSSDISPATCH_DATABASE_URL": pgtest.NewEmptyDatabase(t)})
	require.Contains(t, runOK(t, e, "migrate"), "applied 001_init.sql")
	require.Equal(t, "schema up to date\n", runOK(t, e, "migrate"))
}

func TestUsage(t *testing.T) {
	t.Parallel()
	out := runOK(t, mapEnv(nil), "-h")
	for _, v := range envVars {
		require.Contains(t, out, "MSSDISPATCH_"+v.name)
	}
	for _, cmd := range []string{"serve", "migrate", "directory import", "whitelist import", "rules export", "rules import", "rules dry-run", "send-sample"} {
		require.Contains(t, out, cmd)
	}
	var stderr bytes.Buffer
	require.Equal(t, 2, run([]string{"frobnicate"}, mapEnv(nil), io.Discard, &stderr))
	require.Contains(t, stderr.String(), `unknown command "frobnicate"`)
}

func TestServeConfig(t *testing.T) {
	t.Parallel()
	_, err := loadServeConfig(mapEnv(nil))
	require.Error(t, err)
	for _, want := range []string{"MSSDISPATCH_DATABASE_URL is required", "MSSDISPATCH_API_TOKEN is required",
		"MSSDISPATCH_SENDER is required", "MSSDISPATCH_SMTP_ADDR is required", "MSSDISPATCH_SOURCE_OID is required"} {
		require.Contains(t, err.Error(), want)
	}

	base := map[string]string{"MSSDISPATCH_DATABASE_URL": "postgres://x/y", "MSSDISPATCH_API_TOKEN": testToken,
		"MSSDISPATCH_SENDER": testSender, "MSSDISPATCH_TRANSPORT": "outbox"}
	cfg, err := loadServeConfig(mapEnv(base))
	require.NoError(t, err)
	require.Empty(t, cfg.TrustedProxies, "X-Forwarded-For is not read by default")
	require.Equal(t, "127.0.0.1:2575", cfg.MLLPAddr)
	require.Equal(t, "127.0.0.1:8080", cfg.HTTPAddr)
	require.Equal(t, "outbox", cfg.OutboxDir)
	require.Equal(t, "mssdispatch", cfg.NIL)
	require.Empty(t, cfg.SourceOID, "outbox: the dispatch demo OID applies")
	require.False(t, cfg.PatientNoReply)
	require.Equal(t, 30*time.Second, cfg.SendRetryBackoff)
	require.Equal(t, 5*time.Second, cfg.SendProbeInterval)
	require.Equal(t, 64, cfg.MLLPMaxConns)
	require.Equal(t, 64<<20, cfg.MLLPMaxBuffered)
	require.Equal(t, 365, cfg.AuditRetentionDays)
	host, err := os.Hostname()
	require.NoError(t, err)
	require.Equal(t, host+"/127.0.0.1:2575", cfg.Instance, "the host and the MLLP address by default")
	require.Equal(t, instanceWait, cfg.InstanceWait)

	vars := map[string]string{"MSSDISPATCH_SOURCE_OID": "1.2.250.1.71.4.2.2.123", "MSSDISPATCH_PATIENT_NO_REPLY": "true",
		"MSSDISPATCH_NIL": "HopitalSoft 2.1", "MSSDISPATCH_SEND_RETRY_BACKOFF": "2m", "MSSDISPATCH_SEND_PROBE_INTERVAL": "1s", "MSSDISPATCH_MLLP_MAX_CONNS": "8",
		"MSSDISPATCH_MLLP_MAX_BUFFER_MIB": "32", "MSSDISPATCH_AUDIT_RETENTION_DAYS": "1095", "MSSDISPATCH_INSTANCE": "dispatch-1",
		"MSSDISPATCH_TRUSTED_PROXIES": " 127.0.0.1, 10.0.0.0/8,::1 ,2001:db8:ffff::1/48,::ffff:192.0.2.0/120"}
	for k, v := range base {
		vars[k] = v
	}
	cfg, err = loadServeConfig(mapEnv(vars))
	require.NoError(t, err)
	require.Equal(t, "1.2.250.1.71.4.2.2.123", cfg.SourceOID)
	require.True(t, cfg.PatientNoReply)
	require.Equal(t, "HopitalSoft 2.1", cfg.NIL)
	require.Equal(t, 2*time.Minute, cfg.SendRetryBackoff)
	require.Equal(t, time.Second, cfg.SendProbeInterval)
	require.Equal(t, 8, cfg.MLLPMaxConns)
	require.Equal(t, 32<<20, cfg.MLLPMaxBuffered)
	require.Equal(t, 1095, cfg.AuditRetentionDays)
	require.Equal(t, "dispatch-1", cfg.Instance)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("2001:db8:ffff::/48"), netip.MustParsePrefix("192.0.2.0/24")},
		cfg.TrustedProxies)

	// Issue #19, item 7: a short API token is refused, without being shown.
	for _, short := range []string{"demo-token", "a-secret-of-31-characters-xxxxx", strings.Repeat("é", 31)} {
		vars := maps.Clone(base)
		vars["MSSDISPATCH_API_TOKEN"] = short
		_, err := loadServeConfig(mapEnv(vars))
		require.ErrorContains(t, err, "MSSDISPATCH_API_TOKEN is ")
		require.ErrorContains(t, err, "want at least 32")
		require.NotContains(t, err.Error(), short)
	}
	vars["MSSDISPATCH_API_TOKEN"] = strings.Repeat("é", 32)
	_, err = loadServeConfig(mapEnv(vars))
	require.NoError(t, err, "32 characters")

	// Issue #19, item 6: the HTTP server bounds every client's time and header.
	srv := newHTTPServer(http.NotFoundHandler(), quiet)
	require.Equal(t, 10*time.Second, srv.ReadHeaderTimeout)
	require.Equal(t, 2*time.Minute, srv.ReadTimeout)
	require.Equal(t, 10*time.Minute, srv.WriteTimeout, "long enough for a paper batch's PDF")
	require.Equal(t, 2*time.Minute, srv.IdleTimeout)
	require.Equal(t, 64<<10, srv.MaxHeaderBytes)

	for name, value := range map[string]string{
		"MSSDISPATCH_SENDER":               "Hôpital <bal@ch.fr>",
		"MSSDISPATCH_TRANSPORT":            "pigeon",
		"MSSDISPATCH_MLLP_ADDR":            "2575",
		"MSSDISPATCH_HL7_CHARSET":          "EBCDIC",
		"MSSDISPATCH_SOURCE_OID":           "1.2.250.01",
		"MSSDISPATCH_PATIENT_NO_REPLY":     "oui",
		"MSSDISPATCH_NIL":                  "Logiciel é",
		"MSSDISPATCH_SEND_RETRY_BACKOFF":   "soon",
		"MSSDISPATCH_SEND_PROBE_INTERVAL":  "0s",
		"MSSDISPATCH_TRUSTED_PROXIES":      "127.0.0.1,proxy.example",
		"MSSDISPATCH_MLLP_MAX_CONNS":       "0",
		"MSSDISPATCH_MLLP_MAX_BUFFER_MIB":  "8",
		"MSSDISPATCH_AUDIT_RETENTION_DAYS": "90",
		"MSSDISPATCH_INSTANCE":             strings.Repeat("x", 101),
	} {
		vars := map[string]string{}
		for k, v := range base {
			vars[k] = v
		}
		vars[name] = value
		_, err := loadServeConfig(mapEnv(vars))
		require.ErrorContains(t, err, name, value)
	}
}

// TestSIGTERM runs the real binary and checks that SIGTERM stops it cleanly
// (exit 0) within the shutdown limit.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	mllpAddr, httpAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		"MSSDISPATCH_DATABASE_URL="+pgtest.NewDatabase(t), "MSSDISPATCH_API_TOKEN="+testToken, "MSSDISPATCH_SENDER="+testSender,
		"MSSDISPATCH_TRANSPORT=outbox", "MSSDISPATCH_OUTBOX_DIR="+t.TempDir(),
		"MSSDISPATCH_MLLP_ADDR="+mllpAddr, "MSSDISPATCH_HTTP_ADDR="+httpAddr)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	waitReady(t, httpAddr, &logs)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit status after SIGTERM; logs:\n%s", logs.String())
	case <-time.After(shutdownTimeout):
		_ = cmd.Process.Kill()
		t.Fatalf("still running %s after SIGTERM; logs:\n%s", shutdownTimeout, logs.String())
	}
	require.Contains(t, logs.String(), "shutting down")
}

// buildBinary builds mssdispatch into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mssdispatch")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// waitReady waits until the service at httpAddr answers /readyz; logs are
// shown if it does not.
func waitReady(t *testing.T, httpAddr string, logs fmt.Stringer) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "%s", logs)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}
