package ingest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/mail/ingest"
	"github.com/mssdispatch/mssdispatch/internal/dispatchtest"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

// ledgerBundle is the domain running for a test (dispatchtest) and the
// Ledger of its database.
type ledgerBundle struct {
	*dispatchtest.Env
	ledger *ingest.Ledger
}

func setupLedger(t *testing.T) *ledgerBundle {
	t.Helper()
	outbox, err := mail.NewOutbox(t.TempDir())
	require.NoError(t, err)
	e := dispatchtest.Start(t, outbox, nil)
	return &ledgerBundle{Env: e, ledger: ingest.NewLedger(e.Pool, e.Service, quiet)}
}

// sentBundle is a ledgerBundle whose test report's emails to Claire and
// Julie were sent.
type sentBundle struct {
	*ledgerBundle
	reportID            int64
	claireD, julieD     readmodel.DeliveryView
	claireMsg, julieMsg string
}

func setupSent(t *testing.T) *sentBundle {
	t.Helper()
	b := &sentBundle{ledgerBundle: setupLedger(t)}
	b.reportID = b.Receive(t, dispatchtest.Report(t)).ReportID
	b.claireD = b.StatusIs(t, b.reportID, claire, "mssante", dispatch.StatusSent)
	b.julieD = b.StatusIs(t, b.reportID, julie, "mssante", dispatch.StatusSent)
	b.claireMsg, b.julieMsg = b.MessageID(t, b.reportID, claire), b.MessageID(t, b.reportID, julie)
	return b
}

// dsnAbout is a DSN on delivery id's email for recipient, and what the
// mailbox's reader makes of it.
func dsnAbout(id int64, recipient, ack, outcome string) (*mail.Notification, ingest.EmailAck) {
	n := &mail.Notification{Kind: mail.KindDSN, MessageID: "dsn@op.example", EnvelopeID: mail.EnvelopeID(id),
		Recipients: []mail.RecipientStatus{{FinalRecipient: recipient}}}
	return n, ingest.EmailAck{Recipient: &n.Recipients[0], Ack: ack, Outcome: outcome, Detail: "DSN " + outcome}
}

// mdnOf is an MDN on the email messageID.
func mdnOf(messageID string) *mail.Notification {
	return &mail.Notification{Kind: mail.KindMDN, MessageID: "mdn@op.example", OriginalMessageID: messageID,
		Disposition: &mail.Disposition{Type: "processed"}}
}

// ack has the ledger apply a to n and checks what it recorded.
func (b *sentBundle) ack(t *testing.T, n *mail.Notification, a ingest.EmailAck, deliveryID int64, outcome string) ingest.AckRecord {
	t.Helper()
	rec, err := b.ledger.AcknowledgeEmail(b.Ctx, n, a)
	require.NoError(t, err)
	require.Equal(t, deliveryID, rec.DeliveryID, "%s %s", n.Kind, a.Outcome)
	require.Equal(t, outcome, rec.Outcome)
	return rec
}

