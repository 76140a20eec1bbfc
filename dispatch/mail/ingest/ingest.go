package ingest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// Acknowledger applies and records what the mailbox says, and keeps the
// mailbox's checkpoint: a *Ledger.
type Acknowledger interface {
	// AcknowledgeEmail finds the delivery message n concerns, applies a to
	// it and records n; an error leaves the message in the mailbox, to be
	// read again (Ledger.AcknowledgeEmail).
	AcknowledgeEmail(ctx context.Context, n *mail.Notification, a EmailAck) (AckRecord, error)
	mail.Checkpoint
}

// Config configures an Ingester.
type Config struct {
	// Pool is the database where the reading lock is taken. Required.
	Pool *pgxpool.Pool
	// Acknowledger applies and records the acknowledgements, and keeps the
	// checkpoint (NewLedger). Required.
	Acknowledger Acknowledger
	// Inbox says how to read the mailbox. Required.
	Inbox mail.InboxConfig
	// LockRetry is how often an instance that does not hold the reading
	// lock tries to take it. Defaults to 30 seconds.
	LockRetry time.Duration
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Ingester reads the BAL applicative's mailbox and turns each DSN, MDN and
// reply into the state of the delivery it concerns. One instance at a time
// reads it (a PostgreSQL advisory lock); the others wait their turn.
type Ingester struct {
	cfg   Config
	inbox *mail.Inbox
	seen  *prometheus.CounterVec
	delay *prometheus.HistogramVec
}

// acks are the acknowledgements a message makes, the values of the ack
// label of mssdispatch_ack_delay_seconds.
var acks = []string{dispatch.AckDelivered, dispatch.AckRead, dispatch.AckFailed, dispatch.AckDelayed, dispatch.AckReply}

// delayBuckets bound mssdispatch_ack_delay_seconds: from a DSN within
// seconds to an MDN read after a week away.
var delayBuckets = []float64{10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
	86400, 2 * 86400, 4 * 86400, 7 * 86400}

// New validates cfg. Its metrics are
// mssdispatch_notifications_total{kind,outcome} and
// mssdispatch_ack_delay_seconds{ack}: the time from an email's sending
// (accepted by SMTP) to the first acknowledgement of each kind it gets,
// counted once whichever instance reads the mailbox.
func New(cfg Config) (*Ingester, error) {
	if cfg.Pool == nil || cfg.Acknowledger == nil {
		return nil, errors.New("ingest: Config.Pool and Acknowledger are required")
	}
	if cfg.LockRetry == 0 {
		cfg.LockRetry = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	in := &Ingester{cfg: cfg, seen: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mssdispatch_notifications_total",
		Help: "Messages read from the BAL applicative's mailbox, by kind (dsn, mdn, reply, unknown) and outcome.",
	}, []string{"kind", "outcome"}), delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mssdispatch_ack_delay_seconds",
		Help:    "Time from an email's sending to its first acknowledgement of each kind (delivered, read, failed, delayed, reply).",
		Buckets: delayBuckets,
	}, []string{"ack"})}
	for _, ack := range acks {
		in.delay.WithLabelValues(ack) // every kind is exported, at zero before its first
	}
	inbox, err := mail.NewInbox(cfg.Inbox, cfg.Acknowledger, in.handle, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	in.inbox = inbox
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{in.seen, in.delay} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("ingest: register metrics: %w", err)
			}
		}
	}
	return in, nil
}

// Run reads the mailbox until ctx is cancelled, while this instance holds
// the reading lock.
func (in *Ingester) Run(ctx context.Context) error {
	for {
		release, held, err := tryLock(ctx, in.cfg.Pool, lockKey)
		if held {
			err = in.inbox.Run(ctx)
			release()
			return err
		}
		if err != nil {
			in.cfg.Logger.WarnContext(ctx, "acknowledgement reader: cannot take its lock", "error", redact.Text(err.Error()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(in.cfg.LockRetry):
		}
	}
}

// Drain reads what the mailbox holds now, once, without the lock (for tests
// and tools), and returns how many messages it read.
func (in *Ingester) Drain(ctx context.Context) (int, error) { return in.inbox.Drain(ctx) }

// handle processes one message of the mailbox: it classifies it and has the
// Acknowledger apply each acknowledgement it makes. A message that concerns no
// delivery of this service is Unknown.
func (in *Ingester) handle(ctx context.Context, raw []byte) (mail.Verdict, error) {
	n, err := mail.ParseNotification(bytes.NewReader(raw))
	if err != nil {
		// Unreadable: kept aside for a person, never dropped.
		unreadable := EmailAck{Outcome: "unreadable", Detail: err.Error()}
		if _, err := in.acknowledge(ctx, &mail.Notification{Kind: mail.KindUnknown}, unreadable); err != nil {
			return 0, err
		}
		return mail.Unknown, nil
	}
	handled := false
	for _, a := range classify(n) {
		id, err := in.acknowledge(ctx, n, a)
		if err != nil {
			return 0, err
		}
		handled = handled || id != 0
	}
	if !handled {
		return mail.Unknown, nil
	}
	return mail.Processed, nil
}

// acknowledge has the Acknowledger apply a, observes its delay when it is the
// first of its kind, counts the message and returns the delivery it
// concerns (0: none).
func (in *Ingester) acknowledge(ctx context.Context, n *mail.Notification, a EmailAck) (int64, error) {
	rec, err := in.cfg.Acknowledger.AcknowledgeEmail(ctx, n, a)
	if err != nil {
		return 0, err
	}
	if rec.First {
		in.delay.WithLabelValues(a.Ack).Observe(rec.Delay.Seconds())
	}
	in.seen.WithLabelValues(n.Kind, rec.Outcome).Inc()
	in.cfg.Logger.InfoContext(ctx, "notification", "kind", n.Kind, "outcome", rec.Outcome, "delivery_id", rec.DeliveryID)
	return rec.DeliveryID, nil
}

// classify returns the acknowledgements n makes: one per recipient block of
// a DSN, one for any other message.
func classify(n *mail.Notification) []EmailAck {
	switch n.Kind {
	case mail.KindDSN:
		out := make([]EmailAck, len(n.Recipients))
		for i, r := range n.Recipients {
			outcome, ack := dsnAck(r.Action)
			detail := strings.TrimSpace(fmt.Sprintf("DSN %s %s %s", r.Action, r.Status, r.DiagnosticCode))
			out[i] = EmailAck{Recipient: &n.Recipients[i], Ack: ack, Outcome: outcome, Detail: detail}
		}
		return out
	case mail.KindMDN:
		outcome, ack, detail := mdnAck(n.Disposition)
		return []EmailAck{{Ack: ack, Outcome: outcome, Detail: detail}}
	case mail.KindReply:
		return []EmailAck{{Ack: dispatch.AckReply, Outcome: "reply", Detail: "réponse du destinataire"}}
	}
	return []EmailAck{{Outcome: "unknown"}}
}

// dsnAck maps a DSN action to the outcome recorded and the acknowledgement.
func dsnAck(action string) (outcome, ack string) {
	switch action {
	case "delivered":
		return "delivered", dispatch.AckDelivered
	case "failed":
		return "failed", dispatch.AckFailed
	case "delayed":
		return "delayed", dispatch.AckDelayed
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
		return "failed", dispatch.AckFailed, detail
	case d.Type == "displayed" || d.Type == "processed":
		return "read", dispatch.AckRead, detail
	}
	return "ignored", "", detail
}
