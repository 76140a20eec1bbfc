package webtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	"github.com/mssdispatch/mssdispatch/dispatch/desk"
	"github.com/mssdispatch/mssdispatch/dispatch/hl7intake"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/quarantine"
	"github.com/mssdispatch/mssdispatch/dispatch/ruleset"
	"github.com/mssdispatch/mssdispatch/dispatch/worker"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/letters"
	"github.com/mssdispatch/mssdispatch/paper"
	"github.com/mssdispatch/mssdispatch/queue"
	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/rules"
	"github.com/mssdispatch/mssdispatch/web"
)

// Token is the API's bearer token of a Server.
const Token = "s3cret-token"

// Password is the password of the users Login creates.
const Password = "correct horse battery"

var quiet = slog.New(slog.DiscardHandler)

// Server is the service's real handler (web.NewHandler) over the real
// service and a fresh database, served over HTTP, for the tests of web and
// of its screens (packages dashboard and admin).
type Server struct {
	// URL is the handler's base URL (http://127.0.0.1:port).
	URL  string
	Pool *pgxpool.Pool
	// Client holds the jobs; Work starts it.
	Client *queue.Client
	// Accounts holds the dashboard's users.
	Accounts *auth.Store
}

// Work starts the job queue, so that reports get resolved and sent.
func (s *Server) Work(t testing.TB) {
	t.Helper()
	require.NoError(t, s.Client.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, s.Client.Stop(ctx))
	})
}

// Setup serves the real handler over the real service (jobs enqueued, not
// worked until Work is called), its configuration changed by configure.
func Setup(t testing.TB, configure ...func(*web.Config)) *Server {
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
	service, err := dispatch.NewService(dispatch.ServiceConfig{Pool: pool, Jobs: client, Logger: quiet,
		Custodian: dispatch.Organisation{FINESS: "999000017", Name: "CH DEMO"}})
	require.NoError(t, err)
	paperDesk, err := letters.NewDesk(paperCfg, client)
	require.NoError(t, err)
	refused := quarantine.NewDesk(pool, service)
	intake, err := hl7intake.New(hl7intake.Config{Receiver: service, Quarantine: refused, Registerer: registry, Logger: quiet})
	require.NoError(t, err)
	jobsUI, err := web.NewJobsUI(t.Context(), client, quiet)
	require.NoError(t, err)
	accounts := auth.NewStore(pool)
	sessions, err := auth.NewSessions(auth.SessionConfig{Store: accounts, Logger: quiet})
	require.NoError(t, err)
	cfg := web.Config{APIToken: Token, Intake: service, HL7: intake,
		Directory: directory, Resolver: resolver, Rules: ruleset.New(pool, resolver, quiet), DB: pool, Gatherer: registry, Logger: quiet,
		Dashboard: desk.New(pool, client, resolver, ""), Accounts: accounts, Sessions: sessions, Letters: paperDesk, Views: readmodel.New(pool), Quarantine: refused, Audit: audit.NewLog(pool),
		Hospital: "CH Démo", HospitalAddresses: []string{"secretariat@ch-test.mssante.fr"}, JobsUI: jobsUI}
	for _, c := range configure {
		c(&cfg)
	}
	h, err := web.NewHandler(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Server{URL: srv.URL, Pool: pool, Client: client, Accounts: accounts}
}

// SetupDemo is Setup with the demo directory, its jobs worked.
func SetupDemo(t *testing.T) *Server {
	t.Helper()
	s := Setup(t)
	s.ImportDemo(t)
	s.Work(t)
	return s
}

// Call sends a request with the bearer token and the given header name, value pairs.
func (s *Server) Call(t testing.TB, method, path, body string, header ...string) (int, http.Header, string) {
	t.Helper()
	return s.Do(t, method, path, "Bearer "+Token, body, header...)
}

// Do sends a request with the Authorization header auth (none when empty)
// and the given header name, value pairs, and returns the status, header
// and body of the answer.
func (s *Server) Do(t testing.TB, method, path, auth, body string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, strings.NewReader(body))
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

// PostReport posts the JSON report body to the API with the idempotency
// key (none when empty) and returns the status and the JSON answer.
func (s *Server) PostReport(t testing.TB, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "POST", s.URL+"/api/v1/reports", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+Token)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out json.RawMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out), "every answer is JSON")
	return resp.StatusCode, string(out)
}

