package dispatch_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// mailboxBundle is a testBundle with the BAL's mailbox on an IMAP server and
// its reader, whose metrics go to registry.
type mailboxBundle struct {
	*testBundle
	srv      *imaptest.Server
	ingester *dispatch.AckIngester
	registry *prometheus.Registry
}

func setupMailbox(t *testing.T) *mailboxBundle {
	t.Helper()
	outbox, err := mail.NewOutbox(t.TempDir())
	require.NoError(t, err)
	b := &mailboxBundle{testBundle: setup(t, outbox), srv: imaptest.Start(t), registry: prometheus.NewRegistry()}
	b.ingester, err = dispatch.NewAckIngester(dispatch.AckConfig{Pool: b.pool, Service: b.svc, Registerer: b.registry,
		Logger: quiet, Inbox: mail.InboxConfig{Addr: b.srv.Addr, TLS: mail.TLSNone, Username: imaptest.Username,
			Password: imaptest.Password}})
	require.NoError(t, err)
	return b
}

// sentReport receives the test report and waits for its emails to Claire and
// Julie to be sent.
func (b *mailboxBundle) sentReport(t *testing.T) (reportID int64, claireD, julieD dispatch.DeliveryView) {
	t.Helper()
	reportID = b.receive(t, testReport(t)).ReportID
	return reportID, b.statusIs(t, reportID, claire, "mssante", dispatch.StatusSent),
		b.statusIs(t, reportID, julie, "mssante", dispatch.StatusSent)
}

// drain reads the mailbox once and checks it found want messages.
func (b *mailboxBundle) drain(t *testing.T, want int) {
	t.Helper()
	n, err := b.ingester.Drain(b.ctx)
	require.NoError(t, err)
	require.Equal(t, want, n)
}

// TestAckIngestion reads DSNs, MDNs, a reply and junk from the BAL's mailbox
// over IMAP and checks each delivery's state, the record of each message and
// the folders.
func TestAckIngestion(t *testing.T) {
	t.Parallel()
	b := setupMailbox(t)
	srv := b.srv

	rc, claireD, julieD := b.sentReport(t)
	claireMsg, julieMsg := b.messageID(t, rc, claire), b.messageID(t, rc, julie)

	srv.Deliver(t, dsn(dispatch.EnvelopeID(claireD.ID), claire, "delivered", "2.0.0"))
	srv.Deliver(t, mdn(claireMsg, "automatic-action/MDN-sent-automatically; processed"))
	srv.Deliver(t, dsn(dispatch.EnvelopeID(julieD.ID), julie, "delayed", "4.4.1"))
	srv.Deliver(t, mdn(julieMsg, "automatic-action/MDN-sent-automatically; processed/Error: 902^Patient inconnu"))
	srv.Deliver(t, "From: "+claire+"\r\nSubject: Re: lettre\r\nMessage-Id: <r1@x>\r\nIn-Reply-To: <"+claireMsg+">\r\n\r\nMerci\r\n")
	srv.Deliver(t, dsn(dispatch.EnvelopeID(julieD.ID), "someone.else@x.example", "failed", "5.1.1")) // not ours: wrong recipient
	srv.Deliver(t, "From: news@x.example\r\nSubject: promo\r\nMessage-Id: <n1@x>\r\n\r\nhello\r\n")

	b.drain(t, 7)

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
	b.drain(t, 0)
}

