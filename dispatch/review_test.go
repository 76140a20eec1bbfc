package dispatch_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/rules"
)

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
	row := b.env.Row(t, readmodel.WorklistScheduled, scheduled.ID)
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