// TestAcknowledgeEmail applies what the mailbox's reader found: the
// delivery found by ENVID (checked against the recipient), by
// Original-Message-ID, In-Reply-To or References, or none; each message is
// recorded in mail_notifications.
func TestAcknowledgeEmail(t *testing.T) {
	t.Parallel()
	b := setupSent(t)
	claireD, julieD := b.claireD, b.julieD

	b.ack(t, &mail.Notification{Kind: mail.KindUnknown, InReplyTo: []string{b.claireMsg}},
		ingest.EmailAck{Outcome: "unknown"}, 0, "unknown") // an unknown kind concerns no delivery
	b.ack(t, &mail.Notification{Kind: mail.KindUnknown}, ingest.EmailAck{Outcome: "unreadable",
		Detail: "mail: unreadable notification"}, 0, "unreadable")
	n, a := dsnAbout(julieD.ID, "someone.else@x.example", dispatch.AckFailed, "failed")
	b.ack(t, n, a, 0, "unmatched") // not ours: wrong recipient
	n, a = dsnAbout(claireD.ID, claire, "", "ignored")
	b.ack(t, n, a, claireD.ID, "ignored") // relayed: nothing to learn
	b.StatusIs(t, b.reportID, claire, "mssante", dispatch.StatusSent)
	b.StatusIs(t, b.reportID, julie, "mssante", dispatch.StatusSent)

	n, a = dsnAbout(claireD.ID, claire, dispatch.AckDelivered, "delivered")
	n.Recipients[0].OriginalRecipient = "Claire.Dupont-Demo@medecin-demo.mssante.fr"
	b.ack(t, n, a, claireD.ID, "delivered")
	b.StatusIs(t, b.reportID, claire, "mssante", dispatch.StatusDelivered)
	b.ack(t, mdnOf("<"+b.claireMsg+">"), ingest.EmailAck{Ack: dispatch.AckRead, Outcome: "read", Detail: "MDN processed"},
		claireD.ID, "read")
	b.StatusIs(t, b.reportID, claire, "mssante", dispatch.StatusRead)
	n, a = dsnAbout(julieD.ID, julie, dispatch.AckDelayed, "delayed")
	b.ack(t, n, a, julieD.ID, "delayed")
	require.Equal(t, 1, b.EventCount(t, julieD.ID, dispatch.EventDelayed))
	b.ack(t, mdnOf(b.julieMsg), ingest.EmailAck{Ack: dispatch.AckFailed, Outcome: "failed",
		Detail: "MDN processed/error 902 Patient inconnu"}, julieD.ID, "failed")
	failed := b.StatusIs(t, b.reportID, julie, "mssante", dispatch.StatusFailed)
	var lastError, attention string
	require.NoError(t, b.Pool.QueryRow(b.Ctx, `SELECT last_error FROM deliveries WHERE id = $1`, failed.ID).Scan(&lastError))
	require.Contains(t, lastError, "902 Patient inconnu", "the MSSanté integration error")
	b.StatusIs(t, b.reportID, "Julie ROUX", "paper", dispatch.StatusPaperPending) // the fallback of the rule
	b.ack(t, &mail.Notification{Kind: mail.KindReply, MessageID: "r1@x", InReplyTo: []string{"elsewhere@x"},
		References: []string{"older@x", b.claireMsg}}, ingest.EmailAck{Ack: dispatch.AckReply, Outcome: "reply",
		Detail: "réponse du destinataire"}, claireD.ID, "reply")
	require.NoError(t, b.Pool.QueryRow(b.Ctx, `SELECT attention FROM deliveries WHERE id = $1`, claireD.ID).Scan(&attention))
	require.Equal(t, dispatch.AckReply, attention, "a reply for a secretary to read")

	rows, err := b.Pool.Query(b.Ctx, `SELECT concat_ws(' ', kind, message_id, outcome, (delivery_id IS NOT NULL)::text, detail)
		FROM mail_notifications ORDER BY id`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		got = append(got, s)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{
		"unknown  unknown false ",
		"unknown  unreadable false mail: unreadable notification",
		"dsn dsn@op.example unmatched false DSN failed",
		"dsn dsn@op.example ignored true DSN ignored",
		"dsn dsn@op.example delivered true DSN delivered",
		"mdn mdn@op.example read true MDN processed",
		"dsn dsn@op.example delayed true DSN delayed",
		"mdn mdn@op.example failed true MDN processed/error 902 Patient inconnu",
		"reply r1@x reply true réponse du destinataire",
	}, got)
}

