package dispatch

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// AckConfig configures the ingestion of the acknowledgements that come back
// to the BAL applicative's mailbox.
type AckConfig struct {
	// Pool is the database. Required.
	Pool *pgxpool.Pool
	// Service records the acknowledgements (Service.Acknowledge). Required.
	Service *Service
	// Inbox says how to read the mailbox. Required.
	Inbox mail.InboxConfig
	// LockRetry is how often an instance that does not hold the ingestion
	// lock tries to take it. Defaults to 30 seconds.
	LockRetry time.Duration
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// AckIngester reads the BAL applicative's mailbox and turns each DSN, MDN
// and reply into the state of the delivery it concerns. One instance at a
// time reads it (a PostgreSQL advisory lock); the others wait their turn.
type AckIngester struct {
	cfg   AckConfig
	inbox *mail.Inbox
	seen  *prometheus.CounterVec
	delay *prometheus.HistogramVec
}

// ingestLockKey is the advisory lock of the mailbox reader.
const ingestLockKey = 0x6d73736163 // "mssac"

// ackDelayBuckets bound mssdispatch_ack_delay_seconds: from a DSN within
// seconds to an MDN read after a week away.
var ackDelayBuckets = []float64{10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
	86400, 2 * 86400, 4 * 86400, 7 * 86400}

// NewAckIngester validates cfg. Its metrics are
// mssdispatch_notifications_total{kind,outcome} and
// mssdispatch_ack_delay_seconds{ack}: the time from an email's sending
// (accepted by SMTP) to the first acknowledgement of each kind it gets,
// counted once whichever instance reads the mailbox.
func NewAckIngester(cfg AckConfig) (*AckIngester, error) {
	if cfg.Pool == nil || cfg.Service == nil {
		return nil, errors.New("dispatch: AckConfig.Pool and Service are required")
	}
	if cfg.LockRetry == 0 {
		cfg.LockRetry = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &AckIngester{cfg: cfg, seen: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mssdispatch_notifications_total",
		Help: "Messages read from the BAL applicative's mailbox, by kind (dsn, mdn, reply, unknown) and outcome.",
	}, []string{"kind", "outcome"}), delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mssdispatch_ack_delay_seconds",
		Help:    "Time from an email's sending to its first acknowledgement of each kind (delivered, read, failed, delayed, reply).",
		Buckets: ackDelayBuckets,
	}, []string{"ack"})}
	for ack := range ackEvents {
		a.delay.WithLabelValues(ack) // every kind is exported, at zero before its first
	}
	inbox, err := mail.NewInbox(cfg.Inbox, checkpointStore{cfg.Pool}, a.Handle, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("dispatch: %w", err)
	}
	a.inbox = inbox
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{a.seen, a.delay} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("dispatch: register metrics: %w", err)
			}
		}
	}
	return a, nil
}

