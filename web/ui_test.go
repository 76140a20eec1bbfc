package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
)

// uiClient is a browser of the dashboard (webtest.Browser) on the bundle's server.
type uiClient struct {
	*webtest.Browser
	b *testBundle
}

const testPassword = "correct horse battery"

// login creates the user (unless it exists) and signs in as it.
func (b *testBundle) login(t testing.TB, username string, role auth.Role, services ...string) *uiClient {
	t.Helper()
	_, err := b.accounts.AddUser(context.Background(), auth.NewUser{Username: username, DisplayName: strings.ToUpper(username),
		Password: testPassword, Role: role, Services: services})
	if err != nil {
		require.ErrorIs(t, err, auth.ErrUserExists)
	}
	c := b.anonymous(t)
	c.Login(t, username, testPassword)
	status, body := c.get(t, "/worklists/review")
	require.Equal(t, http.StatusOK, status, body)
	return c
}

// anonymous is a browser that has not signed in.
func (b *testBundle) anonymous(t testing.TB) *uiClient {
	t.Helper()
	return &uiClient{Browser: webtest.New(t, b.srv.URL), b: b}
}

// get, post, send and do are the Browser's.
func (c *uiClient) get(t testing.TB, path string) (int, string) { t.Helper(); return c.Get(t, path) }
func (c *uiClient) post(t testing.TB, path string, form url.Values) (int, string) {
	t.Helper()
	return c.Post(t, path, form)
}
func (c *uiClient) send(t testing.TB, method, path string, form url.Values) (int, string) {
	t.Helper()
	return c.Send(t, method, path, form)
}
func (c *uiClient) do(t testing.TB, method, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	return c.Do(t, method, path, form)
}

// reviewReport posts a report of service whose recipients are: Jean Martin
// (two addresses in the directory: review), Claire Dupont-Demo (one
// address: sent) and an RPPS the directory does not know (review), and
// waits for its deliveries. It returns the report's id.
func (b *testBundle) reviewReport(t testing.TB, key, service string) int64 {
	t.Helper()
	body := `{"patient": {"family": "DURAND", "given": "Léa", "birth_date": "1975-03-02", "sex": "F", "ipp": "IPP-` + key + `"},
		"service": "` + service + `",
		"document": {"cda": "` + b64Document(t, key) + `"},
		"recipients": [{"rpps": "99900000001", "family": "MARTIN", "given": "Jean"},
		               {"rpps": "99900000002", "family": "DUPONT-DEMO", "given": "Claire"},
		               {"rpps": "99900000999", "family": "INCONNU", "given": "Paul"}]}`
	code, resp := b.post(t, key, body)
	require.Equal(t, http.StatusCreated, code, resp)
	var v struct {
		ID int64 `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(resp), &v))
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.pool.QueryRow(context.Background(),
			`SELECT count(*) FROM deliveries WHERE report_id = $1`, v.ID).Scan(&n))
		return n >= 3
	}, 20*time.Second, 50*time.Millisecond)
	return v.ID
}

// delivery returns the id and status of the delivery of report to the
// recipient of that family name on channel.
func (b *testBundle) delivery(t testing.TB, report int64, family, channel string) (int64, string) {
	t.Helper()
	var id int64
	var status string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT d.id, d.status FROM deliveries d
		JOIN recipients r ON r.id = d.recipient_id WHERE d.report_id = $1 AND r.family = $2 AND d.channel = $3`,
		report, family, channel).Scan(&id, &status))
	return id, status
}

func TestDashboardLoggedOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.anonymous(t)
	for _, path := range []string{"/", "/worklists/review", "/reports/1", "/reports/1/document.pdf", "/suggest?q=mar"} {
		status, loc := c.get(t, path)
		require.Equal(t, http.StatusSeeOther, status, path)
		if path != "/" {
			require.Equal(t, "/login?next="+url.QueryEscape(path), loc, path)
		}
	}
	// A logged-out form post is refused (no session, no CSRF pair).
	status, _ := c.send(t, http.MethodPost, "/deliveries/1/approve", url.Values{"csrf_token": {"forged"}})
	require.Equal(t, http.StatusForbidden, status)
	// With a valid pre-session CSRF pair, still no user: 401.
	c.get(t, "/login")
	status, _ = c.post(t, "/deliveries/1/approve", nil)
	require.Equal(t, http.StatusUnauthorized, status)
}

