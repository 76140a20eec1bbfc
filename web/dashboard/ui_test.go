package dashboard_test

import (
	"context"
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

func TestDashboardReviewFlow(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	b.Work(t)
	report := b.ReviewReport(t, "flow-1", "CARDIO")
	martin, status := b.Delivery(t, report, "MARTIN", "mssante")
	require.Equal(t, "review", status)

	c := b.Login(t, "alice", auth.RoleSecretary)
	status2, body := c.Get(t, "/worklists/review")
	require.Equal(t, http.StatusOK, status2)
	require.Contains(t, body, fmt.Sprintf(`id="row-%d"`, martin))
	require.Contains(t, body, "DURAND Léa")
	require.Contains(t, body, `À vérifier <span class="count" aria-label="2 envois">2</span>`)

	status2, body = c.Get(t, fmt.Sprintf("/reports/%d", report))
	require.Equal(t, http.StatusOK, status2)
	require.Contains(t, body, "IPP-flow-1")
	require.Contains(t, body, fmt.Sprintf(`/reports/%d/document.pdf`, report))
	status2, pdf := c.Get(t, fmt.Sprintf("/reports/%d/document.pdf", report))
	require.Equal(t, http.StatusOK, status2)
	require.True(t, strings.HasPrefix(pdf, "%PDF"), "the report's PDF is served")

	// Jean Martin has two addresses: the secretary picks one and approves.
	status2, body = c.Get(t, fmt.Sprintf("/reports/%d?edit=%d&q=martin", report, martin))
	require.Equal(t, http.StatusOK, status2)
	require.Contains(t, body, "jean.martin@ch-demo.mssante.fr")
	status2, _ = c.Post(t, fmt.Sprintf("/deliveries/%d/edit", martin), url.Values{"address": {"jean.martin@ch-demo.mssante.fr"}})
	require.Equal(t, http.StatusSeeOther, status2)
	status2, _ = c.Post(t, fmt.Sprintf("/deliveries/%d/approve", martin), nil)
	require.Equal(t, http.StatusSeeOther, status2)
	require.Eventually(t, func() bool {
		_, s := b.Delivery(t, report, "MARTIN", "mssante")
		return s == "sent"
	}, 20*time.Second, 50*time.Millisecond)

	// A recipient the DPI did not list: an address outside the trust space
	// is refused, and says so; a trusted one gives an email in review.
	add := url.Values{"family": {"LEROUX"}, "given": {"Paul"}, "address": {"paul@gmail.com"}}
	status2, loc := c.Post(t, fmt.Sprintf("/reports/%d/recipients", report), add)
	require.Equal(t, http.StatusSeeOther, status2)
	_, body = c.Get(t, loc)
	require.Contains(t, body, "hors de l&#39;espace de confiance")
	add.Set("address", "paul.leroux@medecin-demo.mssante.fr")
	status2, _ = c.Post(t, fmt.Sprintf("/reports/%d/recipients", report), add)
	require.Equal(t, http.StatusSeeOther, status2)
	leroux, status := b.Delivery(t, report, "LEROUX", "mssante")
	require.Equal(t, "review", status)

	// The secretary sends him a letter instead: the email is cancelled, the
	// letter waits for its postal address, then goes to print.
	status2, _ = c.Post(t, fmt.Sprintf("/deliveries/%d/paper", leroux), nil)
	require.Equal(t, http.StatusSeeOther, status2)
	_, status = b.Delivery(t, report, "LEROUX", "mssante")
	require.Equal(t, "cancelled", status)
	letter, status := b.Delivery(t, report, "LEROUX", "paper")
	require.Equal(t, "review", status)
	unknown, status := b.Delivery(t, report, "INCONNU", "paper")
	require.Equal(t, "review", status)
	for _, id := range []int64{letter, unknown} {
		status2, _ = c.Post(t, fmt.Sprintf("/deliveries/%d/edit", id), url.Values{"name": {"Dr Paul Docteur"},
			"postal_lines": {"12 rue des Lilas"}, "postal_code": {"33000"}, "city": {"Bordeaux"}})
		require.Equal(t, http.StatusSeeOther, status2)
		status2, _ = c.Post(t, fmt.Sprintf("/deliveries/%d/approve", id), nil)
		require.Equal(t, http.StatusSeeOther, status2)
	}
	_, status = b.Delivery(t, report, "LEROUX", "paper")
	require.Equal(t, "paper_pending", status)
	_, status = b.Delivery(t, report, "INCONNU", "paper")
	require.Equal(t, "paper_pending", status)
	_, body = c.Get(t, "/worklists/paper")
	require.Contains(t, body, fmt.Sprintf(`id="row-%d"`, letter))

	// Every action is in the timeline with its user.
	_, body = c.Get(t, fmt.Sprintf("/reports/%d", report))
	for _, want := range []string{"Destinataire modifié", "Approuvé", "Passé en papier", "par alice",
		"adresse: (aucune) → jean.martin@ch-demo.mssante.fr", "Destinataire ajouté par alice."} {
		require.Contains(t, body, want)
	}
	var users int
	require.NoError(t, b.Pool.QueryRow(context.Background(), `SELECT count(*) FROM delivery_events e
		JOIN deliveries d ON d.id = e.delivery_id WHERE d.report_id = $1 AND e.actor_kind = 'user' AND e.actor = 'alice'`,
		report).Scan(&users))
	require.Equal(t, 9, users, "Martin: edit, approve; Leroux: added, to paper, letter created, edit, approve; Inconnu: edit, approve")
}

func TestDashboardCSRFAndServices(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	b.Work(t)
	cardio := b.ReviewReport(t, "svc-1", "CARDIO")
	martin, _ := b.Delivery(t, cardio, "MARTIN", "mssante")
	c := b.Login(t, "alice", auth.RoleSecretary)

	// A form without the token, or with another session's, is refused and changes nothing.
	status, _ := c.Send(t, http.MethodPost, fmt.Sprintf("/deliveries/%d/cancel", martin), url.Values{})
	require.Equal(t, http.StatusForbidden, status)
	other := b.Login(t, "bob", auth.RoleSecretary)
	status, _ = c.Send(t, http.MethodPost, fmt.Sprintf("/deliveries/%d/cancel", martin), url.Values{"csrf_token": {other.CSRF(t)}})
	require.Equal(t, http.StatusForbidden, status)
	_, s := b.Delivery(t, cardio, "MARTIN", "mssante")
	require.Equal(t, "review", s)

	// A secretary of another service sees neither the report nor its deliveries.
	onco := b.Login(t, "carole", auth.RoleSecretary, "ONCO")
	status, _ = onco.Get(t, fmt.Sprintf("/reports/%d", cardio))
	require.Equal(t, http.StatusNotFound, status)
	status, _ = onco.Post(t, fmt.Sprintf("/deliveries/%d/cancel", martin), nil)
	require.Equal(t, http.StatusNotFound, status)
	_, body := onco.Get(t, "/worklists/review")
	require.NotContains(t, body, fmt.Sprintf(`id="row-%d"`, martin))
	// A CME member sees but does not act.
	cme := b.Login(t, "dr-cme", auth.RoleCME)
	status, _ = cme.Get(t, fmt.Sprintf("/reports/%d", cardio))
	require.Equal(t, http.StatusOK, status)
	status, _ = cme.Post(t, fmt.Sprintf("/deliveries/%d/cancel", martin), nil)
	require.Equal(t, http.StatusForbidden, status)
	_, s = b.Delivery(t, cardio, "MARTIN", "mssante")
	require.Equal(t, "review", s)
}

func TestDashboardSearch(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	b.Work(t)
	first := b.ReviewReport(t, "search-1", "CARDIO")
	b.ReviewReport(t, "search-2", "ONCO")
	c := b.Login(t, "alice", auth.RoleSecretary)
	count := func(body string) int { return strings.Count(body, `<tr id="row-`) }

	// Each report has 4 deliveries: Martin's email in review, Claire's email
	// and paper copy, the unknown doctor's letter in review.
	_, body := c.Get(t, "/worklists/all")
	require.Equal(t, 8, count(body))
	_, body = c.Get(t, "/worklists/all?patient=durand+lea&service=CARDIO")
	require.Equal(t, 4, count(body))
	_, body = c.Get(t, "/worklists/all?patient=IPP-search-1")
	require.Equal(t, 4, count(body))
	_, body = c.Get(t, "/worklists/all?correspondent=dupont")
	require.Equal(t, 4, count(body))
	_, body = c.Get(t, "/worklists/all?correspondent=dupont&status=paper_pending")
	require.Equal(t, 2, count(body))
	_, body = c.Get(t, "/worklists/all?correspondent=claire.dupont-demo@")
	require.Equal(t, 2, count(body))
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	today := time.Now().In(paris).Format(time.DateOnly)
	_, body = c.Get(t, "/worklists/all?from=2000-01-01&to=2000-12-31")
	require.Equal(t, 0, count(body))
	_, body = c.Get(t, "/worklists/all?from="+today)
	require.Equal(t, 8, count(body))
	status, body := c.Get(t, "/worklists/all?from=hier")
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "date de début invalide")
	status, _ = c.Get(t, "/worklists/nope")
	require.Equal(t, http.StatusNotFound, status)

	// Pages of 50: the six fit in one, with no next link (pages: dispatch's TestDeliveriesPages).
	_, body = c.Get(t, "/worklists/all")
	require.NotContains(t, body, `rel="next"`)
	_, body = c.Get(t, fmt.Sprintf("/reports/%d", first))
	require.Contains(t, body, "IPP-search-1")
}

