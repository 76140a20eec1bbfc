package dispatch_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/rules"
)

func TestDeliveriesPages(t *testing.T) {
	t.Parallel()
	b, _ := setupOutbox(t)
	b.env.WorklistReports(t)

	all, err := b.views.Deliveries(b.ctx, "test", readmodel.DeliveryFilter{Limit: 200})
	require.NoError(t, err)
	require.Empty(t, all.Next)
	require.Greater(t, len(all.Rows), 6)
	var paged []int64
	f := readmodel.DeliveryFilter{Limit: 2}
	for pages := 0; ; pages++ {
		require.Less(t, pages, len(all.Rows), "the pages end")
		page, err := b.views.Deliveries(b.ctx, "test", f)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Rows), 2)
		for _, r := range page.Rows {
			paged = append(paged, r.ID)
		}
		if page.Next == "" {
			break
		}
		f.After = page.Next
	}
	var want []int64
	for _, r := range all.Rows {
		want = append(want, r.ID)
	}
	require.Equal(t, want, paged, "the pages are the whole list, newest first, without overlap")
	require.True(t, slices.IsSortedFunc(want, func(a, b int64) int { return int(b - a) }))

	onco, err := b.views.Deliveries(b.ctx, "test", readmodel.DeliveryFilter{Services: []string{"ONCO"}, Limit: 200})
	require.NoError(t, err)
	require.Len(t, onco.Rows, len(all.Rows)/3)
	for _, r := range onco.Rows {
		require.Equal(t, "ONCO", r.Service)
	}
	byIPP, err := b.views.Deliveries(b.ctx, "test", readmodel.DeliveryFilter{Patient: "IPP-b"})
	require.NoError(t, err)
	require.Len(t, byIPP.Rows, len(all.Rows)/3)
	byName, err := b.views.Deliveries(b.ctx, "test", readmodel.DeliveryFilter{Patient: "Dupônt  m"})
	require.NoError(t, err)
	require.Len(t, byName.Rows, len(all.Rows), "accents, case and spaces ignored")
	none, err := b.views.Deliveries(b.ctx, "test", readmodel.DeliveryFilter{Patient: "dupond"})
	require.NoError(t, err)
	require.Empty(t, none.Rows)
	byAddress, err := b.views.Deliveries(b.ctx, "test", readmodel.DeliveryFilter{Correspondent: "JULIE.ROUX@"})
	require.NoError(t, err)
	require.Len(t, byAddress.Rows, 3)
	percent, err := b.views.Deliveries(b.ctx, "test", readmodel.DeliveryFilter{Correspondent: "%"})
	require.NoError(t, err)
	require.Empty(t, percent.Rows, "LIKE wildcards are literal")

	review, err := b.views.Deliveries(b.ctx, "test", readmodel.DeliveryFilter{Worklist: readmodel.WorklistReview})
	require.NoError(t, err)
	require.Len(t, review.Rows, 3)
	counts, err := b.views.WorklistCounts(b.ctx, nil)
	require.NoError(t, err)
	require.EqualValues(t, 3, counts[readmodel.WorklistReview])
	counts, err = b.views.WorklistCounts(b.ctx, []string{"ONCO"})
	require.NoError(t, err)
	require.EqualValues(t, 1, counts[readmodel.WorklistReview])

	for _, bad := range []readmodel.DeliveryFilter{{Worklist: "nope"}, {After: "!!"}, {After: "-1"}, {Status: "lost"}} {
		_, err := b.views.Deliveries(b.ctx, "test", bad)
		require.ErrorIs(t, err, readmodel.ErrBadFilter, "%+v", bad)
	}
}

// TestWorklistMetric checks mssdispatch_worklist against worklists of known
// contents, and that it counts what the dashboard lists and its menu counts.
func TestWorklistMetric(t *testing.T) {
	t.Parallel()
	b, _ := setupOutbox(t)
	collector := readmodel.NewWorklistCollector(b.pool)
	requireWorklists := func(want map[string]int64) {
		t.Helper()
		counts, err := b.views.WorklistCounts(b.ctx, nil)
		require.NoError(t, err)
		require.Equal(t, want, counts, "the menu's counts")
		var exposition strings.Builder
		exposition.WriteString("# HELP mssdispatch_worklist Deliveries in each worklist of the dashboard (review, failed, paper, scheduled).\n" +
			"# TYPE mssdispatch_worklist gauge\n")
		for list, n := range want {
			page, err := b.views.Deliveries(b.ctx, "test", readmodel.DeliveryFilter{Worklist: list, Limit: 200})
			require.NoError(t, err)
			require.Len(t, page.Rows, int(n), "the %s list", list)
			fmt.Fprintf(&exposition, "mssdispatch_worklist{list=%q} %d\n", list, n)
		}
		require.NoError(t, testutil.CollectAndCompare(collector, strings.NewReader(exposition.String())))
	}
	requireWorklists(map[string]int64{readmodel.WorklistReview: 0, readmodel.WorklistFailed: 0,
		readmodel.WorklistPaper: 0, readmodel.WorklistScheduled: 0})

	// Jean's email in review, Claire's paper copy to print; Julie's email
	// fails (its fallback goes to print) and gets a reply, Claire's a reply.
	rc := b.receive(t, testReport(t)).ReportID
	claireD := b.statusIs(t, rc, claire, "mssante", dispatch.StatusSent)
	julieD := b.statusIs(t, rc, julie, "mssante", dispatch.StatusSent)
	require.NoError(t, b.svc.Acknowledge(b.ctx, julieD.ID, dispatch.AckFailed, "DSN failed 5.1.1"))
	b.statusIs(t, rc, "Julie ROUX", "paper", dispatch.StatusPaperPending)
	require.NoError(t, b.svc.Acknowledge(b.ctx, julieD.ID, dispatch.AckReply, "réponse"))
	require.NoError(t, b.svc.Acknowledge(b.ctx, claireD.ID, dispatch.AckReply, "réponse"))
	// A report under a delay: its three addressed deliveries wait, Jean's
	// email is in review.
	b.setRules(t, rules.Rule{Name: "délai", Action: rules.Action{Send: rules.SendDelay, DelayHours: 2}})
	delayed := testReport(t)
	setDocumentID(t, &delayed, delayed.Document.ID+"b")
	rd := b.receive(t, delayed).ReportID
	b.waitReport(t, rd, "resolved", func(v readmodel.ReportView) bool { return v.Status == dispatch.ReportResolved })

	requireWorklists(map[string]int64{readmodel.WorklistReview: 2, readmodel.WorklistFailed: 2,
		readmodel.WorklistPaper: 2, readmodel.WorklistScheduled: 3})
}
