package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/mail/ingest"
	"github.com/mssdispatch/mssdispatch/internal/imaptest"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
)

const (
	sender = "bal-applicative@ch-demo.mssante.fr"
	claire = "claire.dupont-demo@medecin-demo.mssante.fr"
	julie  = "julie.roux@medecin-demo.mssante.fr"
	// The deliveries of the emails to Claire and Julie, and their Message-IDs.
	claireID, julieID   = 1, 2
	claireMsg, julieMsg = "claire-1@ch-demo.mssante.fr", "julie-2@ch-demo.mssante.fr"
)

var quiet = slog.New(slog.DiscardHandler)

// dsn is a DSN of the email with envelope id envID; each block is a
// recipient, its action and its status.
func dsn(envID string, blocks ...[3]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: MAILER-DAEMON@op.example\r\nTo: %s\r\nSubject: DSN\r\nMessage-Id: <dsn-%s-%s@op.example>\r\n"+
		"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nreport\r\n"+
		"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; op.example\r\nOriginal-Envelope-Id: %s\r\n",
		sender, envID, blocks[0][1], envID)
	for _, r := range blocks {
		fmt.Fprintf(&b, "\r\nFinal-Recipient: rfc822; %s\r\nAction: %s\r\nStatus: %s\r\n", r[0], r[1], r[2])
	}
	b.WriteString("--b--\r\n")
	return b.String()
}

func mdn(originalID, disposition string) string {
	return fmt.Sprintf("From: lps@medecin-demo.mssante.fr\r\nTo: %s\r\nSubject: MDN\r\nMessage-Id: <mdn-%s@op.example>\r\n"+
		"Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n"+
		"--b\r\nContent-Type: message/disposition-notification\r\n\r\nOriginal-Message-ID: <%s>\r\nDisposition: %s\r\n--b--\r\n",
		sender, originalID, originalID, disposition)
}

// domain is an Acknowledger in memory, knowing the emails to Claire and
// Julie: it finds a delivery by the ENVID and recipient of a DSN, or by the
// Message-ID a message answers, and records what it is asked.
type domain struct {
	imaptest.Checkpoint
	mu sync.Mutex
	// first holds the delay of the first acknowledgement of each kind,
	// reported once.
	first map[string]time.Duration
	fail  error
	asked []string // "kind outcome/ack detail"
}

func newDomain() *domain { return &domain{first: map[string]time.Duration{}} }

var deliveries = map[string]int64{
	mail.EnvelopeID(claireID) + " " + claire: claireID, mail.EnvelopeID(julieID) + " " + julie: julieID,
	claireMsg: claireID, julieMsg: julieID,
}

func (d *domain) AcknowledgeEmail(_ context.Context, n *mail.Notification, a ingest.EmailAck) (ingest.AckRecord, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return ingest.AckRecord{}, d.fail
	}
	d.asked = append(d.asked, strings.TrimSpace(fmt.Sprintf("%s %s/%s %s", n.Kind, a.Outcome, a.Ack, a.Detail)))
	rec := ingest.AckRecord{Outcome: a.Outcome}
	if n.Kind == mail.KindUnknown {
		return rec, nil
	}
	keys := []string{n.OriginalMessageID}
	if a.Recipient != nil {
		keys = append(keys, n.EnvelopeID+" "+a.Recipient.FinalRecipient)
	}
	for _, k := range append(keys, n.InReplyTo...) {
		if id := deliveries[k]; id != 0 {
			rec.DeliveryID = id
		}
	}
	if rec.DeliveryID == 0 {
		rec.Outcome = "unmatched"
	} else if delay, ok := d.first[a.Ack]; ok && a.Ack != "" {
		rec.First, rec.Delay = true, delay
		delete(d.first, a.Ack)
	}
	return rec, nil
}

func (d *domain) askedSoFar() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.asked...)
}

// bundle is an Ingester of the mailbox of srv, applying to d, its metrics
// in registry.
type bundle struct {
	srv      *imaptest.Server
	d        *domain
	in       *ingest.Ingester
	registry *prometheus.Registry
}

