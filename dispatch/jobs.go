package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
)

// ResolveArgs is the job that turns a report's recipients into deliveries.
type ResolveArgs struct {
	ReportID int64 `json:"report_id"`
}

// Kind is the River job kind.
func (ResolveArgs) Kind() string { return "resolve_report" }

// InsertOpts makes the job unique per report.
func (ResolveArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// SendArgs is the job that sends one MSSanté delivery.
type SendArgs struct {
	DeliveryID int64 `json:"delivery_id"`
}

// Kind is the River job kind.
func (SendArgs) Kind() string { return "send_delivery" }

// InsertOpts makes the job unique per delivery.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Resolver decides the routes of a listed recipient.
type Resolver interface {
	Resolve(ctx context.Context, r correspondents.Recipient) ([]correspondents.Route, error)
}

// WorkerConfig configures the workers.
type WorkerConfig struct {
	// Pool is the database. Required.
	Pool *pgxpool.Pool
	// Resolver decides recipients' routes. Required.
	Resolver Resolver
	// Transport transmits emails. Required.
	Transport mail.Transport
	// Sender is the BAL applicative's address, the From of every email. Required.
	Sender string
	// NIL is the product reference written in the X-MSS-NIL header of every
	// email (printable ASCII). Defaults to DefaultNIL.
	NIL string
	// SourceID is the OID written as the sourceId of the XDM submission set:
	// the sending organisation's or application's OID. Defaults to
	// DemoSourceID, which is fit for tests and demonstrations only.
	SourceID string
	// HealthcareFacilityType and PracticeSetting override the XDS codes of
	// the sending organisation in METADATA.XML. Zero (the default) takes them
	// from the CDA header, else cda.DefaultHealthcareFacilityType and
	// cda.DefaultPracticeSetting.
	HealthcareFacilityType, PracticeSetting cda.Code
	// PatientNoReply adds X-MSS-MES: FIN to the emails sent to patients, who
	// are then told not to reply. Defaults to false.
	PatientNoReply bool
	// FallbackRecipients sends to the correspondents a DPI lists outside the
	// volet (ROL, PV1-8, OBR-28, PD1-4) when a message has no PRT RCT.
	// Defaults to false: they are kept but not sent to.
	FallbackRecipients bool
	// Registerer receives the workers' metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// AddWorkers validates cfg and registers the package's workers.
func AddWorkers(workers *river.Workers, cfg WorkerConfig) error {
	switch {
	case cfg.Pool == nil:
		return errors.New("dispatch: WorkerConfig.Pool is required")
	case cfg.Resolver == nil:
		return errors.New("dispatch: WorkerConfig.Resolver is required")
	case cfg.Transport == nil:
		return errors.New("dispatch: WorkerConfig.Transport is required")
	}
	_, domain, ok := strings.Cut(cfg.Sender, "@")
	if !ok || domain == "" {
		return fmt.Errorf("dispatch: sender %q is not an email address", cfg.Sender)
	}
	if cfg.NIL == "" {
		cfg.NIL = DefaultNIL
	}
	for _, c := range cfg.NIL {
		if c < ' ' || c > '~' {
			return fmt.Errorf("dispatch: NIL %q: want printable ASCII", cfg.NIL)
		}
	}
	if cfg.SourceID == "" {
		cfg.SourceID = DemoSourceID
	}
	if !IsOID(cfg.SourceID) {
		return fmt.Errorf("dispatch: SourceID %q is not an OID", cfg.SourceID)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	sends := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mssdispatch_sends_total",
		Help: "Emails handed to the transport, by result (sent, failed, retry).",
	}, []string{"result"})
	for _, result := range []string{"sent", "failed", "retry"} {
		sends.WithLabelValues(result)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(sends); err != nil {
			return fmt.Errorf("dispatch: register metrics: %w", err)
		}
	}
	if err := river.AddWorkerSafely(workers, &resolveWorker{cfg: cfg, domain: domain}); err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &sendWorker{cfg: cfg, sends: sends}); err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	return nil
}

type resolveWorker struct {
	river.WorkerDefaults[ResolveArgs]
	cfg    WorkerConfig
	domain string
}