func TestDashboardPaperBatches(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	b.Work(t)
	cardio := b.ReviewReport(t, "paper-1", "CARDIO")
	copyID, status := b.Delivery(t, cardio, "DUPONT-DEMO", "paper")
	require.Equal(t, "paper_pending", status)
	c := b.Login(t, "alice", auth.RoleSecretary)

	unknown, _ := b.Delivery(t, cardio, "INCONNU", "paper")
	status2, body := c.Get(t, fmt.Sprintf("/deliveries/%d/letter.pdf", unknown))
	require.Equal(t, http.StatusConflict, status2, "no postal address: no letter")
	require.Contains(t, body, "pas d&#39;adresse postale complète")
	status2, body = c.Get(t, fmt.Sprintf("/deliveries/%d/letter.pdf", copyID))
	require.Equal(t, http.StatusOK, status2)
	require.True(t, strings.HasPrefix(body, "%PDF"), "a letter alone, to reprint")
	status2, _ = c.Post(t, "/paper/batches", nil)
	require.Equal(t, http.StatusSeeOther, status2)
	var batch int64
	require.Eventually(t, func() bool {
		return b.Pool.QueryRow(context.Background(), `SELECT id FROM paper_batches`).Scan(&batch) == nil
	}, 30*time.Second, 100*time.Millisecond)
	_, body = c.Get(t, "/paper/batches")
	require.Contains(t, body, fmt.Sprintf(`id="batch-%d"`, batch))
	status2, body = c.Get(t, fmt.Sprintf("/paper/batches/%d/lot.pdf", batch))
	require.Equal(t, http.StatusOK, status2)
	require.True(t, strings.HasPrefix(body, "%PDF"))

	// Another service's secretary sees neither the batch nor the letter; a CME member cannot post it.
	onco := b.Login(t, "carole", auth.RoleSecretary, "ONCO")
	for _, path := range []string{fmt.Sprintf("/paper/batches/%d", batch), fmt.Sprintf("/deliveries/%d/letter.pdf", copyID)} {
		status2, _ = onco.Get(t, path)
		require.Equal(t, http.StatusNotFound, status2, path)
	}
	_, body = onco.Get(t, "/paper/batches")
	require.NotContains(t, body, fmt.Sprintf(`id="batch-%d"`, batch))
	status2, _ = b.Login(t, "dr-cme", auth.RoleCME).Post(t, fmt.Sprintf("/paper/batches/%d/posted", batch), nil)
	require.Equal(t, http.StatusForbidden, status2)

	status2, loc := c.Post(t, fmt.Sprintf("/paper/batches/%d/posted", batch), nil)
	require.Equal(t, http.StatusSeeOther, status2)
	_, body = c.Get(t, loc)
	require.Contains(t, body, fmt.Sprintf("Lot n° %d posté (1 courrier(s)).", batch))
	_, status = b.Delivery(t, cardio, "DUPONT-DEMO", "paper")
	require.Equal(t, "paper_sent", status)
}

// TestReportPageWarnings posts an HL7 report whose CORPSMAIL_PS is
// unreadable, as the volet's own examples carry it: the DPI gets an AA with
// a warning, and the secretary finds the warning in the report's history.
func TestReportPageWarnings(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	msg := webtest.SampleORU(t) + "OBX|2|ED|CORPSMAIL_PS^Corps du mail pour un PS^MetaDMPMSS||^TEXT^^Base64^Q2hlciBjb25mcsOocmUs*||||||F\r"
	code, _, ack := b.Call(t, "POST", "/api/v1/hl7", msg)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, ack, "MSA|AA|MSG0001")
	require.Contains(t, ack, "|W||||CORPSMAIL_PS illisible")
	var id int64
	require.NoError(t, b.Pool.QueryRow(context.Background(), "SELECT id FROM reports").Scan(&id))
	c := b.Login(t, "alice", auth.RoleSecretary)
	status, page := c.Get(t, fmt.Sprintf("/reports/%d", id))
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, page, "Avertissement à la réception")
	require.Contains(t, page, "CORPSMAIL_PS illisible")
	require.Contains(t, page, "le corps du courriel par défaut est utilisé")
}
