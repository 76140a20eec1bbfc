package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
)

// TestBrowserReading drives web/e2e/reading.mjs: a secretary reads the
// letter beside its recipients at 1366×768 and below them at 800 px, finds
// correspondents with the directory's type-ahead typed slowly and picked with
// the keyboard, reaches every worklist row's actions at 800 px, and reads the
// delay chart's axis.
func TestBrowserReading(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.importDemo(t)
	b.work(t)
	report := b.reviewReport(t, "reading-1", "CARDIO")
	b.reviewReport(t, "reading-2", "PNEUMOLOGIE")
	martin, _ := b.delivery(t, report, "MARTIN", "mssante")
	ctx := context.Background()
	_, err := b.accounts.AddUser(ctx, auth.NewUser{Username: "alice", Password: testPassword, Role: auth.RoleSecretary})
	require.NoError(t, err)
	runScenario(t, b, "reading.mjs", fmt.Sprintf("MSSD_REPORT=%d", report), fmt.Sprintf("MSSD_MARTIN=%d", martin))

	// The addresses picked with the keyboard are the deliveries'.
	_, address := b.deliveryAddress(t, report, "MARTIN")
	require.Equal(t, "jean.martin@ch-demo.mssante.fr", address)
	_, address = b.deliveryAddress(t, report, "LEROUX")
	require.Equal(t, "paul.leroux@medecin-demo.mssante.fr", strings.ToLower(address))
}