// File is the path of name, a path from the module's root.
func File(name string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..", filepath.FromSlash(name))
}

// ImportDemo loads the demo directory and whitelist into s's database.
func (s *Server) ImportDemo(t testing.TB) {
	t.Helper()
	store := correspondents.NewStore(s.Pool)
	_, err := store.ImportDirectoryFrom(context.Background(), File("testdata/demo/Extraction_Correspondance_MSSante.txt"), correspondents.ImportOptions{})
	require.NoError(t, err)
	_, err = store.ImportWhitelistFrom(context.Background(), File("testdata/demo/liste_blanche.xml"), correspondents.ImportOptions{})
	require.NoError(t, err)
}

// SampleORU is the ORU^R01 of hl7intake's tests, carrying the level-1 CDA
// of cda/testdata, with CR segment separators.
func SampleORU(t *testing.T) string {
	t.Helper()
	tmpl, err := os.ReadFile(File("dispatch/hl7intake/testdata/oru_r01.hl7"))
	require.NoError(t, err)
	doc, err := os.ReadFile(File("cda/testdata/n1-pdf.xml"))
	require.NoError(t, err)
	return strings.ReplaceAll(strings.Replace(string(tmpl), "{{CDA}}", base64.StdEncoding.EncodeToString(doc), 1), "\n", "\r")
}

// B64Document is the base64 of the level-1 CDA of cda/testdata with the id
// extension ext: a document of its own (the same id and bytes sent again
// would be the same document).
func B64Document(t testing.TB, ext string) string {
	t.Helper()
	b, err := os.ReadFile(File("cda/testdata/n1-pdf.xml"))
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(bytes.Replace(b, []byte(`extension="LDL-20240312-000123"`), []byte(`extension="`+ext+`"`), 1))
}

// Login creates the user (unless it exists) and signs in as it.
func (s *Server) Login(t testing.TB, username string, role auth.Role, services ...string) *Browser {
	t.Helper()
	_, err := s.Accounts.AddUser(context.Background(), auth.NewUser{Username: username, DisplayName: strings.ToUpper(username),
		Password: Password, Role: role, Services: services})
	if err != nil {
		require.ErrorIs(t, err, auth.ErrUserExists)
	}
	c := s.Anonymous(t)
	c.Login(t, username, Password)
	status, body := c.Get(t, "/worklists/review")
	require.Equal(t, http.StatusOK, status, body)
	return c
}

// Anonymous is a browser that has not signed in.
func (s *Server) Anonymous(t testing.TB) *Browser {
	t.Helper()
	return New(t, s.URL)
}

