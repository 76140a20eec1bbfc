package dispatch_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/desk"
	"github.com/mssdispatch/mssdispatch/internal/dispatchtest"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

const attacker = "evil@attacker.example"

// sendsTotal is the mssdispatch_sends_total counter for result.
func (b *testBundle) sendsTotal(t *testing.T, result string) float64 {
	t.Helper()
	return gathered(t, b.registry, "mssdispatch_sends_total", result)
}

// TestTrustSpaceInvariant: whatever the DPI sends, a user approves or the
// whitelist becomes, no email goes to an address outside the MSSanté trust
// space. It caught, before the fix, the approval of a review row sending to
// the DPI's untrusted address, and addresses with a CRLF being stored.
func TestTrustSpaceInvariant(t *testing.T) {
	t.Parallel()
	b, dir := setupOutbox(t)
	ctx := b.ctx
	const mss = correspondents.ChannelMSSante

	// The DPI gives Julie ROUX an address outside the trust space: the review
	// row proposes the directory's address, and approving sends there.
	r := reportOf(t, "untrusted-dpi")
	r.Recipients = []dispatch.Recipient{r.Recipients[1], r.Recipients[2],
		{Role: "RCT", Kind: dispatch.KindOrganisation, Organisation: "Clinique hors espace", Address: "secretariat@clinique.example"}}
	r.Recipients[0].Address = "julie.roux@attacker.example"
	id := b.receive(t, r).ReportID
	v := b.waitDeliveries(t, id, 3)
	julieRow := delivery(t, v, julie, mss)
	require.Equal(t, dispatch.StatusReview, julieRow.Status)
	require.Equal(t, correspondents.ReasonUntrustedAddress, julieRow.Reason)
	require.Equal(t, julie, julieRow.Recipient, "the directory's address is proposed, not the DPI's")
	require.NoError(t, b.desk.Approve(ctx, julieRow.ID, "sec1"))
	b.statusIs(t, id, julie, mss, dispatch.StatusSent)

	// The clinic has no trusted address at all: it gets a letter, once a
	// secretary completes its postal address.
	clinic := delivery(t, v, "Clinique hors espace", correspondents.ChannelPaper)
	require.Equal(t, dispatch.StatusReview, clinic.Status)
	require.Equal(t, correspondents.ReasonUntrustedAddress, clinic.Reason)

	// Jean MARTIN's email waits for an address: there is nothing to approve,
	// the secretary chooses an address or paper.
	jeanRow := delivery(t, v, jean, mss)
	require.ErrorIs(t, b.desk.Approve(ctx, jeanRow.ID, "sec1"), dispatch.ErrNoAddress)
	detail, err := b.views.ReportDetail(ctx, "test", id)
	require.NoError(t, err)
	i := slices.IndexFunc(detail.Recipients, func(rc readmodel.RecipientDetail) bool { return rc.Name == jean })
	require.GreaterOrEqual(t, i, 0)
	require.Equal(t, []string{readmodel.ActionEdit, readmodel.ActionPaper, readmodel.ActionCancel}, detail.Recipients[i].Deliveries[0].Actions())

	// An untrusted address stored by an older version, or put there by hand,
	// cannot be approved.
	_, err = b.pool.Exec(ctx, `UPDATE deliveries SET address = $2 WHERE id = $1`, jeanRow.ID, attacker)
	require.NoError(t, err)
	var bad *desk.RecipientError
	require.True(t, errors.As(b.desk.Approve(ctx, jeanRow.ID, "sec1"), &bad))
	require.Equal(t, desk.ProblemUntrusted, bad.Problem)

	// The send path itself checks the trust space in force when the email
	// goes: an untrusted address queued (by hand here), and an address whose
	// domain left the whitelist after resolution, go back to review unsent.
	_, err = b.pool.Exec(ctx, `INSERT INTO mail_domains (domain, blocked_until) VALUES ('medecin-demo.mssante.fr', now() + interval '1 hour')`)
	require.NoError(t, err)
	late := b.receive(t, reportOf(t, "whitelist-change")).ReportID
	b.statusIs(t, late, claire, mss, dispatch.StatusQueued)
	b.statusIs(t, late, julie, mss, dispatch.StatusQueued)
	b.waitSnoozed(t, late, 2)
	_, err = b.pool.Exec(ctx, `UPDATE deliveries SET address = $2 WHERE report_id = $1 AND address = $3`, late, attacker, julie)
	require.NoError(t, err)
	b.setTrustSpace(t, "ch-demo.mssante.fr")
	_, err = b.pool.Exec(ctx, `DELETE FROM mail_domains`)
	require.NoError(t, err)
	b.releaseNow(t, dispatch.SendArgs{}.Kind())
	for _, name := range []string{"Claire DUPONT-DEMO", "Julie ROUX"} {
		d := b.statusIs(t, late, name, mss, dispatch.StatusReview)
		require.Equal(t, correspondents.ReasonUntrustedAddress, d.Reason, name)
		require.Contains(t, d.ReasonText, "au moment de l'envoi", name)
		require.Equal(t, 1, b.eventCount(t, d.ID, dispatch.EventUntrusted), name)
	}
	require.Equal(t, 2.0, b.sendsTotal(t, "untrusted"))
	to := dispatchtest.Recipients(t, dir)
	require.Equal(t, []string{julie}, to, "only the approved directory address got an email")

	// Addresses that are not one mailbox never get stored: from the DPI or
	// the API, from the dashboard's edit and add forms.
	injected := "julie.roux@medecin-demo.mssante.fr\r\nbcc:" + attacker
	bcc := reportOf(t, "bcc")
	bcc.Recipients[1].Address = injected
	_, err = b.svc.Receive(ctx, inbound("bcc", "bcc"), bcc, respond)
	var invalid *dispatch.InvalidError
	require.True(t, errors.As(err, &invalid), "%v", err)
	require.Equal(t, "recipients[1].address", invalid.Field)
	for _, a := range []string{injected, `"julie bcc:evil"@attacker.example`, "a@b@medecin-demo.mssante.fr", "julie@medecin-demo..mssante.fr"} {
		err := b.desk.EditRecipient(ctx, jeanRow.ID, "sec1", desk.RecipientChange{Address: a})
		require.True(t, errors.As(err, &bad), a)
		require.Equal(t, desk.ProblemNotAnAddress, bad.Problem, a)
		_, err = b.desk.AddRecipient(ctx, id, "sec1", dispatch.Recipient{Family: "X", Address: a})
		require.True(t, errors.As(err, &bad), a)
		require.Equal(t, desk.ProblemNotAnAddress, bad.Problem, a)
	}
	require.False(t, slices.Contains(dispatchtest.Recipients(t, dir), attacker))
}
