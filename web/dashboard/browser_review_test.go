package dashboard_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
)

// reviewRules hold the CARDIO reports for a secretary and delay the ONCO
// ones by a day, as a CME would.
const reviewRules = `rules:
  - name: Relire la cardio
    match:
      services: [CARDIO]
    action:
      send: review
  - name: Délai onco
    match:
      services: [ONCO]
    action:
      send: delay
      delay_hours: 24
`

// setupReview is setup with the demo directory, the reviewRules in force
// and a report of each of their services, whose ids it returns.
func setupReview(t *testing.T) (b *webtest.Server, cardio, onco int64) {
	t.Helper()
	b = webtest.Setup(t)
	b.ImportDemo(t)
	b.Work(t)
	code, _, body := b.Call(t, "PUT", "/api/v1/rules", reviewRules, "Content-Type", "application/yaml")
	require.Equal(t, http.StatusOK, code, body)
	return b, b.ReviewReport(t, "review-1", "CARDIO"), b.ReviewReport(t, "review-2", "ONCO")
}

// TestBrowserReview is issue #20, items 1, 2, 4, 5 and 6, as a secretary
// works (web/e2e/review.mjs): each review row offers what resolves it (the
// known addresses, a letter to the known postal address, the address to
// complete), the rule holding a row says so, a delayed row says when it
// leaves and "envoyer maintenant" asks first, and ticked rows are approved
// at once; at 1366×768 and 800 px.
func TestBrowserReview(t *testing.T) {
	t.Parallel()
	b, cardio, onco := setupReview(t)
	martin, _ := b.Delivery(t, cardio, "MARTIN", "mssante")
	inconnu, _ := b.Delivery(t, cardio, "INCONNU", "paper")
	martinOnco, _ := b.Delivery(t, onco, "MARTIN", "mssante")
	claire, _ := b.Delivery(t, cardio, "DUPONT-DEMO", "mssante")
	claireLetter, _ := b.Delivery(t, cardio, "DUPONT-DEMO", "paper")
	delayed, _ := b.Delivery(t, onco, "DUPONT-DEMO", "mssante")
	b.Login(t, "alice", auth.RoleSecretary)
	webtest.RunScenario(t, b, "review.mjs", fmt.Sprintf("MSSD_MARTIN=%d", martin), fmt.Sprintf("MSSD_INCONNU=%d", inconnu),
		fmt.Sprintf("MSSD_CLAIRE=%d", claire), fmt.Sprintf("MSSD_CLAIRE_LETTER=%d", claireLetter), fmt.Sprintf("MSSD_DELAYED=%d", delayed),
		fmt.Sprintf("MSSD_MARTIN_ONCO=%d", martinOnco))

	// What the browser did is in the database.
	_, address := b.DeliveryAddress(t, cardio, "MARTIN")
	require.Equal(t, "jean.martin@ch-demo.mssante.fr", address)
	for _, d := range []struct {
		report  int64
		family  string
		channel string
		want    []string
	}{
		{cardio, "MARTIN", "mssante", []string{"queued", "sent"}},
		{cardio, "DUPONT-DEMO", "mssante", []string{"queued", "sent"}},
		{cardio, "DUPONT-DEMO", "paper", []string{"paper_pending"}},
		{cardio, "INCONNU", "paper", []string{"review"}},
		{onco, "MARTIN", "mssante", []string{"cancelled"}},
		{onco, "MARTIN", "paper", []string{"paper_pending"}},
		{onco, "DUPONT-DEMO", "mssante", []string{"queued", "sent"}},
	} {
		_, status := b.Delivery(t, d.report, d.family, d.channel)
		require.Contains(t, d.want, status, "%s %s", d.family, d.channel)
	}
}
