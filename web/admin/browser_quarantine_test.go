package admin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
)

// TestBrowserQuarantine drives the quarantine as a secretary of cardiology
// (web/e2e/quarantine.mjs), at 1366×768 then 800 px: she reads when each
// refused message came, from which application, about whom and what, why
// in French and whom to call; she processes again a replacement whose
// original the DPI sent since, and opens its report; she processes again a
// message still wrong, then sets it aside saying why. A message of
// pneumology shows her neither its patient nor an action.
func TestBrowserQuarantine(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	sendHL7(t, b, sent(replacementORU(t), "RPLC-A", "CARDIO"), "AE")
	insMismatch := strings.Replace(webtest.SampleORU(t), "PID|1||280017512345678^", "PID|1||299127512300012^", 1)
	sendHL7(t, b, sent(insMismatch, "INS-B", "CARDIO"), "AE")
	sendHL7(t, b, sent(insMismatch, "PNEUMO-C", "PNEUMO"), "AE")
	sendHL7(t, b, sent(webtest.SampleORU(t), "ORIG-A", "CARDIO"), "AA") // the original the replacement needed
	ctx := context.Background()
	_, err := b.Accounts.AddUser(ctx, auth.NewUser{Username: "alice", Password: webtest.Password, Role: auth.RoleSecretary,
		Services: []string{"CARDIO"}})
	require.NoError(t, err)
	replacement, wrong := quarantineID(t, b, "RPLC-A"), quarantineID(t, b, "INS-B")
	webtest.RunScenario(t, b, "quarantine.mjs", fmt.Sprintf("MSSD_REPLACEMENT=%d", replacement), fmt.Sprintf("MSSD_WRONG=%d", wrong),
		fmt.Sprintf("MSSD_OTHER=%d", quarantineID(t, b, "PNEUMO-C")))

	// What the browser did is in the database, by alice, and audited.
	var status, actor, note string
	var report int64
	require.NoError(t, b.Pool.QueryRow(ctx, `SELECT status, acted_by, coalesce(report_id, 0) FROM quarantine WHERE id = $1`,
		replacement).Scan(&status, &actor, &report))
	require.Equal(t, []any{"accepted", "alice"}, []any{status, actor})
	var action string
	require.NoError(t, b.Pool.QueryRow(ctx, `SELECT action FROM reports WHERE id = $1`, report).Scan(&action))
	require.Equal(t, "replace", action)
	require.NoError(t, b.Pool.QueryRow(ctx, `SELECT status, acted_by, note FROM quarantine WHERE id = $1`, wrong).Scan(
		&status, &actor, &note))
	require.Equal(t, []any{"dismissed", "alice", "Renvoyé corrigé par le DPI"}, []any{status, actor, note})
	for action, want := range map[string]int{"quarantine_reprocessed": 2, "quarantine_dismissed": 1} {
		entries, err := audit.NewLog(b.Pool).Read(ctx, audit.Filter{Actor: "alice", Action: action})
		require.NoError(t, err)
		require.Len(t, entries, want, action)
	}
}
