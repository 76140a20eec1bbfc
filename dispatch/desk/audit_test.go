package desk_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/desk"
	"github.com/mssdispatch/mssdispatch/internal/dispatchtest"
)

// TestAuditInTheSameTransaction: an action is never committed without its
// audit entry, and patient data is not served when its reading cannot be
// recorded. Before, the dashboard wrote the entry after the action's
// commit, in a transaction of its own, and views were not recorded.
func TestAuditInTheSameTransaction(t *testing.T) {
	t.Parallel()
	e, _ := dispatchtest.StartOutbox(t)
	ctx := e.Ctx
	id := e.Receive(t, dispatchtest.Report(t)).ReportID
	jeanRow := dispatchtest.Delivery(t, e.WaitDeliveries(t, id, 4), jean, "mssante")
	_, err := e.Pool.Exec(ctx, `CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$;
		CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit()`)
	require.NoError(t, err)

	change := desk.RecipientChange{Address: "jean.martin@ch-demo.mssante.fr"}
	require.ErrorContains(t, e.Desk.EditRecipient(ctx, jeanRow.ID, "alice", change), "audit log unavailable")
	require.ErrorContains(t, e.Desk.Cancel(ctx, jeanRow.ID, "alice", "doublon"), "audit log unavailable")
	_, err = e.Views.ReportDetail(ctx, "alice", id)
	require.ErrorContains(t, err, "audit log unavailable", "not served unrecorded")
	_, err = e.Views.DocumentPDF(ctx, "alice", id)
	require.ErrorContains(t, err, "audit log unavailable")
	v, err := e.Views.Report(ctx, "test", id)
	require.ErrorContains(t, err, "audit log unavailable")
	require.Zero(t, v.ID)

	_, err = e.Pool.Exec(ctx, `DROP TRIGGER refuse_audit ON audit_log`)
	require.NoError(t, err)
	v, err = e.Views.Report(ctx, "test", id)
	require.NoError(t, err)
	require.Equal(t, dispatch.StatusReview, dispatchtest.Delivery(t, v, jean, "mssante").Status, "nothing changed")
	require.NoError(t, e.Desk.EditRecipient(ctx, jeanRow.ID, "alice", change))
	require.NoError(t, e.Desk.Approve(ctx, jeanRow.ID, "alice"))
	records, err := audit.NewLog(e.Pool).Read(ctx, audit.Filter{Actor: "alice"})
	require.NoError(t, err)
	require.Len(t, records, 2)
	require.Equal(t, audit.Entry{Actor: "alice", Action: "delivery_approved", Object: fmt.Sprintf("delivery:%d", jeanRow.ID),
		ReportID: id, DeliveryID: jeanRow.ID, Detail: "jean.martin@ch-demo.mssante.fr"}, records[0].Entry)
	require.Equal(t, "delivery_edited", records[1].Action)
	require.Equal(t, "adresse: (aucune) → jean.martin@ch-demo.mssante.fr", records[1].Detail)
}