func TestDashboardLogin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.login(t, "alice", auth.RoleSecretary)
	c := b.anonymous(t)
	status, body := c.post(t, "/login", url.Values{"username": {"alice"}, "password": {"wrong password!"}})
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, body, "Identifiant ou mot de passe incorrect")
	status, body = c.post(t, "/login", url.Values{"username": {"alice"}, "password": {testPassword},
		"next": {"https://evil.example/"}})
	require.Equal(t, http.StatusSeeOther, status)
	require.Equal(t, "/", body, "an outside next is not followed")
	status, body = c.get(t, "/worklists/review")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "ALICE")
	// The login form without its CSRF token is refused.
	status, _ = b.anonymous(t).send(t, http.MethodPost, "/login", url.Values{"username": {"alice"}, "password": {testPassword}})
	require.Equal(t, http.StatusForbidden, status)
	// Logout ends the session.
	status, _ = c.post(t, "/logout", nil)
	require.Equal(t, http.StatusSeeOther, status)
	status, _ = c.get(t, "/worklists/review")
	require.Equal(t, http.StatusSeeOther, status)
}

func TestDashboardReviewFlow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.importDemo(t)
	b.work(t)
	report := b.reviewReport(t, "flow-1", "CARDIO")
	martin, status := b.delivery(t, report, "MARTIN", "mssante")
	require.Equal(t, "review", status)

	c := b.login(t, "alice", auth.RoleSecretary)
	status2, body := c.get(t, "/worklists/review")
	require.Equal(t, http.StatusOK, status2)
	require.Contains(t, body, fmt.Sprintf(`id="row-%d"`, martin))
	require.Contains(t, body, "DURAND Léa")
	require.Contains(t, body, `À vérifier <span class="count" aria-label="2 envois">2</span>`)

	status2, body = c.get(t, fmt.Sprintf("/reports/%d", report))
	require.Equal(t, http.StatusOK, status2)
	require.Contains(t, body, "IPP-flow-1")
	require.Contains(t, body, fmt.Sprintf(`/reports/%d/document.pdf`, report))
	status2, pdf := c.get(t, fmt.Sprintf("/reports/%d/document.pdf", report))
	require.Equal(t, http.StatusOK, status2)
	require.True(t, strings.HasPrefix(pdf, "%PDF"), "the report's PDF is served")

	// Jean Martin has two addresses: the secretary picks one and approves.
	status2, body = c.get(t, fmt.Sprintf("/reports/%d?edit=%d&q=martin", report, martin))
	require.Equal(t, http.StatusOK, status2)
	require.Contains(t, body, "jean.martin@ch-demo.mssante.fr")
	status2, _ = c.post(t, fmt.Sprintf("/deliveries/%d/edit", martin), url.Values{"address": {"jean.martin@ch-demo.mssante.fr"}})
	require.Equal(t, http.StatusSeeOther, status2)
	status2, _ = c.post(t, fmt.Sprintf("/deliveries/%d/approve", martin), nil)
	require.Equal(t, http.StatusSeeOther, status2)
	require.Eventually(t, func() bool {
		_, s := b.delivery(t, report, "MARTIN", "mssante")
		return s == "sent"
	}, 20*time.Second, 50*time.Millisecond)

	// A recipient the DPI did not list: an address outside the trust space
	// is refused, and says so; a trusted one gives an email in review.
	add := url.Values{"family": {"LEROUX"}, "given": {"Paul"}, "address": {"paul@gmail.com"}}
	status2, loc := c.post(t, fmt.Sprintf("/reports/%d/recipients", report), add)
	require.Equal(t, http.StatusSeeOther, status2)
	_, body = c.get(t, loc)
	require.Contains(t, body, "hors de l&#39;espace de confiance")
	add.Set("address", "paul.leroux@medecin-demo.mssante.fr")
	status2, _ = c.post(t, fmt.Sprintf("/reports/%d/recipients", report), add)
	require.Equal(t, http.StatusSeeOther, status2)
	leroux, status := b.delivery(t, report, "LEROUX", "mssante")
	require.Equal(t, "review", status)

	// The secretary sends him a letter instead: the email is cancelled, the
	// letter waits for its postal address, then goes to print.
	status2, _ = c.post(t, fmt.Sprintf("/deliveries/%d/paper", leroux), nil)
	require.Equal(t, http.StatusSeeOther, status2)
	_, status = b.delivery(t, report, "LEROUX", "mssante")
	require.Equal(t, "cancelled", status)
	letter, status := b.delivery(t, report, "LEROUX", "paper")
	require.Equal(t, "review", status)
	unknown, status := b.delivery(t, report, "INCONNU", "paper")
	require.Equal(t, "review", status)
	for _, id := range []int64{letter, unknown} {
		status2, _ = c.post(t, fmt.Sprintf("/deliveries/%d/edit", id), url.Values{"name": {"Dr Paul Docteur"},
			"postal_lines": {"12 rue des Lilas"}, "postal_code": {"33000"}, "city": {"Bordeaux"}})
		require.Equal(t, http.StatusSeeOther, status2)
		status2, _ = c.post(t, fmt.Sprintf("/deliveries/%d/approve", id), nil)
		require.Equal(t, http.StatusSeeOther, status2)
	}
	_, status = b.delivery(t, report, "LEROUX", "paper")
	require.Equal(t, "paper_pending", status)
	_, status = b.delivery(t, report, "INCONNU", "paper")
	require.Equal(t, "paper_pending", status)
	_, body = c.get(t, "/worklists/paper")
	require.Contains(t, body, fmt.Sprintf(`id="row-%d"`, letter))

	// Every action is in the timeline with its user.
	_, body = c.get(t, fmt.Sprintf("/reports/%d", report))
	for _, want := range []string{"Destinataire modifié", "Approuvé", "Passé en papier", "par alice",
		"adresse: (aucune) → jean.martin@ch-demo.mssante.fr", "Destinataire ajouté par alice."} {
		require.Contains(t, body, want)
	}
	var users int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM delivery_events e
		JOIN deliveries d ON d.id = e.delivery_id WHERE d.report_id = $1 AND e.actor_kind = 'user' AND e.actor = 'alice'`,
		report).Scan(&users))
	require.Equal(t, 9, users, "Martin: edit, approve; Leroux: added, to paper, letter created, edit, approve; Inconnu: edit, approve")
}

func TestDashboardCSRFAndServices(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.importDemo(t)
	b.work(t)
	cardio := b.reviewReport(t, "svc-1", "CARDIO")
	martin, _ := b.delivery(t, cardio, "MARTIN", "mssante")
	c := b.login(t, "alice", auth.RoleSecretary)

	// A form without the token, or with another session's, is refused and changes nothing.
	status, _ := c.send(t, http.MethodPost, fmt.Sprintf("/deliveries/%d/cancel", martin), url.Values{})
	require.Equal(t, http.StatusForbidden, status)
	other := b.login(t, "bob", auth.RoleSecretary)
	status, _ = c.send(t, http.MethodPost, fmt.Sprintf("/deliveries/%d/cancel", martin), url.Values{"csrf_token": {other.CSRF(t)}})
	require.Equal(t, http.StatusForbidden, status)
	_, s := b.delivery(t, cardio, "MARTIN", "mssante")
	require.Equal(t, "review", s)

	// A secretary of another service sees neither the report nor its deliveries.
	onco := b.login(t, "carole", auth.RoleSecretary, "ONCO")
	status, _ = onco.get(t, fmt.Sprintf("/reports/%d", cardio))
	require.Equal(t, http.StatusNotFound, status)
	status, _ = onco.post(t, fmt.Sprintf("/deliveries/%d/cancel", martin), nil)
	require.Equal(t, http.StatusNotFound, status)
	_, body := onco.get(t, "/worklists/review")
	require.NotContains(t, body, fmt.Sprintf(`id="row-%d"`, martin))
	// A CME member sees but does not act.
	cme := b.login(t, "dr-cme", auth.RoleCME)
	status, _ = cme.get(t, fmt.Sprintf("/reports/%d", cardio))
	require.Equal(t, http.StatusOK, status)
	status, _ = cme.post(t, fmt.Sprintf("/deliveries/%d/cancel", martin), nil)
	require.Equal(t, http.StatusForbidden, status)
	_, s = b.delivery(t, cardio, "MARTIN", "mssante")
	require.Equal(t, "review", s)
}

func TestDashboardSearch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.importDemo(t)
	b.work(t)
	first := b.reviewReport(t, "search-1", "CARDIO")
	b.reviewReport(t, "search-2", "ONCO")
	c := b.login(t, "alice", auth.RoleSecretary)
	count := func(body string) int { return strings.Count(body, `<tr id="row-`) }

	// Each report has 4 deliveries: Martin's email in review, Claire's email
	// and paper copy, the unknown doctor's letter in review.
	_, body := c.get(t, "/worklists/all")
	require.Equal(t, 8, count(body))
	_, body = c.get(t, "/worklists/all?patient=durand+lea&service=CARDIO")
	require.Equal(t, 4, count(body))
	_, body = c.get(t, "/worklists/all?patient=IPP-search-1")
	require.Equal(t, 4, count(body))
	_, body = c.get(t, "/worklists/all?correspondent=dupont")
	require.Equal(t, 4, count(body))
	_, body = c.get(t, "/worklists/all?correspondent=dupont&status=paper_pending")
	require.Equal(t, 2, count(body))
	_, body = c.get(t, "/worklists/all?correspondent=claire.dupont-demo@")
	require.Equal(t, 2, count(body))
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	today := time.Now().In(paris).Format(time.DateOnly)
	_, body = c.get(t, "/worklists/all?from=2000-01-01&to=2000-12-31")
	require.Equal(t, 0, count(body))
	_, body = c.get(t, "/worklists/all?from="+today)
	require.Equal(t, 8, count(body))
	status, body := c.get(t, "/worklists/all?from=hier")
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "date de début invalide")
	status, _ = c.get(t, "/worklists/nope")
	require.Equal(t, http.StatusNotFound, status)

	// Pages of 50: the six fit in one, with no next link (pages: dispatch's TestDeliveriesPages).
	_, body = c.get(t, "/worklists/all")
	require.NotContains(t, body, `rel="next"`)
	_, body = c.get(t, fmt.Sprintf("/reports/%d", first))
	require.Contains(t, body, "IPP-search-1")
}

