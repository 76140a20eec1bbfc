package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
)

// TestBatchPagePatients: a batch's page shows each letter's patient, and
// reading it is in the audit log, once per letter with its report and
// delivery, for the users who see the batch's service only; another
// service's secretary gets a 404 and leaves no trace of patient data read.
// Before, the page showed the recipients only, and its reading was not
// audited.
func TestBatchPagePatients(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	b.Work(t)
	report := b.ReviewReport(t, "batch-page", "CARDIO")
	letter, _ := b.Delivery(t, report, "DUPONT-DEMO", "paper")
	alice := b.Login(t, "alice", auth.RoleSecretary, "CARDIO")
	status, _ := alice.Post(t, "/paper/batches", nil)
	require.Equal(t, http.StatusSeeOther, status)
	var batch int64
	require.Eventually(t, func() bool {
		return b.Pool.QueryRow(context.Background(), `SELECT id FROM paper_batches`).Scan(&batch) == nil
	}, 30*time.Second, 100*time.Millisecond)
	path := fmt.Sprintf("/paper/batches/%d", batch)

	carole := b.Login(t, "carole", auth.RoleSecretary, "ONCO")
	status, _ = carole.Get(t, path)
	require.Equal(t, http.StatusNotFound, status)
	require.Empty(t, b.AuditEntries(t, "report_viewed"), "nothing was shown to carole")

	page := alice.MustGet(t, path)
	require.Contains(t, page, "DURAND Léa<br><small>née le 02/03/1975 · IPP IPP-batch-page</small>")
	entries := b.AuditEntries(t, "report_viewed")
	require.Len(t, entries, 1)
	e := entries[0].Entry
	require.Equal(t, "alice", e.Actor)
	require.Equal(t, fmt.Sprintf("batch:%d", batch), e.Object)
	require.Equal(t, report, e.ReportID)
	require.Equal(t, letter, e.DeliveryID)
}