// start returns an Ingester of a new mailbox; pool may be nil when the test
// does not Run it.
func start(t *testing.T, pool *pgxpool.Pool) *bundle {
	t.Helper()
	if pool == nil {
		pool = &pgxpool.Pool{} // Drain takes no lock
	}
	b := &bundle{srv: imaptest.Start(t), d: newDomain(), registry: prometheus.NewRegistry()}
	var err error
	b.in, err = ingest.New(ingest.Config{Pool: pool, Acknowledger: b.d, Registerer: b.registry, Logger: quiet,
		LockRetry: 20 * time.Millisecond, Inbox: mail.InboxConfig{Addr: b.srv.Addr, TLS: mail.TLSNone,
			Username: imaptest.Username, Password: imaptest.Password}})
	require.NoError(t, err)
	return b
}

// drain reads the mailbox once and checks it found want messages.
func (b *bundle) drain(t *testing.T, want int) {
	t.Helper()
	n, err := b.in.Drain(context.Background())
	require.NoError(t, err)
	require.Equal(t, want, n)
}

// TestIngest reads DSNs, MDNs, a reply, junk and an unreadable message from
// the BAL's mailbox over IMAP and checks what the domain was asked, the
// folders and mssdispatch_notifications_total.
func TestIngest(t *testing.T) {
	t.Parallel()
	b := start(t, nil)
	b.srv.Deliver(t,
		dsn(mail.EnvelopeID(claireID), [3]string{claire, "delivered", "2.0.0"}),
		mdn(claireMsg, "automatic-action/MDN-sent-automatically; processed"),
		dsn(mail.EnvelopeID(julieID), [3]string{julie, "delayed", "4.4.1"}),
		mdn(julieMsg, "automatic-action/MDN-sent-automatically; processed/Error: 902^Patient inconnu"),
		"From: "+claire+"\r\nSubject: Re: lettre\r\nMessage-Id: <r1@x>\r\nIn-Reply-To: <"+claireMsg+">\r\n\r\nMerci\r\n",
		dsn(mail.EnvelopeID(julieID), [3]string{"someone.else@x.example", "failed", "5.1.1"}), // not ours: wrong recipient
		dsn(mail.EnvelopeID(claireID), [3]string{"someone.else@x.example", "failed", "5.1.1"},
			[3]string{claire, "relayed", "2.0.0"}), // one block is Claire's
		mdn(claireMsg, "manual-action/MDN-sent-manually; deleted"),
		"From: news@x.example\r\nSubject: promo\r\nMessage-Id: <n1@x>\r\n\r\nhello\r\n",
		"From: MAILER-DAEMON@op.example\r\nSubject: DSN\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"+
			"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; op.example\r\n--b--\r\n", // no recipient block
	)

	b.drain(t, 10)

	asked := b.d.askedSoFar()
	require.Len(t, asked, 11)
	require.Equal(t, []string{
		"dsn delivered/delivered DSN delivered 2.0.0",
		"mdn read/read MDN processed",
		"dsn delayed/delayed DSN delayed 4.4.1",
		"mdn failed/failed MDN processed/error 902 Patient inconnu",
		"reply reply/reply réponse du destinataire",
		"dsn failed/failed DSN failed 5.1.1",
		"dsn failed/failed DSN failed 5.1.1",
		"dsn ignored/ DSN relayed 2.0.0",
		"mdn ignored/ MDN deleted",
		"unknown unknown/",
	}, asked[:10])
	require.True(t, strings.HasPrefix(asked[10], "unknown unreadable/ "+mail.ErrNotification.Error()), asked[10])

	// The messages that concern a delivery are processed, the others
	// unknown; a second pass finds nothing new.
	require.Equal(t, map[string]uint32{"INBOX": 0, "Traites": 7, "Inconnus": 3},
		b.srv.Counts(t, "INBOX", "Traites", "Inconnus"))
	require.EqualValues(t, 10, b.d.LastUID(), "the Acknowledger keeps the checkpoint")
	b.drain(t, 0)

	require.Equal(t, map[string]float64{"dsn delivered": 1, "mdn read": 1, "dsn delayed": 1, "mdn failed": 1,
		"reply reply": 1, "dsn unmatched": 2, "dsn ignored": 1, "mdn ignored": 1, "unknown unknown": 1,
		"unknown unreadable": 1}, notifications(t, b.registry))
}

