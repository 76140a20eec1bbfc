package dispatch_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
)

// TestQuarantine checks that the quarantine lists the refused messages
// newest first, page by page, with their reason and never their bytes, and
// that QuarantinedRaw gives the bytes, empty once purged.
func TestQuarantine(t *testing.T) {
	t.Parallel()
	b, _ := setupOutbox(t)

	msgs, err := b.svc.Quarantined(b.ctx, dispatch.QuarantineFilter{})
	require.NoError(t, err)
	require.Empty(t, msgs)

	for i := range 5 {
		in := inbound(fmt.Sprintf("MSG-Q-%d", i), fmt.Sprintf("content %d", i))
		_, err := b.svc.Reject(b.ctx, in, []byte(fmt.Sprintf("MSH|^~\\&|DPI|CH|||PID|DUPONT %d", i)),
			dispatch.Refusal{Reason: fmt.Sprintf("PID-3 missing (%d)", i)}, []byte("ACK AR"))
		require.NoError(t, err)
	}
	// A refusal without a key (an unreadable message) is kept too.
	_, err = b.svc.Reject(b.ctx, dispatch.Inbound{Kind: "json", Source: "api"}, []byte(`{"patient": "DUPONT"}`), dispatch.Refusal{Reason: "body is not JSON"}, nil)
	require.NoError(t, err)

	page, err := b.svc.Quarantined(b.ctx, dispatch.QuarantineFilter{Limit: 4})
	require.NoError(t, err)
	require.Len(t, page, 4)
	require.Equal(t, "json", page[0].Kind)
	require.Equal(t, "api", page[0].Source)
	require.Empty(t, page[0].ControlID)
	require.Equal(t, "body is not JSON", page[0].Reason)
	for i, m := range page[1:] {
		n := 4 - i
		require.Equal(t, fmt.Sprintf("MSG-Q-%d", n), m.ControlID)
		require.Equal(t, fmt.Sprintf("PID-3 missing (%d)", n), m.Reason)
		require.Equal(t, "hl7", m.Kind)
		require.Equal(t, "mllp", m.Source)
		require.Equal(t, int64(len(fmt.Sprintf("MSH|^~\\&|DPI|CH|||PID|DUPONT %d", n))), m.Size)
		require.False(t, m.Purged)
		require.False(t, m.ReceivedAt.IsZero())
		require.Greater(t, page[i].ID, m.ID, "newest first")
	}
	require.NotContains(t, fmt.Sprintf("%+v", page), "DUPONT", "the list never carries the bytes")

	rest, err := b.svc.Quarantined(b.ctx, dispatch.QuarantineFilter{BeforeID: page[3].ID, Limit: 4})
	require.NoError(t, err)
	require.Len(t, rest, 2)
	require.Equal(t, "MSG-Q-1", rest[0].ControlID)
	require.Equal(t, "MSG-Q-0", rest[1].ControlID)
	last, err := b.svc.Quarantined(b.ctx, dispatch.QuarantineFilter{BeforeID: rest[1].ID})
	require.NoError(t, err)
	require.Empty(t, last)

	raw, err := b.svc.QuarantinedRaw(b.ctx, "test", rest[0].ID)
	require.NoError(t, err)
	require.Equal(t, "MSH|^~\\&|DPI|CH|||PID|DUPONT 1", string(raw))

	_, err = b.pool.Exec(b.ctx, `UPDATE quarantine SET raw = ''::bytea, purged_at = now() WHERE id = $1`, rest[0].ID)
	require.NoError(t, err)
	raw, err = b.svc.QuarantinedRaw(b.ctx, "test", rest[0].ID)
	require.NoError(t, err)
	require.NotNil(t, raw)
	require.Empty(t, raw)
	rest, err = b.svc.Quarantined(b.ctx, dispatch.QuarantineFilter{BeforeID: page[3].ID, Limit: 1})
	require.NoError(t, err)
	require.Len(t, rest, 1)
	require.True(t, rest[0].Purged)
	require.Zero(t, rest[0].Size)
	require.Equal(t, "PID-3 missing (1)", rest[0].Reason, "the reason outlives the bytes")

	for _, id := range []int64{0, -1, page[0].ID + 1000} {
		_, err = b.svc.QuarantinedRaw(b.ctx, "test", id)
		require.ErrorIs(t, err, dispatch.ErrNotFound, id)
	}
}

// TestQuarantineScope: a refused message's reason, which repeats its values
// (patient data), is listed only to the viewers of its service (issue #19);
// the others get what it is and where it failed.
func TestQuarantineScope(t *testing.T) {
	t.Parallel()
	b, _ := setupOutbox(t)
	refuse := func(controlID, service string) {
		in := inbound(controlID, controlID)
		in.Service = service
		_, err := b.svc.Reject(b.ctx, in, []byte("MSH|^~\\&|DPI|CH|||PID|DUPONT"), dispatch.Refusal{
			Reason: "l'INS de PID-3, 280017512345678, n'est pas celui du CDA", Code: 102, Location: "PID^1^3"}, []byte("ACK AE"))
		require.NoError(t, err)
	}
	refuse("MSG-CARDIO", "CARDIO")
	refuse("MSG-PNEUMO", "PNEUMO")
	refuse("MSG-UNKNOWN", "")

	reasons := func(services []string) map[string]string {
		msgs, err := b.svc.Quarantined(b.ctx, dispatch.QuarantineFilter{Services: services})
		require.NoError(t, err)
		got := map[string]string{}
		for _, m := range msgs {
			require.Equal(t, "ORU^R01", m.MessageType)
			require.Equal(t, 102, m.ErrorCode)
			require.Equal(t, "PID^1^3", m.ErrorLocation)
			require.Equal(t, m.Reason == "", m.Restricted, m.ControlID)
			got[m.ControlID+" "+m.Service] = m.Reason
		}
		return got
	}
	const reason = "l'INS de PID-3, 280017512345678, n'est pas celui du CDA"
	require.Equal(t, map[string]string{"MSG-CARDIO CARDIO": reason, "MSG-PNEUMO PNEUMO": reason, "MSG-UNKNOWN ": reason},
		reasons(nil), "every service")
	require.Equal(t, map[string]string{"MSG-CARDIO CARDIO": reason, "MSG-PNEUMO PNEUMO": "", "MSG-UNKNOWN ": ""},
		reasons([]string{"CARDIO"}), "a secretary of cardiology: an unknown service is not hers")
	require.Equal(t, map[string]string{"MSG-CARDIO CARDIO": "", "MSG-PNEUMO PNEUMO": "", "MSG-UNKNOWN ": ""},
		reasons([]string{}), "no service")
}
