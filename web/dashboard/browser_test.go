package dashboard_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
)

// TestBrowserDashboard drives the dashboard (web/e2e/dashboard.mjs): log in,
// open the review worklist, edit a recipient, approve, add one and switch it
// to paper, check the statuses and the timeline, screenshot the main screens.
func TestBrowserDashboard(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	b.Work(t)
	report := b.ReviewReport(t, "browser-1", "CARDIO")
	martin, _ := b.Delivery(t, report, "MARTIN", "mssante")
	ctx := context.Background()
	for name, role := range map[string]auth.Role{"alice": auth.RoleSecretary, "root": auth.RoleAdmin} {
		_, err := b.Accounts.AddUser(ctx, auth.NewUser{Username: name, Password: webtest.Password, Role: role})
		require.NoError(t, err)
	}
	webtest.RunScenario(t, b, "dashboard.mjs", fmt.Sprintf("MSSD_REPORT=%d", report), fmt.Sprintf("MSSD_MARTIN=%d", martin))

	// What the browser did is in the database, with its user.
	var address, status string
	require.NoError(t, b.Pool.QueryRow(ctx, `SELECT address, status FROM deliveries WHERE id = $1`, martin).Scan(&address, &status))
	require.Equal(t, "jean.martin@ch-demo.mssante.fr", address)
	require.Contains(t, []string{"queued", "sent"}, status)
	_, status = b.Delivery(t, report, "LEROUX", "mssante")
	require.Equal(t, "cancelled", status)
	_, status = b.Delivery(t, report, "LEROUX", "paper")
	require.Equal(t, "review", status)
	var events []string
	rows, err := b.Pool.Query(ctx, `SELECT e.event FROM delivery_events e JOIN deliveries d ON d.id = e.delivery_id
		WHERE d.report_id = $1 AND e.actor = 'alice' ORDER BY e.id`, report)
	require.NoError(t, err)
	for rows.Next() {
		var e string
		require.NoError(t, rows.Scan(&e))
		events = append(events, e)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"edited", "approved", "created", "created", "paper"}, events, "the letter is created, then the email says so")
	entries, err := audit.NewLog(b.Pool).Read(ctx, audit.Filter{Actor: "alice", Action: "login"})
	require.NoError(t, err)
	require.NotEmpty(t, entries, "alice's login is in the audit log")
}
