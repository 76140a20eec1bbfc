package desk_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/desk"
	"github.com/mssdispatch/mssdispatch/internal/dispatchtest"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

func TestReportDetailAndRecipientActions(t *testing.T) {
	t.Parallel()
	e, _ := dispatchtest.StartOutbox(t)
	report := e.WorklistReports(t)[0]
	v, err := e.Views.ReportDetail(e.Ctx, "test", report)
	require.NoError(t, err)
	require.Equal(t, "DUPONT", v.Patient.Family)
	require.Equal(t, "CARDIO", v.Service)
	require.True(t, v.HasPDF)
	require.Len(t, v.Recipients, 3)
	require.Equal(t, readmodel.EventReceived, v.Timeline[0].Event)
	martin := v.Recipients[2]
	require.Equal(t, "Jean MARTIN", martin.Name)
	require.Len(t, martin.Deliveries, 1)
	email := martin.Deliveries[0]
	require.Equal(t, dispatch.StatusReview, email.Status)
	require.Equal(t, []string{readmodel.ActionEdit, readmodel.ActionPaper, readmodel.ActionCancel}, email.Actions(), "no address to approve")
	_, err = e.Views.ReportDetail(e.Ctx, "test", 999999)
	require.ErrorIs(t, err, dispatch.ErrNotFound)

	var bad *desk.RecipientError
	err = e.Desk.EditRecipient(e.Ctx, email.ID, "alice", desk.RecipientChange{Address: "jean@gmail.com"})
	require.True(t, errors.As(err, &bad))
	require.Equal(t, desk.ProblemUntrusted, bad.Problem)
	err = e.Desk.EditRecipient(e.Ctx, email.ID, "alice", desk.RecipientChange{Address: "jean.martin"})
	require.True(t, errors.As(err, &bad))
	require.Equal(t, desk.ProblemNotAnAddress, bad.Problem)
	require.NoError(t, e.Desk.EditRecipient(e.Ctx, email.ID, "alice", desk.RecipientChange{Address: "jean.martin@ch-demo.mssante.fr"}))

	paper, err := e.Desk.SwitchToPaper(e.Ctx, email.ID, "alice")
	require.NoError(t, err)
	_, err = e.Desk.SwitchToPaper(e.Ctx, email.ID, "alice")
	require.ErrorIs(t, err, dispatch.ErrTransition, "a cancelled email cannot go to paper again")
	v, err = e.Views.ReportDetail(e.Ctx, "test", report)
	require.NoError(t, err)
	martin = v.Recipients[2]
	require.Len(t, martin.Deliveries, 2)
	require.Equal(t, dispatch.StatusCancelled, martin.Deliveries[0].Status)
	require.Equal(t, "jean.martin@ch-demo.mssante.fr", martin.Deliveries[0].Address)
	letter := martin.Deliveries[1]
	require.Equal(t, paper, letter.ID)
	require.Equal(t, email.ID, letter.FallbackOf)
	require.Equal(t, desk.ReasonUserPaper, letter.Reason)
	// The letter goes to the postal address the directory knows (issue #20,
	// item 4: before, a review row's letter waited for one by hand).
	require.Equal(t, dispatch.StatusPaperPending, letter.Status)
	require.Equal(t, "69003 LYON", letter.PostalAddress.RoutingLine)
	// Held, it is corrected, then approved again.
	require.NoError(t, e.Desk.Hold(e.Ctx, letter.ID, "alice", "adresse à corriger"))
	err = e.Desk.EditRecipient(e.Ctx, letter.ID, "alice", desk.RecipientChange{Name: "X"})
	require.True(t, errors.As(err, &bad))
	require.Equal(t, desk.ProblemNoPostal, bad.Problem)
	require.NoError(t, e.Desk.EditRecipient(e.Ctx, letter.ID, "alice", desk.RecipientChange{Name: "Dr Jean Martin",
		PostalAddress: dispatch.PostalAddress{Lines: []string{"1 rue de la Paix"}, RoutingLine: "33000 BORDEAUX", City: "BORDEAUX"}}))
	require.NoError(t, e.Desk.Approve(e.Ctx, letter.ID, "alice"))
	v, err = e.Views.ReportDetail(e.Ctx, "test", report)
	require.NoError(t, err)
	letter = v.Recipients[2].Deliveries[1]
	require.Equal(t, dispatch.StatusPaperPending, letter.Status)
	require.Equal(t, "Dr Jean Martin", letter.Name)
	require.Equal(t, "BORDEAUX", letter.PostalAddress.City)

	var events []dispatch.Event
	for _, e := range v.Timeline {
		if e.ActorKind == dispatch.ActorUser {
			events = append(events, e.Event)
		}
	}
	require.Equal(t, []dispatch.Event{desk.EventEdited, dispatch.EventCreated, desk.EventPaper, dispatch.EventHeld,
		desk.EventEdited, dispatch.EventApproved}, events)

	_, err = e.Desk.AddRecipient(e.Ctx, report, "alice", dispatch.Recipient{Address: "paul.leroux@medecin-demo.mssante.fr"})
	require.True(t, errors.As(err, &bad))
	require.Equal(t, desk.ProblemNoName, bad.Problem)
	_, err = e.Desk.AddRecipient(e.Ctx, report, "alice", dispatch.Recipient{Family: "LEROUX"})
	require.True(t, errors.As(err, &bad))
	require.Equal(t, desk.ProblemNoAddress, bad.Problem)
	added, err := e.Desk.AddRecipient(e.Ctx, report, "alice", dispatch.Recipient{Family: "LEROUX", Given: "Paul",
		Address: "paul.leroux@medecin-demo.mssante.fr"})
	require.NoError(t, err)
	require.NoError(t, e.Desk.Approve(e.Ctx, added, "alice"))
	e.WaitReport(t, report, "added recipient sent", func(v readmodel.ReportView) bool {
		return slices.ContainsFunc(v.Deliveries, func(d readmodel.DeliveryView) bool {
			return d.ID == added && d.Status == dispatch.StatusSent
		})
	})
	reportOf, err := e.Views.DeliveryReport(e.Ctx, added)
	require.NoError(t, err)
	require.Equal(t, report, reportOf)
}