// TestAckDelayMetric checks mssdispatch_ack_delay_seconds: the first
// acknowledgement of each kind observes the time from the email's sending
// to it, a duplicate does not count again, nor does an email whose sending
// time is unknown.
func TestAckDelayMetric(t *testing.T) {
	t.Parallel()
	b := setupMailbox(t)
	srv := b.srv

	rc, claireD, julieD := b.sentReport(t)
	claireMsg := b.messageID(t, rc, claire)
	// Claire's email left two hours ago; Julie's sending time is not known.
	_, err := b.pool.Exec(b.ctx, `UPDATE deliveries SET sent_at = sent_at - interval '2 hours' WHERE id = $1`, claireD.ID)
	require.NoError(t, err)
	_, err = b.pool.Exec(b.ctx, `UPDATE deliveries SET sent_at = NULL WHERE id = $1`, julieD.ID)
	require.NoError(t, err)

	srv.Deliver(t, dsn(dispatch.EnvelopeID(claireD.ID), claire, "delayed", "4.4.1"))
	srv.Deliver(t, dsn(dispatch.EnvelopeID(claireD.ID), claire, "delivered", "2.0.0"))
	srv.Deliver(t, dsn(dispatch.EnvelopeID(claireD.ID), claire, "delivered", "2.0.0")) // the operator's duplicate
	srv.Deliver(t, mdn(claireMsg, "automatic-action/MDN-sent-automatically; processed"))
	srv.Deliver(t, "From: "+claire+"\r\nSubject: Re: lettre\r\nMessage-Id: <r1@x>\r\nIn-Reply-To: <"+claireMsg+">\r\n\r\nMerci\r\n")
	srv.Deliver(t, dsn(dispatch.EnvelopeID(julieD.ID), julie, "delayed", "4.4.1"))
	b.drain(t, 6)

	for ack, want := range map[string]uint64{dispatch.AckDelivered: 1, dispatch.AckRead: 1, dispatch.AckDelayed: 1,
		dispatch.AckReply: 1, dispatch.AckFailed: 0} {
		require.Equal(t, want, ackDelay(t, b.registry, ack).count, ack)
	}
	delivered := ackDelay(t, b.registry, dispatch.AckDelivered)
	var firstDelivered float64
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT extract(epoch FROM min(e.at) - d.sent_at)::float8
		FROM deliveries d JOIN delivery_events e ON e.delivery_id = d.id
		WHERE d.id = $1 AND e.event = $2 GROUP BY d.sent_at`, claireD.ID, dispatch.EventDelivered).Scan(&firstDelivered))
	require.InDelta(t, firstDelivered, delivered.sum, 1e-6, "from the sending to the first DSN")
	require.GreaterOrEqual(t, delivered.sum, 2*time.Hour.Seconds())
	require.Zero(t, delivered.buckets[3600], "not within the hour")
	require.EqualValues(t, 1, delivered.buckets[3*3600], "within three hours")

	// Julie's sending time known: her first failure counts, its duplicate
	// does not.
	_, err = b.pool.Exec(b.ctx, `UPDATE deliveries SET sent_at = now() - interval '1 minute' WHERE id = $1`, julieD.ID)
	require.NoError(t, err)
	srv.Deliver(t, dsn(dispatch.EnvelopeID(julieD.ID), julie, "failed", "5.1.1"))
	srv.Deliver(t, dsn(dispatch.EnvelopeID(julieD.ID), julie, "failed", "5.1.1"))
	b.drain(t, 2)
	require.EqualValues(t, 1, ackDelay(t, b.registry, dispatch.AckFailed).count)
	require.EqualValues(t, 1, ackDelay(t, b.registry, dispatch.AckDelayed).count, "Julie's delay came without a sending time")
}

// histogram is what a histogram observed: its count, sum and cumulative
// count by upper bound.
type histogram struct {
	count   uint64
	sum     float64
	buckets map[float64]uint64
}

// ackDelay returns mssdispatch_ack_delay_seconds{ack} as g gathers it.
func ackDelay(t *testing.T, g prometheus.Gatherer, ack string) histogram {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "mssdispatch_ack_delay_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() != ack {
				continue
			}
			h := histogram{count: m.GetHistogram().GetSampleCount(), sum: m.GetHistogram().GetSampleSum(),
				buckets: map[float64]uint64{}}
			for _, bucket := range m.GetHistogram().GetBucket() {
				h.buckets[bucket.GetUpperBound()] = bucket.GetCumulativeCount()
			}
			return h
		}
	}
	t.Fatalf("no mssdispatch_ack_delay_seconds{ack=%q}", ack)
	return histogram{}
}