// TestAcknowledgeEmailDelay checks the delay AcknowledgeEmail reports: the
// time from the email's sending to the first acknowledgement of each kind;
// a duplicate is not first, nor is an acknowledgement of an email whose
// sending time is unknown.
func TestAcknowledgeEmailDelay(t *testing.T) {
	t.Parallel()
	b := setupSent(t)
	claireD, julieD := b.claireD, b.julieD
	// Claire's email left two hours ago; Julie's sending time is not known.
	_, err := b.Pool.Exec(b.Ctx, `UPDATE deliveries SET sent_at = sent_at - interval '2 hours' WHERE id = $1`, claireD.ID)
	require.NoError(t, err)
	_, err = b.Pool.Exec(b.Ctx, `UPDATE deliveries SET sent_at = NULL WHERE id = $1`, julieD.ID)
	require.NoError(t, err)
	dsnFirst := func(id int64, recipient, ack string) ingest.AckRecord {
		t.Helper()
		n, a := dsnAbout(id, recipient, ack, ack)
		return b.ack(t, n, a, id, ack)
	}

	require.True(t, dsnFirst(claireD.ID, claire, dispatch.AckDelayed).First)
	delivered := dsnFirst(claireD.ID, claire, dispatch.AckDelivered)
	require.True(t, delivered.First)
	require.False(t, dsnFirst(claireD.ID, claire, dispatch.AckDelivered).First, "the operator's duplicate")
	var firstDelivered float64
	require.NoError(t, b.Pool.QueryRow(b.Ctx, `SELECT extract(epoch FROM min(e.at) - d.sent_at)::float8
		FROM deliveries d JOIN delivery_events e ON e.delivery_id = d.id
		WHERE d.id = $1 AND e.event = $2 GROUP BY d.sent_at`, claireD.ID, dispatch.EventDelivered).Scan(&firstDelivered))
	require.InDelta(t, firstDelivered, delivered.Delay.Seconds(), 1e-6, "from the sending to the first DSN")
	require.Greater(t, delivered.Delay, 2*time.Hour)
	require.Less(t, delivered.Delay, 3*time.Hour)
	read := b.ack(t, mdnOf(b.claireMsg), ingest.EmailAck{Ack: dispatch.AckRead, Outcome: "read"}, claireD.ID, "read")
	require.True(t, read.First)
	require.GreaterOrEqual(t, read.Delay, delivered.Delay)
	reply := b.ack(t, &mail.Notification{Kind: mail.KindReply, InReplyTo: []string{b.claireMsg}},
		ingest.EmailAck{Ack: dispatch.AckReply, Outcome: "reply"}, claireD.ID, "reply")
	require.True(t, reply.First)
	require.False(t, dsnFirst(julieD.ID, julie, dispatch.AckDelayed).First, "Julie's sending time is not known")
	n, a := dsnAbout(claireD.ID, "someone.else@x.example", dispatch.AckFailed, "failed")
	require.False(t, b.ack(t, n, a, 0, "unmatched").First)

	// Julie's sending time known: her first failure is first, its duplicate
	// is not.
	_, err = b.Pool.Exec(b.Ctx, `UPDATE deliveries SET sent_at = now() - interval '1 minute' WHERE id = $1`, julieD.ID)
	require.NoError(t, err)
	failed := dsnFirst(julieD.ID, julie, dispatch.AckFailed)
	require.True(t, failed.First)
	require.InDelta(t, time.Minute.Seconds(), failed.Delay.Seconds(), 30)
	require.False(t, dsnFirst(julieD.ID, julie, dispatch.AckFailed).First)
}

// TestMailboxCheckpoint keeps the mailbox reader's checkpoint, per mailbox.
func TestMailboxCheckpoint(t *testing.T) {
	t.Parallel()
	b := setupLedger(t)
	check := func(mailbox string, validity, last uint32) {
		t.Helper()
		v, l, err := b.ledger.LoadCheckpoint(b.Ctx, mailbox)
		require.NoError(t, err)
		require.Equal(t, [2]uint32{validity, last}, [2]uint32{v, l}, mailbox)
	}
	check("INBOX", 0, 0)
	require.NoError(t, b.ledger.SaveCheckpoint(b.Ctx, "INBOX", 7, 42))
	check("INBOX", 7, 42)
	require.NoError(t, b.ledger.SaveCheckpoint(b.Ctx, "INBOX", 4294967295, 3)) // a new UIDVALIDITY, at the top of its range
	check("INBOX", 4294967295, 3)
	check("Autre", 0, 0)
}
