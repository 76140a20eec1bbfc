package desk_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/desk"
	"github.com/mssdispatch/mssdispatch/internal/dispatchtest"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

const jean = "Jean MARTIN"

// TestReviewChoices: a review row carries what resolves it — the addresses
// to choose among, the postal address for a letter — and one action sends
// to the address chosen. Before (issue #20, item 1), choosing one of two
// known addresses took five steps and a letter waited for an address the
// directory knew.
func TestReviewChoices(t *testing.T) {
	t.Parallel()
	e, dir := dispatchtest.StartOutbox(t)
	id := e.Receive(t, dispatchtest.Report(t)).ReportID
	jeanRow := dispatchtest.Delivery(t, e.WaitDeliveries(t, id, 4), jean, "mssante")
	row := e.Row(t, readmodel.WorklistReview, jeanRow.ID)
	const chosen = "jean.martin@ch-demo.mssante.fr"
	require.ElementsMatch(t, []string{"jean.martin@medecin-demo.mssante.fr", chosen}, row.Choices)
	require.True(t, row.PostalAddress.Known(), "a letter can go where the directory says")
	require.False(t, row.Approvable(), "nothing to approve yet")

	var bad *desk.RecipientError
	require.True(t, errors.As(e.Desk.SendTo(e.Ctx, jeanRow.ID, "alice", "jean@gmail.com"), &bad))
	require.Equal(t, desk.ProblemUntrusted, bad.Problem)
	require.True(t, errors.As(e.Desk.SendTo(e.Ctx, jeanRow.ID, "alice", "jean\r\nbcc: x@y.fr"), &bad))
	require.NoError(t, e.Desk.SendTo(e.Ctx, jeanRow.ID, "alice", chosen))
	e.StatusIs(t, id, chosen, "mssante", dispatch.StatusSent)
	require.Contains(t, dispatchtest.Recipients(t, dir), chosen)
	require.ErrorIs(t, e.Desk.SendTo(e.Ctx, jeanRow.ID, "alice", "jean.martin@medecin-demo.mssante.fr"), dispatch.ErrTransition, "sent already")
	records, err := audit.NewLog(e.Pool).Read(e.Ctx, audit.Filter{Actor: "alice"})
	require.NoError(t, err)
	require.Len(t, records, 1)
	require.Equal(t, "delivery_approved", records[0].Action)
	require.Equal(t, "adresse choisie : "+chosen, records[0].Detail)
	require.Equal(t, 1, e.EventCount(t, jeanRow.ID, desk.EventEdited))
	require.Equal(t, 1, e.EventCount(t, jeanRow.ID, dispatch.EventApproved))
}
