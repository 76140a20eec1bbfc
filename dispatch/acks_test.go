package dispatch_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/internal/imaptest"
)

func dsn(envID, recipient, action, status string) string {
	return fmt.Sprintf("From: MAILER-DAEMON@op.example\r\nTo: %s\r\nSubject: DSN\r\nMessage-Id: <dsn-%s-%s@op.example>\r\n"+
		"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nreport\r\n"+
		"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; op.example\r\nOriginal-Envelope-Id: %s\r\n\r\n"+
		"Final-Recipient: rfc822; %s\r\nAction: %s\r\nStatus: %s\r\n--b--\r\n", sender, envID, action, envID, recipient, action, status)
}

func mdn(originalID, disposition string) string {
	return fmt.Sprintf("From: lps@medecin-demo.mssante.fr\r\nTo: %s\r\nSubject: MDN\r\nMessage-Id: <mdn-%s@op.example>\r\n"+
		"Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n"+
		"--b\r\nContent-Type: message/disposition-notification\r\n\r\nOriginal-Message-ID: <%s>\r\nDisposition: %s\r\n--b--\r\n",
		sender, originalID, originalID, disposition)
}

// TestAckIngestion reads DSNs, MDNs, a reply and junk from the BAL's mailbox
// over IMAP and checks each delivery's state, the record of each message and
// the folders.
func TestAckIngestion(t *testing.T) {
	t.Parallel()
	outbox, err := mail.NewOutbox(t.TempDir())
	require.NoError(t, err)
	b := setup(t, outbox)
	srv := imaptest.Start(t)
	ingester, err := dispatch.NewAckIngester(dispatch.AckConfig{Pool: b.pool, Service: b.svc, Logger: quiet,
		Inbox: mail.InboxConfig{Addr: srv.Addr, TLS: mail.TLSNone, Username: imaptest.Username, Password: imaptest.Password}})
	require.NoError(t, err)

	rc := b.receive(t, testReport(t)).ReportID
	claireD := b.statusIs(t, rc, claire, "mssante", dispatch.StatusSent)
	julieD := b.statusIs(t, rc, julie, "mssante", dispatch.StatusSent)
	claireMsg, julieMsg := b.messageID(t, rc, claire), b.messageID(t, rc, julie)

	srv.Deliver(t, dsn(dispatch.EnvelopeID(claireD.ID), claire, "delivered", "2.0.0"))
	srv.Deliver(t, mdn(claireMsg, "automatic-action/MDN-sent-automatically; processed"))
	srv.Deliver(t, dsn(dispatch.EnvelopeID(julieD.ID), julie, "delayed", "4.4.1"))
	srv.Deliver(t, mdn(julieMsg, "automatic-action/MDN-sent-automatically; processed/Error: 902^Patient inconnu"))
	srv.Deliver(t, "From: "+claire+"\r\nSubject: Re: lettre\r\nMessage-Id: <r1@x>\r\nIn-Reply-To: <"+claireMsg+">\r\n\r\nMerci\r\n")
	srv.Deliver(t, dsn(dispatch.EnvelopeID(julieD.ID), "someone.else@x.example", "failed", "5.1.1")) // not ours: wrong recipient
	srv.Deliver(t, "From: news@x.example\r\nSubject: promo\r\nMessage-Id: <n1@x>\r\n\r\nhello\r\n")

	n, err := ingester.Drain(context.Background())
	require.NoError(t, err)
	require.Equal(t, 7, n)

	b.statusIs(t, rc, claire, "mssante", dispatch.StatusRead)
	failed := b.statusIs(t, rc, julie, "mssante", dispatch.StatusFailed)
	var lastError, attention string
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT last_error FROM deliveries WHERE id = $1`, failed.ID).Scan(&lastError))
	require.Contains(t, lastError, "902 Patient inconnu", "the MSSanté integration error")
	b.statusIs(t, rc, "Julie ROUX", "paper", dispatch.StatusPaperPending) // the fallback of the rule
	require.Equal(t, 1, b.eventCount(t, julieD.ID, dispatch.EventDelayed))
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT attention FROM deliveries WHERE id = $1`, claireD.ID).Scan(&attention))
	require.Equal(t, dispatch.AckReply, attention, "a reply for a secretary to read")

	rows, err := b.pool.Query(b.ctx, `SELECT kind || ' ' || outcome || ' ' || (delivery_id IS NOT NULL)::text
		FROM mail_notifications ORDER BY id`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		got = append(got, s)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"dsn delivered true", "mdn read true", "dsn delayed true", "mdn failed true",
		"reply reply true", "dsn unmatched false", "unknown unknown false"}, got)

	// Processed messages and the unmatched ones are in their folders; a second
	// pass finds nothing new.
	require.Equal(t, map[string]uint32{"INBOX": 0, "Traites": 5, "Inconnus": 2}, srv.Counts(t, "INBOX", "Traites", "Inconnus"))
	n, err = ingester.Drain(context.Background())
	require.NoError(t, err)
	require.Zero(t, n)
}
