package dispatch_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/rules"
)

// row returns the worklist row of the delivery id.
func (b *testBundle) row(t *testing.T, list string, id int64) readmodel.DeliveryRow {
	t.Helper()
	page, err := b.views.Deliveries(b.ctx, "test", readmodel.DeliveryFilter{Worklist: list, Limit: 200})
	require.NoError(t, err)
	i := slices.IndexFunc(page.Rows, func(r readmodel.DeliveryRow) bool { return r.ID == id })
	require.GreaterOrEqual(t, i, 0, "delivery %d in %s", id, list)
	return page.Rows[i]
}

// TestReviewChoices: a review row carries what resolves it — the addresses
// to choose among, the postal address for a letter — and one action sends
// to the address chosen. Before (issue #20, item 1), choosing one of two
// known addresses took five steps and a letter waited for an address the
// directory knew.
func TestReviewChoices(t *testing.T) {
	t.Parallel()
	b, dir := setupOutbox(t)
	id := b.receive(t, testReport(t)).ReportID
	jeanRow := delivery(t, b.waitDeliveries(t, id, 4), jean, "mssante")
	row := b.row(t, readmodel.WorklistReview, jeanRow.ID)
	const chosen = "jean.martin@ch-demo.mssante.fr"
	require.ElementsMatch(t, []string{"jean.martin@medecin-demo.mssante.fr", chosen}, row.Choices)
	require.True(t, row.PostalAddress.Known(), "a letter can go where the directory says")
	require.False(t, row.Approvable(), "nothing to approve yet")

	var bad *dispatch.RecipientError
	require.True(t, errors.As(b.svc.SendTo(b.ctx, jeanRow.ID, "alice", "jean@gmail.com"), &bad))
	require.Equal(t, dispatch.ProblemUntrusted, bad.Problem)
	require.True(t, errors.As(b.svc.SendTo(b.ctx, jeanRow.ID, "alice", "jean\r\nbcc: x@y.fr"), &bad))
	require.NoError(t, b.svc.SendTo(b.ctx, jeanRow.ID, "alice", chosen))
	b.statusIs(t, id, chosen, "mssante", dispatch.StatusSent)
	require.Contains(t, recipientsOf(t, dir), chosen)
	require.ErrorIs(t, b.svc.SendTo(b.ctx, jeanRow.ID, "alice", "jean.martin@medecin-demo.mssante.fr"), dispatch.ErrTransition, "sent already")
	records, err := audit.NewLog(b.pool).Read(b.ctx, audit.Filter{Actor: "alice"})
	require.NoError(t, err)
	require.Len(t, records, 1)
	require.Equal(t, "delivery_approved", records[0].Action)
	require.Equal(t, "adresse choisie : "+chosen, records[0].Detail)
	require.Equal(t, 1, b.eventCount(t, jeanRow.ID, dispatch.EventEdited))
	require.Equal(t, 1, b.eventCount(t, jeanRow.ID, dispatch.EventApproved))
}

// TestHeldByRule: a delivery a rule holds says so, with the rule's version
// and what it asks, and a delayed one when it leaves. Before (issue #20,
// items 5 and 6), a held row showed "Adresse MSSanté trouvée dans
// l'annuaire" and a delayed one no date.
func TestHeldByRule(t *testing.T) {
	t.Parallel()
	b, _ := setupOutbox(t)
	b.setRules(t, rules.Rule{Name: "Vérifier la cardio", Match: rules.Match{Services: []string{"CARDIO"}},
		Action: rules.Action{Send: rules.SendReview}},
		rules.Rule{Name: "Attendre la consultation", Action: rules.Action{Send: rules.SendDelay, DelayHours: 48}})
	held := testReport(t)
	held.Service = "CARDIO"
	id := b.receive(t, held).ReportID
	v := b.waitDeliveries(t, id, 4)
	claireRow := delivery(t, v, claire, "mssante")
	require.Equal(t, dispatch.StatusReview, claireRow.Status)
	require.True(t, strings.HasPrefix(claireRow.ReasonText,
		"Retenu par la règle « Vérifier la cardio » (version 1) : le secrétariat vérifie avant l'envoi. Adresse MSSanté"), claireRow.ReasonText)
	require.NotContains(t, delivery(t, v, jean, "mssante").ReasonText, "Retenu", "the resolver holds it, not the rule")

	start := time.Now()
	later := b.receive(t, reportOf(t, "later")).ReportID
	v = b.waitReport(t, later, "scheduled", func(v readmodel.ReportView) bool {
		return len(v.Deliveries) == 4 && delivery(t, v, claire, "mssante").Status == dispatch.StatusScheduled
	})
	scheduled := delivery(t, v, claire, "mssante")
	row := b.row(t, readmodel.WorklistScheduled, scheduled.ID)
	require.NotNil(t, row.ScheduledFor)
	require.WithinDuration(t, start.Add(48*time.Hour), *row.ScheduledFor, time.Minute)
	require.Equal(t, "Attendre la consultation", row.RuleName)
	require.Contains(t, row.ReasonText, "Retenu par la règle « Attendre la consultation » (version 1) : envoi différé de 48 h, jusqu'au "+
		row.ScheduledFor.In(dispatch.Zone).Format("02/01/2006 à 15:04")+".")
	detail, err := b.views.ReportDetail(b.ctx, "test", later)
	require.NoError(t, err)
	for _, rc := range detail.Recipients {
		for _, d := range rc.Deliveries {
			if d.ID == scheduled.ID {
				require.Equal(t, row.ScheduledFor.Unix(), d.ScheduledFor.Unix())
				require.Equal(t, []string{readmodel.ActionSendNow, readmodel.ActionHold, readmodel.ActionPaper, readmodel.ActionCancel}, d.Actions(),
					"sending now is its own action")
			}
		}
	}
}