// Work creates the deliveries of the report's recipients that have none yet
// and enqueues their sends, completing the job in the same transaction.
func (w *resolveWorker) Work(ctx context.Context, job *river.Job[ResolveArgs]) error {
	reportID := job.Args.ReportID
	flags, patient, recipients, err := unresolvedRecipients(ctx, w.cfg.Pool, reportID)
	if err != nil {
		return err
	}
	type planned struct {
		recipientID int64
		route       correspondents.Route
	}
	var plan []planned
	useFallbacks := w.cfg.FallbackRecipients && !hasRole(recipients, RoleResultCopiesTo)
	for _, r := range recipients {
		switch {
		case r.Role == RoleSender:
			continue
		case isFallbackRole(r.Role) && !useFallbacks:
			continue
		case r.Kind != KindPatient && !flags.SendsToProfessionals():
			plan = append(plan, planned{r.ID, correspondents.Route{Channel: correspondents.ChannelMSSante,
				Reason: ReasonNotForProfessionals, Text: "Le DPI a demandé de ne pas envoyer ce document aux professionnels (DESTMSSANTEPS=N)."}})
			continue
		case r.Role == RoleServed:
			// Told of the new version or the deletion where they got the old one.
			plan = append(plan, planned{r.ID, correspondents.Route{Channel: correspondents.ChannelMSSante, Address: r.Address,
				Name: r.Name(), Reason: ReasonServed, Text: fmt.Sprintf("A reçu la version précédente du document à cette adresse (%s).", r.Address)}})
			continue
		}
		rc := correspondents.Recipient{Kind: r.Kind, NationalID: r.NationalID, FINESS: r.FINESS, Name: r.Name(),
			Address: r.Address, PostalAddress: r.PostalAddress}
		if r.Kind == KindPatient {
			rc.INS, rc.INSQualified, rc.PostalAddress = patient.INS, patient.INSQualified, patient.Address
		}
		routes, err := w.cfg.Resolver.Resolve(ctx, rc)
		if err != nil {
			return fmt.Errorf("resolve report %d: %w", reportID, err)
		}
		for _, route := range routes {
			plan = append(plan, planned{recipientID: r.ID, route: route})
		}
	}
	return pgx.BeginFunc(ctx, w.cfg.Pool, func(tx pgx.Tx) error {
		var sends []river.InsertManyParams
		for _, p := range plan {
			d := newDelivery{RecipientID: p.recipientID, Channel: p.route.Channel, Address: p.route.Address,
				Name: p.route.Name, PostalAddress: p.route.PostalAddress, Reason: p.route.Reason, ReasonText: p.route.Text}
			switch {
			case p.route.Reason == ReasonNotForProfessionals:
				d.Status = StatusCancelled
			case p.route.Review:
				d.Status = StatusReview
			case p.route.Channel == correspondents.ChannelMSSante:
				d.Status = StatusQueued
				d.MessageID = newMessageID(w.domain)
			default:
				d.Status = StatusPaperPending
			}
			id, created, err := insertDelivery(ctx, tx, reportID, d)
			if err != nil {
				return err
			}
			if created && d.Status == StatusQueued {
				sends = append(sends, river.InsertManyParams{Args: SendArgs{DeliveryID: id}})
			}
		}
		if len(sends) > 0 {
			client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
			if err != nil {
				return fmt.Errorf("enqueue sends: %w", err)
			}
			if _, err := client.InsertManyTx(ctx, tx, sends); err != nil {
				return fmt.Errorf("enqueue sends: %w", err)
			}
		}
		if err := setReportStatus(ctx, tx, reportID, ReportResolved); err != nil {
			return err
		}
		if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
			return fmt.Errorf("complete resolve job: %w", err)
		}
		w.cfg.Logger.InfoContext(ctx, "report resolved", "report_id", reportID, "deliveries", len(plan), "sends", len(sends))
		return nil
	})
}

// Reasons of the deliveries the dispatch decides itself, besides the
// resolver's (correspondents.Reason*).
const (
	// ReasonNotForProfessionals is the reason of a delivery cancelled because
	// the DPI's flags exclude professionals.
	ReasonNotForProfessionals = "flags_no_professionals"
	// ReasonServed is the reason of a replacement or deletion sent to an
	// address that received the previous version of the document.
	ReasonServed = "previously_served"
)

func hasRole(rs []storedRecipient, role string) bool {
	for _, r := range rs {
		if r.Role == role {
			return true
		}
	}
	return false
}

// isFallbackRole reports whether role is a correspondent listed outside PRT RCT.
func isFallbackRole(role string) bool {
	switch role {
	case RoleGP, RoleReferring, RoleAttending, RoleAdmitting, RoleConsulting, RoleResultsCopy, RolePrimaryCare:
		return true
	}
	return false
}

// newMessageID returns a unique Message-ID (without angle brackets) in domain.
func newMessageID(domain string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b) + "@" + domain
}

type sendWorker struct {
	river.WorkerDefaults[SendArgs]
	cfg   WorkerConfig
	sends *prometheus.CounterVec
}

// Work sends one queued MSSanté delivery. A delivery no longer queued (sent
// meanwhile, cancelled) is left alone. Permanent transport errors fail the
// delivery and cancel the job; others are retried by River with backoff.
func (w *sendWorker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	o, err := loadOutgoing(ctx, w.cfg.Pool, job.Args.DeliveryID)
	if err != nil {
		return err
	}
	if o.Status != StatusQueued {
		return nil
	}
	m, err := composeEmail(w.cfg, o, time.Now())
	if err != nil {
		return w.fail(ctx, o.DeliveryID, err)
	}
	msg, err := m.Bytes()
	if err != nil {
		return w.fail(ctx, o.DeliveryID, err)
	}
	err = w.cfg.Transport.Send(ctx, envelope(m), msg)
	switch {
	case mail.IsPermanent(err):
		return w.fail(ctx, o.DeliveryID, err)
	case err != nil:
		w.sends.WithLabelValues("retry").Inc()
		w.cfg.Logger.WarnContext(ctx, "send failed, will retry", "delivery_id", o.DeliveryID, "attempt", job.Attempt, "error", err)
		if rerr := recordDeliveryError(ctx, w.cfg.Pool, o.DeliveryID, err.Error()); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	if _, err := setDeliveryStatus(ctx, w.cfg.Pool, o.DeliveryID, StatusQueued, StatusSent, ""); err != nil {
		return err
	}
	w.sends.WithLabelValues("sent").Inc()
	w.cfg.Logger.InfoContext(ctx, "delivery sent", "delivery_id", o.DeliveryID, "bytes", len(msg))
	return nil
}

// envelope is the SMTP envelope of m: the BAL applicative to m's one recipient.
func envelope(m mail.Message) mail.Envelope {
	return mail.Envelope{From: m.From, To: m.To}
}

func (w *sendWorker) fail(ctx context.Context, deliveryID int64, cause error) error {
	w.sends.WithLabelValues("failed").Inc()
	w.cfg.Logger.WarnContext(ctx, "delivery failed", "delivery_id", deliveryID, "error", cause)
	if _, err := setDeliveryStatus(ctx, w.cfg.Pool, deliveryID, StatusQueued, StatusFailed, cause.Error()); err != nil {
		return err
	}
	return river.JobCancel(cause)
}
