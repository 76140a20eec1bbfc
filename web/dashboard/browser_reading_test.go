package dashboard_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
)

// TestBrowserReading drives web/e2e/reading.mjs: a secretary reads the
// letter beside its recipients at 1366×768 and below them at 800 px, finds
// correspondents with the directory's type-ahead typed slowly and picked with
// the keyboard, reaches every worklist row's actions at 800 px, and reads the
// delay chart's axis.
func TestBrowserReading(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	b.Work(t)
	report := b.ReviewReport(t, "reading-1", "CARDIO")
	b.ReviewReport(t, "reading-2", "PNEUMOLOGIE")
	martin, _ := b.Delivery(t, report, "MARTIN", "mssante")
	ctx := context.Background()
	_, err := b.Accounts.AddUser(ctx, auth.NewUser{Username: "alice", Password: webtest.Password, Role: auth.RoleSecretary})
	require.NoError(t, err)
	webtest.RunScenario(t, b, "reading.mjs", fmt.Sprintf("MSSD_REPORT=%d", report), fmt.Sprintf("MSSD_MARTIN=%d", martin))

	// The addresses picked with the keyboard are the deliveries'.
	_, address := b.DeliveryAddress(t, report, "MARTIN")
	require.Equal(t, "jean.martin@ch-demo.mssante.fr", address)
	_, address = b.DeliveryAddress(t, report, "LEROUX")
	require.Equal(t, "paul.leroux@medecin-demo.mssante.fr", strings.ToLower(address))
}
