package web_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/auth"
)

// screenshotDir is where the browser test leaves the screenshots of the main
// screens (CI keeps the folder as an artifact).
const screenshotDir = "../artifacts/screenshots"

// runScenario runs the browser scenario web/e2e/script (playwright-core in
// Debian's headless Chromium) against b's dashboard, with the environment
// vars (name=value) besides MSSD_URL, MSSD_PASSWORD (testPassword),
// MSSD_SCREENSHOTS and CHROMIUM, and fails t with its output unless it
// succeeds. It needs node, /usr/bin/chromium (or $CHROMIUM) and `npm ci` in
// web/e2e (make test does it).
func runScenario(t *testing.T, b *testBundle, script string, vars ...string) {
	t.Helper()
	node, err := exec.LookPath("node")
	require.NoError(t, err, "the browser test needs Node.js")
	_, err = os.Stat("e2e/node_modules/playwright-core")
	require.NoError(t, err, "run `npm ci` in web/e2e (make test does)")
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	_, err = os.Stat(chromium)
	require.NoError(t, err, "the browser test needs Debian's chromium package")
	shots, err := filepath.Abs(screenshotDir)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("e2e", script))
	cmd.Env = append(os.Environ(), "MSSD_URL="+b.srv.URL, "MSSD_PASSWORD="+testPassword, "MSSD_SCREENSHOTS="+shots,
		"CHROMIUM="+chromium)
	cmd.Env = append(cmd.Env, vars...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s:\n%s", script, out)
	t.Logf("%s: %s(screenshots in %s)", script, out, shots)
}

// TestBrowserDashboard drives the dashboard (web/e2e/dashboard.mjs): log in,
// open the review worklist, edit a recipient, approve, add one and switch it
// to paper, check the statuses and the timeline, screenshot the main screens.
func TestBrowserDashboard(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.importDemo(t)
	b.work(t)
	report := b.reviewReport(t, "browser-1", "CARDIO")
	martin, _ := b.delivery(t, report, "MARTIN", "mssante")
	ctx := context.Background()
	for name, role := range map[string]auth.Role{"alice": auth.RoleSecretary, "root": auth.RoleAdmin} {
		_, err := b.accounts.AddUser(ctx, auth.NewUser{Username: name, Password: testPassword, Role: role})
		require.NoError(t, err)
	}
	runScenario(t, b, "dashboard.mjs", fmt.Sprintf("MSSD_REPORT=%d", report), fmt.Sprintf("MSSD_MARTIN=%d", martin))

	// What the browser did is in the database, with its user.
	var address, status string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT address, status FROM deliveries WHERE id = $1`, martin).Scan(&address, &status))
	require.Equal(t, "jean.martin@ch-demo.mssante.fr", address)
	require.Contains(t, []string{"queued", "sent"}, status)
	_, status = b.delivery(t, report, "LEROUX", "mssante")
	require.Equal(t, "cancelled", status)
	_, status = b.delivery(t, report, "LEROUX", "paper")
	require.Equal(t, "review", status)
	var events []string
	rows, err := b.pool.Query(ctx, `SELECT e.event FROM delivery_events e JOIN deliveries d ON d.id = e.delivery_id
		WHERE d.report_id = $1 AND e.actor = 'alice' ORDER BY e.id`, report)
	require.NoError(t, err)
	for rows.Next() {
		var e string
		require.NoError(t, rows.Scan(&e))
		events = append(events, e)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"edited", "approved", "created", "created", "paper"}, events, "the letter is created, then the email says so")
	entries, err := audit.NewLog(b.pool).Read(ctx, audit.Filter{Actor: "alice", Action: "login"})
	require.NoError(t, err)
	require.NotEmpty(t, entries, "alice's login is in the audit log")
}
