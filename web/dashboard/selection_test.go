package dashboard_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
)

// TestReviewRowResolvesItsReason: each review row offers the actions that
// resolve its reason, and none that cannot succeed. Before (issue #20,
// item 1), every row offered "Approuver", which answered "Pas d'adresse
// où envoyer" on most of them.
func TestReviewRowResolvesItsReason(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	b.Work(t)
	alice := b.Login(t, "alice", auth.RoleSecretary)
	report := b.ReviewReport(t, "rows-1", "CARDIO")
	martin, _ := b.Delivery(t, report, "MARTIN", "mssante")
	inconnu, _ := b.Delivery(t, report, "INCONNU", "paper")

	page := alice.MustGet(t, "/worklists/review")
	martinRow := rowOf(t, page, martin)
	require.Contains(t, martinRow, "Envoyer à jean.martin@medecin-demo.mssante.fr")
	require.Contains(t, martinRow, "Envoyer à jean.martin@ch-demo.mssante.fr")
	require.NotContains(t, martinRow, fmt.Sprintf(`action="/deliveries/%d/approve"`, martin), "nothing to approve without an address")
	require.Contains(t, martinRow, "Envoyer par courrier à ")
	inconnuRow := rowOf(t, page, inconnu)
	require.NotContains(t, inconnuRow, "/approve")
	require.Contains(t, inconnuRow, "Compléter l'adresse")

	// One click on the address: the email goes.
	status, _ := alice.Post(t, fmt.Sprintf("/deliveries/%d/send-to", martin),
		url.Values{"address": {"jean.martin@ch-demo.mssante.fr"}, "back": {"/worklists/review"}})
	require.Equal(t, http.StatusSeeOther, status)
	require.Contains(t, alice.MustGet(t, "/worklists/review"), "Envoi à jean.martin@ch-demo.mssante.fr approuvé.")
	_, address := b.DeliveryAddress(t, report, "MARTIN")
	require.Equal(t, "jean.martin@ch-demo.mssante.fr", address)
}

// TestSelection: a secretary approves or cancels the rows she ticks in one
// go and reads what was done and what was not; printing the ticked letters
// gives one PDF. Before (issue #20, item 2), each row took its own clicks.
func TestSelection(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	b.Work(t)
	alice := b.Login(t, "alice", auth.RoleSecretary, "CARDIO")
	var ready []string
	var reports []int64
	for i := range 3 {
		report := b.ReviewReport(t, fmt.Sprintf("sel-%d", i), "CARDIO")
		reports = append(reports, report)
		id, _ := b.Delivery(t, report, "DUPONT-DEMO", "paper")
		ready = append(ready, fmt.Sprint(id))
	}
	pneumo := b.ReviewReport(t, "sel-pneumo", "PNEUMO")
	other, _ := b.Delivery(t, pneumo, "DUPONT-DEMO", "paper")
	noAddress, _ := b.Delivery(t, reports[0], "INCONNU", "paper")

	// Print the letters ticked: one PDF.
	resp, pdf := alice.Do(t, http.MethodPost, "/worklists/paper/selection", url.Values{"csrf_token": {alice.CSRF(t)},
		"action": {"print"}, "ids": ready})
	require.Equal(t, http.StatusOK, resp.StatusCode, pdf)
	require.Equal(t, "application/pdf", resp.Header.Get("Content-Type"))
	require.True(t, strings.HasPrefix(pdf, "%PDF"))

	// A letter of another service is not hers: nothing is printed, and why.
	status, _ := alice.Post(t, "/worklists/paper/selection", url.Values{"action": {"print"}, "ids": append(ready, fmt.Sprint(other))})
	require.Equal(t, http.StatusSeeOther, status)
	page := alice.MustGet(t, "/worklists/paper")
	require.Contains(t, page, fmt.Sprintf("Rien n&#39;est imprimé. n° %d : introuvable, ou d&#39;un service qui n&#39;est pas le vôtre.", other))

	// Cancel three, one of which cannot be: two done, one said.
	hold, _ := b.Delivery(t, reports[1], "MARTIN", "mssante")
	status, _ = alice.Post(t, "/worklists/review/selection", url.Values{"action": {"cancel"}, "why": {"doublon"},
		"ids": {fmt.Sprint(noAddress), fmt.Sprint(hold), "999999"}, "back": {"/worklists/review"}})
	require.Equal(t, http.StatusSeeOther, status)
	page = alice.MustGet(t, "/worklists/review")
	require.Contains(t, page, "2 envoi(s) annulé(s). 1 non traité(s) : n° 999999 : introuvable")
	_, st := b.Delivery(t, reports[0], "INCONNU", "paper")
	require.Equal(t, "cancelled", st)

	// Approve a letter held back and an email without address: one done, one said.
	status, _ = alice.Post(t, "/deliveries/"+ready[2]+"/hold", url.Values{"why": {"à relire"}})
	require.Equal(t, http.StatusSeeOther, status)
	martin, _ := b.Delivery(t, reports[2], "MARTIN", "mssante")
	status, _ = alice.Post(t, "/worklists/review/selection", url.Values{"action": {"approve"},
		"ids": {ready[2], fmt.Sprint(martin)}, "back": {"/worklists/review"}})
	require.Equal(t, http.StatusSeeOther, status)
	require.Contains(t, alice.MustGet(t, "/worklists/review"),
		fmt.Sprintf("1 envoi(s) approuvé(s). 1 non traité(s) : n° %d : Pas d&#39;adresse où envoyer: modifiez d&#39;abord le destinataire.", martin))
	_, st = b.Delivery(t, reports[2], "DUPONT-DEMO", "paper")
	require.Equal(t, "paper_pending", st)

	// Without a reason, no cancel; without a row, nothing.
	status, _ = alice.Post(t, "/worklists/review/selection", url.Values{"action": {"cancel"}, "ids": ready})
	require.Equal(t, http.StatusSeeOther, status)
	require.Contains(t, alice.MustGet(t, "/worklists/review"), "Donnez le motif de l&#39;annulation.")
	status, _ = alice.Post(t, "/worklists/review/selection", url.Values{"action": {"approve"}})
	require.Equal(t, http.StatusSeeOther, status)
	require.Contains(t, alice.MustGet(t, "/worklists/review"), "Aucun envoi sélectionné")
}

// rowOf is the HTML of the worklist row of delivery id in page.
func rowOf(t *testing.T, page string, id int64) string {
	t.Helper()
	start := strings.Index(page, fmt.Sprintf(`<tr id="row-%d"`, id))
	require.GreaterOrEqual(t, start, 0, "row %d", id)
	end := strings.Index(page[start:], "</tr>")
	return page[start : start+end]
}