// TestIngestDelayMetric checks mssdispatch_ack_delay_seconds: every kind is
// exported, and each acknowledgement the domain says is the first of its
// kind observes its delay.
func TestIngestDelayMetric(t *testing.T) {
	t.Parallel()
	b := start(t, nil)
	b.d.first[dispatch.AckDelivered] = 2*time.Hour + 10*time.Minute
	b.d.first[dispatch.AckRead] = 3 * time.Hour
	b.srv.Deliver(t,
		dsn(mail.EnvelopeID(claireID), [3]string{claire, "delivered", "2.0.0"}),
		dsn(mail.EnvelopeID(claireID), [3]string{claire, "delivered", "2.0.0"}), // the operator's duplicate
		mdn(claireMsg, "automatic-action/MDN-sent-automatically; processed"),
		dsn(mail.EnvelopeID(julieID), [3]string{julie, "delayed", "4.4.1"}), // not a first
	)
	b.drain(t, 4)

	for ack, want := range map[string]uint64{dispatch.AckDelivered: 1, dispatch.AckRead: 1, dispatch.AckDelayed: 0,
		dispatch.AckReply: 0, dispatch.AckFailed: 0} {
		require.Equal(t, want, ackDelay(t, b.registry, ack).count, ack)
	}
	delivered := ackDelay(t, b.registry, dispatch.AckDelivered)
	require.Equal(t, (2*time.Hour + 10*time.Minute).Seconds(), delivered.sum)
	require.Zero(t, delivered.buckets[3600], "not within the hour")
	require.EqualValues(t, 1, delivered.buckets[3*3600], "within three hours")
	require.Equal(t, (3 * time.Hour).Seconds(), ackDelay(t, b.registry, dispatch.AckRead).sum)
}

// TestIngestDomainError leaves the message in the mailbox when the domain
// cannot apply it, and reads it again once it can.
func TestIngestDomainError(t *testing.T) {
	t.Parallel()
	b := start(t, nil)
	b.srv.Deliver(t, dsn(mail.EnvelopeID(claireID), [3]string{claire, "delivered", "2.0.0"}))
	b.d.fail = errors.New("database down")
	_, err := b.in.Drain(context.Background())
	require.ErrorContains(t, err, "database down")
	require.Equal(t, map[string]uint32{"INBOX": 1}, b.srv.Counts(t, "INBOX"))
	require.Empty(t, notifications(t, b.registry))

	b.d.fail = nil
	b.drain(t, 1)
	require.Equal(t, map[string]uint32{"INBOX": 0, "Traites": 1}, b.srv.Counts(t, "INBOX", "Traites"))
}

// TestOneReaderAtATime runs the reader while another instance holds the
// reading lock: it waits, reads once the lock is free, and holds it until
// it stops.
func TestOneReaderAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	// The lock every version of the service takes: changing it would let
	// an old and a new instance read the mailbox at once.
	const lockKey int64 = 0x6d73736163
	other, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer other.Release()
	tryLock := func() bool {
		t.Helper()
		var ok bool
		require.NoError(t, other.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey).Scan(&ok))
		return ok
	}
	require.True(t, tryLock())

	b := start(t, pool)
	b.srv.Deliver(t, "From: "+claire+"\r\nSubject: Re: lettre\r\nMessage-Id: <r1@x>\r\nIn-Reply-To: <"+claireMsg+">\r\n\r\nMerci\r\n")
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.in.Run(runCtx) }()
	time.Sleep(200 * time.Millisecond) // ten tries
	require.Equal(t, map[string]uint32{"INBOX": 1}, b.srv.Counts(t, "INBOX"), "the other instance reads")

	_, err = other.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockKey)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.srv.Counts(t, "Traites")["Traites"] == 1 }, 10*time.Second, 20*time.Millisecond)
	require.False(t, tryLock(), "the reader holds the lock")

	stop()
	require.NoError(t, <-done)
	require.True(t, tryLock(), "released when the reader stops")
}

// TestNew refuses a configuration without its pool or domain.
func TestNew(t *testing.T) {
	t.Parallel()
	inbox := mail.InboxConfig{Addr: "127.0.0.1:143", Username: "bal"}
	_, err := ingest.New(ingest.Config{Acknowledger: newDomain(), Inbox: inbox})
	require.ErrorContains(t, err, "Pool and Acknowledger are required")
	_, err = ingest.New(ingest.Config{Pool: &pgxpool.Pool{}, Inbox: inbox})
	require.ErrorContains(t, err, "Pool and Acknowledger are required")
	_, err = ingest.New(ingest.Config{Pool: &pgxpool.Pool{}, Acknowledger: newDomain()})
	require.ErrorContains(t, err, "IMAP address")
}

// notifications returns mssdispatch_notifications_total by "kind outcome",
// as g gathers it.
func notifications(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "mssdispatch_notifications_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[labels["kind"]+" "+labels["outcome"]] = m.GetCounter().GetValue()
		}
	}
	return out
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
