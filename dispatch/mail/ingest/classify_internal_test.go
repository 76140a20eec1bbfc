package ingest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
)

// TestClassify table-drives what each message makes: the acknowledgement,
// the outcome recorded and the detail kept.
func TestClassify(t *testing.T) {
	t.Parallel()
	type want struct{ ack, outcome, detail string }
	for name, tc := range map[string]struct {
		n    *mail.Notification
		want []want
	}{
		"DSN: one per block": {&mail.Notification{Kind: mail.KindDSN, Recipients: []mail.RecipientStatus{
			{Action: "delivered", Status: "2.0.0"},
			{Action: "failed", Status: "5.1.1", DiagnosticCode: "550 5.1.1 unknown user"},
			{Action: "delayed", Status: "4.4.1"},
			{Action: "expanded", Status: "2.0.0"},
		}}, []want{
			{dispatch.AckDelivered, "delivered", "DSN delivered 2.0.0"},
			{dispatch.AckFailed, "failed", "DSN failed 5.1.1 550 5.1.1 unknown user"},
			{dispatch.AckDelayed, "delayed", "DSN delayed 4.4.1"},
			{"", "ignored", "DSN expanded 2.0.0"},
		}},
		"MDN displayed": {&mail.Notification{Kind: mail.KindMDN, Disposition: &mail.Disposition{Type: "displayed"}},
			[]want{{dispatch.AckRead, "read", "MDN displayed"}}},
		"MDN with an MSSanté error": {&mail.Notification{Kind: mail.KindMDN, Disposition: &mail.Disposition{Type: "processed",
			Modifiers: []string{"error"}, Error: "903^Document illisible", ErrorCode: "903", ErrorLabel: "Document illisible"}},
			[]want{{dispatch.AckFailed, "failed", "MDN processed/error 903 Document illisible"}}},
		"MDN denied (RFC 2298)": {&mail.Notification{Kind: mail.KindMDN, Disposition: &mail.Disposition{Type: "denied"}},
			[]want{{dispatch.AckFailed, "failed", "MDN denied/error"}}},
		"MDN deleted": {&mail.Notification{Kind: mail.KindMDN, Disposition: &mail.Disposition{Type: "deleted"}},
			[]want{{"", "ignored", "MDN deleted"}}},
		"MDN without disposition": {&mail.Notification{Kind: mail.KindMDN}, []want{{"", "ignored", ""}}},
		"reply":                   {&mail.Notification{Kind: mail.KindReply}, []want{{dispatch.AckReply, "reply", "réponse du destinataire"}}},
		"unknown":                 {&mail.Notification{Kind: mail.KindUnknown}, []want{{"", "unknown", ""}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var got []want
			for i, a := range classify(tc.n) {
				got = append(got, want{a.Ack, a.Outcome, a.Detail})
				if tc.n.Kind == mail.KindDSN {
					require.Same(t, &tc.n.Recipients[i], a.Recipient, "the DSN's block")
				} else {
					require.Nil(t, a.Recipient)
				}
			}
			require.Equal(t, tc.want, got)
		})
	}
}