func TestDashboardJobsUI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	status, _ := b.login(t, "alice", auth.RoleSecretary).get(t, "/admin/jobs/")
	require.Equal(t, http.StatusForbidden, status)
	admin := b.login(t, "root", auth.RoleAdmin)
	status, body := admin.get(t, "/admin/jobs/")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "<html")
	status, body = admin.get(t, "/admin/jobs/api/jobs?state=completed&limit=5")
	require.Equal(t, http.StatusOK, status, body)
	status, _ = b.anonymous(t).get(t, "/admin/jobs/")
	require.Equal(t, http.StatusSeeOther, status)
}

func TestDashboardPaperBatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.importDemo(t)
	b.work(t)
	cardio := b.reviewReport(t, "paper-1", "CARDIO")
	copyID, status := b.delivery(t, cardio, "DUPONT-DEMO", "paper")
	require.Equal(t, "paper_pending", status)
	c := b.login(t, "alice", auth.RoleSecretary)

	unknown, _ := b.delivery(t, cardio, "INCONNU", "paper")
	status2, body := c.get(t, fmt.Sprintf("/deliveries/%d/letter.pdf", unknown))
	require.Equal(t, http.StatusConflict, status2, "no postal address: no letter")
	require.Contains(t, body, "pas d&#39;adresse postale complète")
	status2, body = c.get(t, fmt.Sprintf("/deliveries/%d/letter.pdf", copyID))
	require.Equal(t, http.StatusOK, status2)
	require.True(t, strings.HasPrefix(body, "%PDF"), "a letter alone, to reprint")
	status2, _ = c.post(t, "/paper/batches", nil)
	require.Equal(t, http.StatusSeeOther, status2)
	var batch int64
	require.Eventually(t, func() bool {
		return b.pool.QueryRow(context.Background(), `SELECT id FROM paper_batches`).Scan(&batch) == nil
	}, 30*time.Second, 100*time.Millisecond)
	_, body = c.get(t, "/paper/batches")
	require.Contains(t, body, fmt.Sprintf(`id="batch-%d"`, batch))
	status2, body = c.get(t, fmt.Sprintf("/paper/batches/%d/lot.pdf", batch))
	require.Equal(t, http.StatusOK, status2)
	require.True(t, strings.HasPrefix(body, "%PDF"))

	// Another service's secretary sees neither the batch nor the letter; a CME member cannot post it.
	onco := b.login(t, "carole", auth.RoleSecretary, "ONCO")
	for _, path := range []string{fmt.Sprintf("/paper/batches/%d", batch), fmt.Sprintf("/deliveries/%d/letter.pdf", copyID)} {
		status2, _ = onco.get(t, path)
		require.Equal(t, http.StatusNotFound, status2, path)
	}
	_, body = onco.get(t, "/paper/batches")
	require.NotContains(t, body, fmt.Sprintf(`id="batch-%d"`, batch))
	status2, _ = b.login(t, "dr-cme", auth.RoleCME).post(t, fmt.Sprintf("/paper/batches/%d/posted", batch), nil)
	require.Equal(t, http.StatusForbidden, status2)

	status2, loc := c.post(t, fmt.Sprintf("/paper/batches/%d/posted", batch), nil)
	require.Equal(t, http.StatusSeeOther, status2)
	_, body = c.get(t, loc)
	require.Contains(t, body, fmt.Sprintf("Lot n° %d posté (1 courrier(s)).", batch))
	_, status = b.delivery(t, cardio, "DUPONT-DEMO", "paper")
	require.Equal(t, "paper_sent", status)
}

