package admin_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
	"github.com/mssdispatch/mssdispatch/rules"
)

// TestBrowserRules is issue #20, item 11, as a member of the CME works
// (web/e2e/rules.mjs): a rule for a type of document written with the
// form, previewed and saved; the text's mistakes all listed, each leading
// to its line; a renamed rule that changes nothing; a rule edited with the
// form; at 1366×768 and 800 px.
func TestBrowserRules(t *testing.T) {
	t.Parallel()
	b := webtest.SetupDemo(t)
	b.ReviewReport(t, "rules-browser-1", "CARDIO")
	b.Login(t, "dr-cme", auth.RoleCME)
	webtest.RunScenario(t, b, "rules.mjs")

	// Saved once, by her, as the form wrote it; what she tried after is not.
	var versions int
	var source, by, comment string
	require.NoError(t, b.Pool.QueryRow(context.Background(), `SELECT count(*) OVER (), source, created_by, comment
		FROM rule_sets ORDER BY version DESC LIMIT 1`).Scan(&versions, &source, &by, &comment))
	require.Equal(t, 1, versions)
	require.Equal(t, "dr-cme", by)
	require.Equal(t, "CME du 12 mars", comment)
	rs, err := rules.Parse([]byte(source))
	require.NoError(t, err)
	require.Equal(t, "Lettres de sortie différées", rs.Rules[0].Name)
	require.Equal(t, []string{"11490-0"}, rs.Rules[0].Match.DocumentCodes)
	a := rs.Rules[0].Action
	require.Equal(t, []any{rules.SendDelay, 48, rules.PatientNever, rules.PaperDirectory},
		[]any{a.Send, a.DelayHours, a.Patient, a.Paper})
}