// ReviewReport posts a report of service whose recipients are: Jean Martin
// (two addresses in the directory: review), Claire Dupont-Demo (one
// address: sent) and an RPPS the directory does not know (review), and
// waits for its deliveries. It returns the report's id.
func (s *Server) ReviewReport(t testing.TB, key, service string) int64 {
	t.Helper()
	body := `{"patient": {"family": "DURAND", "given": "Léa", "birth_date": "1975-03-02", "sex": "F", "ipp": "IPP-` + key + `"},
		"service": "` + service + `",
		"document": {"cda": "` + B64Document(t, key) + `"},
		"recipients": [{"rpps": "99900000001", "family": "MARTIN", "given": "Jean"},
		               {"rpps": "99900000002", "family": "DUPONT-DEMO", "given": "Claire"},
		               {"rpps": "99900000999", "family": "INCONNU", "given": "Paul"}]}`
	code, resp := s.PostReport(t, key, body)
	require.Equal(t, http.StatusCreated, code, resp)
	var v struct {
		ID int64 `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(resp), &v))
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, s.Pool.QueryRow(context.Background(),
			`SELECT count(*) FROM deliveries WHERE report_id = $1`, v.ID).Scan(&n))
		return n >= 3
	}, 20*time.Second, 50*time.Millisecond)
	return v.ID
}

// Delivery returns the id and status of the delivery of report to the
// recipient of that family name on channel.
func (s *Server) Delivery(t testing.TB, report int64, family, channel string) (int64, string) {
	t.Helper()
	var id int64
	var status string
	require.NoError(t, s.Pool.QueryRow(context.Background(), `SELECT d.id, d.status FROM deliveries d
		JOIN recipients r ON r.id = d.recipient_id WHERE d.report_id = $1 AND r.family = $2 AND d.channel = $3`,
		report, family, channel).Scan(&id, &status))
	return id, status
}

// DeliveryAddress returns the id and address of the email of report to the
// recipient of that family name, once it has left review or was decided.
func (s *Server) DeliveryAddress(t *testing.T, report int64, family string) (id int64, address string) {
	t.Helper()
	require.NoError(t, s.Pool.QueryRow(context.Background(), `SELECT d.id, d.address FROM deliveries d
		JOIN recipients r ON r.id = d.recipient_id WHERE d.report_id = $1 AND r.family = $2 AND d.channel = 'mssante'`,
		report, family).Scan(&id, &address))
	return id, address
}

// AuditEntries returns the audit records of action, newest first.
func (s *Server) AuditEntries(t *testing.T, action string) []audit.Record {
	t.Helper()
	records, err := audit.NewLog(s.Pool).Read(context.Background(), audit.Filter{Action: action})
	require.NoError(t, err)
	return records
}

// RuleVersions is the number of versions of the rules stored.
func (s *Server) RuleVersions(t *testing.T) int {
	t.Helper()
	var versions int
	require.NoError(t, s.Pool.QueryRow(context.Background(), "SELECT count(*) FROM rule_sets").Scan(&versions))
	return versions
}

// RulesYAML is a rule set as a CME writes it, for the tests of the rules'
// API and screen.
const RulesYAML = `# Règles de test
rules:
  - name: Psychiatrie relue
    match: {services: [PSY]}
    action: {send: review}
`

// RuleSetJSON is the JSON of a version of the rules.
type RuleSetJSON struct {
	Version   int          `json:"version"`
	CreatedBy string       `json:"created_by"`
	CreatedAt *time.Time   `json:"created_at"`
	Comment   string       `json:"comment"`
	Rules     []rules.Rule `json:"rules"`
}

// DecodeRuleSet decodes the API's JSON of a version of the rules.
func DecodeRuleSet(t *testing.T, body string) RuleSetJSON {
	t.Helper()
	var rs RuleSetJSON
	require.NoError(t, json.Unmarshal([]byte(body), &rs), body)
	return rs
}

// screenshotDir is where the browser scenarios leave the screenshots of the
// main screens (CI keeps the folder as an artifact).
const screenshotDir = "artifacts/screenshots"

// RunScenario runs the browser scenario web/e2e/script (playwright-core in
// Debian's headless Chromium) against s's dashboard, with the environment
// vars (name=value) besides MSSD_URL, MSSD_PASSWORD (Password),
// MSSD_SCREENSHOTS and CHROMIUM, and fails t with its output unless it
// succeeds. It needs node, /usr/bin/chromium (or $CHROMIUM) and `npm ci` in
// web/e2e (make test does it).
func RunScenario(t *testing.T, s *Server, script string, vars ...string) {
	t.Helper()
	node, err := exec.LookPath("node")
	require.NoError(t, err, "the browser test needs Node.js")
	_, err = os.Stat(File("web/e2e/node_modules/playwright-core"))
	require.NoError(t, err, "run `npm ci` in web/e2e (make test does)")
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	_, err = os.Stat(chromium)
	require.NoError(t, err, "the browser test needs Debian's chromium package")
	shots := File(screenshotDir)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, File("web/e2e/"+script))
	cmd.Env = append(os.Environ(), "MSSD_URL="+s.URL, "MSSD_PASSWORD="+Password, "MSSD_SCREENSHOTS="+shots,
		"CHROMIUM="+chromium)
	cmd.Env = append(cmd.Env, vars...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s:\n%s", script, out)
	t.Logf("%s: %s(screenshots in %s)", script, out, shots)
}

// MustGet gets path, which must answer 200, and returns the body.
func (b *Browser) MustGet(t *testing.T, path string) string {
	t.Helper()
	status, body := b.Get(t, path)
	require.Equal(t, http.StatusOK, status, path)
	return body
}