// Run reads the mailbox until ctx is cancelled, while this instance holds
// the ingestion lock.
func (a *AckIngester) Run(ctx context.Context) error {
	for {
		release, err := tryLock(ctx, a.cfg.Pool, ingestLockKey)
		if err == nil && release != nil {
			err = a.inbox.Run(ctx)
			release()
			return err
		}
		if err != nil {
			a.cfg.Logger.WarnContext(ctx, "acknowledgement reader: cannot take its lock", "error", redact.Text(err.Error()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(a.cfg.LockRetry):
		}
	}
}

// Drain reads what the mailbox holds now, once (for tests and tools).
func (a *AckIngester) Drain(ctx context.Context) (int, error) { return a.inbox.Drain(ctx) }

// Handle processes one message of the mailbox: it classifies it, finds the
// delivery it concerns (by the DSN's envelope id, the original Message-ID,
// In-Reply-To and References), records it and acknowledges the delivery.
// A message that concerns no delivery of this service is Unknown.
func (a *AckIngester) Handle(ctx context.Context, raw []byte) (mail.Verdict, error) {
	n, err := mail.ParseNotification(bytes.NewReader(raw))
	if err != nil {
		// Unreadable: kept aside for a person, never dropped.
		a.record(ctx, notificationRecord{Kind: mail.KindUnknown, Outcome: "unreadable", Detail: err.Error()})
		return mail.Unknown, nil
	}
	var handled bool
	switch n.Kind {
	case mail.KindDSN:
		for _, r := range n.Recipients {
			id, err := a.findDelivery(ctx, n, r.FinalRecipient, r.OriginalRecipient)
			if err != nil {
				return 0, err
			}
			outcome, ack := dsnAck(r.Action)
			detail := strings.TrimSpace(fmt.Sprintf("DSN %s %s %s", r.Action, r.Status, r.DiagnosticCode))
			if err := a.apply(ctx, n, id, ack, outcome, detail); err != nil {
				return 0, err
			}
			handled = handled || id != 0
		}
	case mail.KindMDN:
		id, err := a.findDelivery(ctx, n, "", "")
		if err != nil {
			return 0, err
		}
		outcome, ack, detail := mdnAck(n.Disposition)
		if err := a.apply(ctx, n, id, ack, outcome, detail); err != nil {
			return 0, err
		}
		handled = id != 0
	case mail.KindReply:
		id, err := a.findDelivery(ctx, n, "", "")
		if err != nil {
			return 0, err
		}
		if err := a.apply(ctx, n, id, AckReply, "reply", "réponse du destinataire"); err != nil {
			return 0, err
		}
		handled = id != 0
	default:
		a.record(ctx, notificationRecord{Kind: n.Kind, MessageID: n.MessageID, Outcome: "unknown"})
	}
	if !handled {
		return mail.Unknown, nil
	}
	return mail.Processed, nil
}

// apply acknowledges delivery id (0: none found) and records the message.
func (a *AckIngester) apply(ctx context.Context, n *mail.Notification, id int64, ack, outcome, detail string) error {
	if id == 0 {
		outcome = "unmatched"
	} else if ack != "" {
		err := a.cfg.Service.Acknowledge(ctx, id, ack, detail)
		switch {
		case err == nil:
			a.observeDelay(ctx, id, ack)
		case !errors.Is(err, ErrNotFound):
			return err
		}
	}
	a.record(ctx, notificationRecord{Kind: n.Kind, MessageID: n.MessageID, DeliveryID: id, Outcome: outcome, Detail: detail})
	return nil
}

// observeDelay observes the delay of the acknowledgement ack just recorded
// for delivery id when it is the first of its kind since the email was sent
// (a duplicate DSN is not). Only the instance holding the ingestion lock
// applies acknowledgements, so each counts once (were two to apply the same
// one at once, each reading after its own commit, at most one would count
// it). A failure to read the delay is logged.
func (a *AckIngester) observeDelay(ctx context.Context, id int64, ack string) {
	delay, first, err := firstAckDelay(ctx, a.cfg.Pool, id, ackEvents[ack])
	if err != nil {
		a.cfg.Logger.WarnContext(ctx, "acknowledgement delay", "delivery_id", id, "error", redact.Text(err.Error()))
		return
	}
	if first {
		a.delay.WithLabelValues(ack).Observe(delay.Seconds())
	}
}

// record keeps the message's trace and counts it; a failure to record is logged.
func (a *AckIngester) record(ctx context.Context, r notificationRecord) {
	a.seen.WithLabelValues(r.Kind, r.Outcome).Inc()
	if err := insertNotification(ctx, a.cfg.Pool, r); err != nil {
		a.cfg.Logger.WarnContext(ctx, "record notification", "error", redact.Text(err.Error()))
	}
	a.cfg.Logger.InfoContext(ctx, "notification", "kind", r.Kind, "outcome", r.Outcome, "delivery_id", r.DeliveryID)
}

// findDelivery returns the delivery n concerns, or 0: by the envelope id of
// a DSN (checked against the recipient when the DSN names one), else by the
// Message-ID of the email it answers.
func (a *AckIngester) findDelivery(ctx context.Context, n *mail.Notification, final, original string) (int64, error) {
	if id, ok := strings.CutPrefix(n.EnvelopeID, "mssdispatch-"); ok {
		if v, err := strconv.ParseInt(id, 10, 64); err == nil {
			found, err := deliveryForEnvelope(ctx, a.cfg.Pool, v, final, original)
			if err != nil || found != 0 {
				return found, err
			}
		}
	}
	ids := append([]string{n.OriginalMessageID}, n.InReplyTo...)
	ids = append(ids, n.References...)
	return deliveryForMessageIDs(ctx, a.cfg.Pool, ids)
}

// dsnAck maps a DSN action to the outcome recorded and the acknowledgement.
func dsnAck(action string) (outcome, ack string) {
	switch action {
	case "delivered":
		return "delivered", AckDelivered
	case "failed":
		return "failed", AckFailed
	case "delayed":
		return "delayed", AckDelayed
	}
	return "ignored", "" // relayed, expanded: nothing to learn
}

// mdnAck maps an MDN disposition to the outcome, the acknowledgement and its
// detail: displayed or processed is read, an error (MSSanté 900–906: the
// receiving software could not integrate the document) is a failure.
func mdnAck(d *mail.Disposition) (outcome, ack, detail string) {
	if d == nil {
		return "ignored", "", ""
	}
	detail = "MDN " + d.Type
	switch {
	case d.Failed():
		detail = strings.TrimSpace(fmt.Sprintf("MDN %s/error %s %s", d.Type, d.ErrorCode, cmp.Or(d.ErrorLabel, d.Error)))
		return "failed", AckFailed, detail
	case d.Type == "displayed" || d.Type == "processed":
		return "read", AckRead, detail
	}
	return "ignored", "", detail
}

// checkpointStore keeps the mailbox checkpoints in imap_checkpoints.
type checkpointStore struct{ pool *pgxpool.Pool }

func (c checkpointStore) LoadCheckpoint(ctx context.Context, mailbox string) (uint32, uint32, error) {
	return loadCheckpoint(ctx, c.pool, mailbox)
}

func (c checkpointStore) SaveCheckpoint(ctx context.Context, mailbox string, validity, last uint32) error {
	return saveCheckpoint(ctx, c.pool, mailbox, validity, last)
}