func TestDashboardProfiler(t *testing.T) {
	t.Parallel()
	b := setup(t)
	status, _ := b.login(t, "alice", auth.RoleSecretary).get(t, "/admin/debug/pprof/heap")
	require.Equal(t, http.StatusForbidden, status)
	admin := b.login(t, "root", auth.RoleAdmin)
	status, body := admin.get(t, "/admin/debug/pprof/")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "goroutine")
	status, body = admin.get(t, "/admin/debug/pprof/goroutine?debug=1")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "goroutine profile:")
}

// TestReportPageWarnings posts an HL7 report whose CORPSMAIL_PS is
// unreadable, as the volet's own examples carry it: the DPI gets an AA with
// a warning, and the secretary finds the warning in the report's history.
func TestReportPageWarnings(t *testing.T) {
	t.Parallel()
	b := setup(t)
	msg := sampleORU(t) + "OBX|2|ED|CORPSMAIL_PS^Corps du mail pour un PS^MetaDMPMSS||^TEXT^^Base64^Q2hlciBjb25mcsOocmUs*||||||F\r"
	code, _, ack := b.call(t, "POST", "/api/v1/hl7", msg)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, ack, "MSA|AA|MSG0001")
	require.Contains(t, ack, "|W||||CORPSMAIL_PS illisible")
	var id int64
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT id FROM reports").Scan(&id))
	c := b.login(t, "alice", auth.RoleSecretary)
	status, page := c.get(t, fmt.Sprintf("/reports/%d", id))
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, page, "Avertissement à la réception")
	require.Contains(t, page, "CORPSMAIL_PS illisible")
	require.Contains(t, page, "le corps du courriel par défaut est utilisé")
}
