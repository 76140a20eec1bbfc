package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// This file holds the business acknowledgements ("accusés métier") sent
// back to the DPI over MLLP when it asked for them: ZAM^Z02 when a DSN says
// an email reached the recipient's mailbox (flag ACK_RECEPTION=Y), ZAM^Z03
// when an MDN says it was read or integrated (ACK_LECTURE_MSS=Y), each with
// status N and an ERR segment when the DSN or MDN reports a failure.

// Business acknowledgement events, the MSH-9.2 of the ZAM.
const (
	BusinessAckDelivery = hl7.ZAMDelivery // Z02, accusé de réception MSSanté
	BusinessAckRead     = hl7.ZAMRead     // Z03, accusé de lecture MSSanté
)

// Events of the delivery history about business acknowledgements.
const (
	EventBusinessAckSent    = "business_ack_sent"    // the DPI accepted the ZAM (AA)
	EventBusinessAckRefused = "business_ack_refused" // the DPI refused it for good (AE, or AR saying it cannot take ZAM)
)

// businessAckMaxAttempts bounds the sends of one acknowledgement: with the
// default backoff (one minute doubling to 30 minutes) the DPI may be
// unreachable for about a day before it is given up.
const businessAckMaxAttempts = 50

// BusinessAckArgs is the job that sends the DPI one business acknowledgement
// of a delivery. It is unique per delivery and event for as long as River
// keeps the job (a DPI gets each acknowledgement once); the history of the
// delivery keeps that guarantee after River deleted the finished job.
type BusinessAckArgs struct {
	DeliveryID int64 `json:"delivery_id" river:"unique"`
	// Event is BusinessAckDelivery or BusinessAckRead.
	Event string `json:"event" river:"unique"`
	// Failed makes the acknowledgement say the delivery or the reading
	// failed (OBX-5 N with an ERR segment).
	Failed bool `json:"failed,omitempty"`
	// ErrorCode is the code of the failure in the volet's tables: an SMTP
	// reply code (Z02), an MSSanté integration error 900–906 (Z03); may be empty.
	ErrorCode string `json:"error_code,omitempty"`
	// ErrorText is its label, empty for the volet's label of ErrorCode.
	ErrorText string `json:"error_text,omitempty"`
}

// Kind is the River job kind.
func (BusinessAckArgs) Kind() string { return "business_ack" }

// InsertOpts makes the job unique per delivery and event in River's default
// unique states (every state but cancelled and discarded), and gives it many
// attempts: the DPI may be down for hours.
func (BusinessAckArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: businessAckMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// BusinessAckConfig configures the sending of business acknowledgements.
type BusinessAckConfig struct {
	// Pool is the database. Required.
	Pool *pgxpool.Pool
	// Addr is the DPI's MLLP listener (host:port) for business
	// acknowledgements. Empty turns them off: nothing is enqueued (the
	// enqueue hook is then called with on false) and a job left from before
	// is cancelled unsent.
	Addr string
	// SendingApplication and SendingFacility are MSH-3 and MSH-4 of the
	// acknowledgements: this service as the DPI knows it. Each defaults to
	// what the DPI's message named as MSH-5 and MSH-6 (the volet's
	// acknowledgements swap them back), and SendingApplication to
	// "MSSDISPATCH" when that message named none.
	SendingApplication, SendingFacility string
	// ProcessingID is MSH-11: P (production, the default), T or D.
	ProcessingID string
	// Timeout bounds one exchange with the DPI (connection, message and its
	// ACK). Defaults to 30 seconds.
	Timeout time.Duration
	// RetryBackoff is the wait before the second attempt after a network
	// failure or no answer; it doubles with each further one, up to 30 times
	// itself. Defaults to one minute (so at most 30 minutes).
	RetryBackoff time.Duration
	// Registerer receives the metric mssdispatch_business_acks_total; nil
	// registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Enabled reports whether acknowledgements are sent: the value to give the
// enqueue hook.
func (c BusinessAckConfig) Enabled() bool { return c.Addr != "" }

// AddBusinessAcks validates cfg and registers the worker of BusinessAckArgs
// (even when acknowledgements are off, so that a job left from before is
// cancelled rather than unknown), and, with a Registerer, the metric
// mssdispatch_business_acks_total{event,result}.
func AddBusinessAcks(workers *river.Workers, cfg BusinessAckConfig) error {
	if cfg.Pool == nil {
		return errors.New("dispatch: BusinessAckConfig.Pool is required")
	}
	switch cfg.ProcessingID {
	case "":
		cfg.ProcessingID = "P"
	case "P", "T", "D":
	default:
		return fmt.Errorf("dispatch: BusinessAckConfig.ProcessingID %q: want P, T or D", cfg.ProcessingID)
	}
	if cfg.Timeout < 0 || cfg.RetryBackoff < 0 {
		return errors.New("dispatch: BusinessAckConfig.Timeout and RetryBackoff must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = mllp.DefaultTimeout
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &businessAckWorker{cfg: cfg}
	if cfg.Enabled() {
		client, err := mllp.NewClient(mllp.Config{Addr: cfg.Addr, Timeout: cfg.Timeout,
			DialTimeout: min(cfg.Timeout, mllp.DefaultDialTimeout)})
		if err != nil {
			return fmt.Errorf("dispatch: DPI acknowledgement address: %w", err)
		}
		w.client = client
	}
	w.acks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mssdispatch_business_acks_total",
		Help: "Business acknowledgements (ZAM) to the DPI by event (Z02, Z03) and result " +
			"(accepted, refused, retry, off, invalid, duplicate).",
	}, []string{"event", "result"})
	for _, event := range []string{BusinessAckDelivery, BusinessAckRead} {
		for _, result := range []string{"accepted", "refused", "retry"} {
			w.acks.WithLabelValues(event, result)
		}
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(w.acks); err != nil {
			return fmt.Errorf("dispatch: register business ack metrics: %w", err)
		}
	}
	if err := river.AddWorkerSafely(workers, w); err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	return nil
}

// businessAcksFor enqueues with ins, in tx, the business acknowledgement the
// DPI asked for about an acknowledgement ack (AckDelivered, AckRead,
// AckFailed) just recorded for delivery deliveryID, whose detail is what the
// DSN or MDN said; on is BusinessAckConfig.Enabled(). It enqueues:
//
//   - on AckDelivered, a Z02 when the report said ACK_RECEPTION=Y and the
//     delivery is delivered (or already read);
//   - on AckRead, a Z03 when it said ACK_LECTURE_MSS=Y and the delivery is read;
//   - on AckFailed of a failed delivery, the Z02 (a DSN) or Z03 (an MDN,
//     detail "MDN …") saying so, with the SMTP or MSSanté error code found
//     in detail, under the same flags;
//
// and nothing for a paper delivery, a report that did not come as HL7 (the
// REST JSON API), or an acknowledgement the DPI already got or refused.
func businessAcksFor(ctx context.Context, tx pgx.Tx, ins JobInserter, on bool, deliveryID int64, ack, detail string) error {
	if !on {
		return nil
	}
	b, err := loadBusinessAck(ctx, tx, deliveryID)
	if err != nil {
		return err
	}
	if b.Channel != correspondents.ChannelMSSante || !b.FromHL7 {
		return nil
	}
	var args BusinessAckArgs
	switch {
	case ack == AckDelivered && (b.Status == StatusDelivered || b.Status == StatusRead):
		args = BusinessAckArgs{Event: BusinessAckDelivery}
	case ack == AckRead && b.Status == StatusRead:
		args = BusinessAckArgs{Event: BusinessAckRead}
	case ack == AckFailed && b.Status == StatusFailed:
		args = failedAck(detail)
	default:
		return nil
	}
	wanted := map[string]bool{BusinessAckDelivery: b.Flags.DeliveryAck, BusinessAckRead: b.Flags.ReadAck}[args.Event]
	if !wanted || slices.Contains(b.Sent, args.Event) || slices.Contains(b.Refused, args.Event) {
		return nil
	}
	args.DeliveryID = deliveryID
	return insertJobs(ctx, tx, ins, []river.InsertManyParams{{Args: args}})
}

var (
	// smtpCodeRe finds an SMTP failure reply code in a DSN's diagnostic ("smtp; 550 5.1.1 …").
	smtpCodeRe = regexp.MustCompile(`(?:^|[\s;:(])([45][0-9][0-9])(?:[\s\-)]|$)`)
	// enhancedStatusRe finds an enhanced status code of failure (RFC 3463,
	// "5.1.1") in a DSN's detail: the first one is its Status field.
	enhancedStatusRe = regexp.MustCompile(`(?:^|[\s;:(])([45]\.[0-9]{1,3}\.[0-9]{1,3})(?:$|[^0-9.]|\.(?:$|[^0-9]))`)
	// mssErrorRe finds an MSSanté integration error code and its label in an MDN ("… 902^label", "… 902 label").
	mssErrorRe = regexp.MustCompile(`(?:^|[\s:/])(9[0-9][0-9])(?:[\s^]+(.*))?$`)
)

// dsnStatusCodes maps the enhanced status code (RFC 3463) of a failed DSN
// that gives no SMTP reply code to the closest code of the volet's
// SMTPERRORCODE table. The first row that matches wins: a row "x.y.z" matches
// that status, a row "x.y." every status of that class and subject, a row
// "x." every status of that class.
var dsnStatusCodes = []struct{ status, code string }{
	{"4.4.7", "441"}, // delivery time expired: "le serveur du destinataire ne répond pas"
	{"5.4.7", "441"},
	{"4.4.1", "441"}, // no answer from host
	{"5.4.1", "441"},
	{"4.4.2", "442"}, // bad connection: "la connexion a été interrompue"
	{"5.4.2", "442"},
	{"4.2.2", "422"}, // mailbox full (for now): "a dépassé sa limite de stockage"
	{"5.2.2", "552"}, // mailbox full: "allocation de stockage dépassée"
	{"5.3.4", "523"}, // message too big for system: "dépasse les limites du serveur destinataire"
	{"5.1.2", "512"}, // bad destination system address: "erreur DNS, serveur introuvable"
	{"4.4.4", "512"}, // unable to route (DNS)
	{"5.4.4", "512"},
	{"5.7.", "541"}, // security or policy: "l'adresse du destinataire a rejeté votre message"
	{"5.1.", "550"}, // other addressing status: "boîte aux lettres non disponible"
	{"5.", "554"},   // other permanent failure: "l'envoi a échoué"
	{"4.", "554"},   // a transient status, but the DSN says failed: the MTA gave up
}

// smtpCodeForStatus returns the SMTPERRORCODE of an enhanced status code by
// dsnStatusCodes, "" when no row matches.
func smtpCodeForStatus(status string) string {
	for _, row := range dsnStatusCodes {
		if status == row.status || (strings.HasSuffix(row.status, ".") && strings.HasPrefix(status, row.status)) {
			return row.code
		}
	}
	return ""
}

// failedAck is the acknowledgement of a failure whose DSN or MDN said
// detail. An MDN (detail "MDN …") fails the reading (Z03) with its MSSanté
// error code. A DSN fails the delivery (Z02) with its SMTP reply code, or
// when it gives none, the code dsnStatusCodes derives from its enhanced
// status code, else 554 (the send failed); the detail goes with the code as
// its explanation unless the code is the DSN's own and the volet's table
// labels it.
func failedAck(detail string) BusinessAckArgs {
	detail = strings.TrimSpace(detail)
	if strings.HasPrefix(detail, "MDN") {
		a := BusinessAckArgs{Event: BusinessAckRead, Failed: true}
		if m := mssErrorRe.FindStringSubmatch(detail); m != nil {
			a.ErrorCode, a.ErrorText = m[1], strings.TrimSpace(m[2])
		} else {
			a.ErrorText = detail
		}
		return a
	}
	a := BusinessAckArgs{Event: BusinessAckDelivery, Failed: true}
	if m := smtpCodeRe.FindStringSubmatch(detail); m != nil {
		a.ErrorCode = m[1]
		if hl7.ZAMErrorText(hl7.ZAMDelivery, a.ErrorCode) == "" {
			a.ErrorText = detail
		}
		return a
	}
	if m := enhancedStatusRe.FindStringSubmatch(detail); m != nil {
		a.ErrorCode = smtpCodeForStatus(m[1])
	}
	a.ErrorCode = cmp.Or(a.ErrorCode, hl7.ZAMDefaultDeliveryError)
	a.ErrorText = detail
	return a
}

type businessAckWorker struct {
	river.WorkerDefaults[BusinessAckArgs]
	cfg    BusinessAckConfig
	client *mllp.Client // nil when acknowledgements are off
	acks   *prometheus.CounterVec
}

// NextRetry spaces the attempts: RetryBackoff, doubling, at most 30 times it.
func (w *businessAckWorker) NextRetry(job *river.Job[BusinessAckArgs]) time.Time {
	return time.Now().Add(domainBackoff(w.cfg.RetryBackoff, job.Attempt))
}

// Work sends one ZAM to the DPI and reads its ACK: AA completes the job and
// records it in the delivery's history; AE (or an AR saying the DPI does not
// take this message) records the refusal and cancels the job, for the DPI
// would refuse it again; a network failure, no answer in time, an
// unreadable answer or another AR (the volet's "rejeté pour une raison
// circonstancielle, il peut être réémis plus tard") is retried with backoff.
// The ZAM has the same MSH-10 at every attempt, so that a DPI that got it
// twice (an ACK lost on the way) recognises it.
func (w *businessAckWorker) Work(ctx context.Context, job *river.Job[BusinessAckArgs]) error {
	a := job.Args
	log := w.cfg.Logger.With("delivery_id", a.DeliveryID, "event", a.Event, "job_id", job.ID)
	if w.client == nil {
		w.acks.WithLabelValues(a.Event, "off").Inc()
		log.WarnContext(ctx, "business acknowledgements are off (no DPI address): not sent")
		return river.JobCancel(errors.New("business acknowledgements are off: no DPI address"))
	}
	b, err := loadBusinessAck(ctx, w.cfg.Pool, a.DeliveryID)
	if errors.Is(err, ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if slices.Contains(b.Sent, a.Event) {
		w.acks.WithLabelValues(a.Event, "duplicate").Inc()
		log.InfoContext(ctx, "business acknowledgement already accepted by the DPI: not sent again")
		return nil
	}
	controlID := businessAckControlID(a)
	msg, err := hl7.BuildZAM(w.zam(a, b, controlID, time.Now()))
	if err != nil {
		w.acks.WithLabelValues(a.Event, "invalid").Inc()
		log.ErrorContext(ctx, "business acknowledgement cannot be built", "error", redact.Text(err.Error()))
		return river.JobCancel(err)
	}
	log = log.With("control_id", controlID, "original_control_id", b.ControlID)
	resp, err := w.client.Send(ctx, msg.Encode())
	if err != nil {
		w.acks.WithLabelValues(a.Event, "retry").Inc()
		log.WarnContext(ctx, "business acknowledgement not acknowledged by the DPI, will retry",
			"attempt", job.Attempt, "maybe_delivered", mllp.MaybeDelivered(err), "error", redact.Text(err.Error()))
		return fmt.Errorf("send ZAM^%s %s: %w", a.Event, controlID, err)
	}
	answer, err := readDPIAck(resp, controlID)
	if err != nil {
		w.acks.WithLabelValues(a.Event, "retry").Inc()
		log.WarnContext(ctx, "unusable answer of the DPI, will retry", "attempt", job.Attempt, "error", redact.Text(err.Error()))
		return fmt.Errorf("ZAM^%s %s: %w", a.Event, controlID, err)
	}
	detail := fmt.Sprintf("ZAM^%s %s: %s", a.Event, controlID, answer)
	switch {
	case answer.accepted():
		if err := pgx.BeginFunc(ctx, w.cfg.Pool, func(tx pgx.Tx) error {
			if err := recordBusinessAck(ctx, tx, a.DeliveryID, EventBusinessAckSent, detail); err != nil {
				return err
			}
			return completeTx(ctx, tx, job)
		}); err != nil {
			return err
		}
		w.acks.WithLabelValues(a.Event, "accepted").Inc()
		log.InfoContext(ctx, "business acknowledgement accepted by the DPI", "msa", answer.Code)
		return nil
	case answer.permanent():
		if err := recordBusinessAck(ctx, w.cfg.Pool, a.DeliveryID, EventBusinessAckRefused, detail); err != nil {
			return err
		}
		w.acks.WithLabelValues(a.Event, "refused").Inc()
		log.WarnContext(ctx, "business acknowledgement refused by the DPI, given up", "msa", answer.Code, "err3", answer.ErrCode)
		return river.JobCancel(fmt.Errorf("ZAM^%s %s refused by the DPI (%s %s)", a.Event, controlID, answer.Code, answer.ErrCode))
	default:
		w.acks.WithLabelValues(a.Event, "retry").Inc()
		log.WarnContext(ctx, "business acknowledgement rejected for now by the DPI, will retry", "msa", answer.Code,
			"err3", answer.ErrCode, "attempt", job.Attempt)
		return fmt.Errorf("ZAM^%s %s rejected for now by the DPI (%s %s)", a.Event, controlID, answer.Code, answer.ErrCode)
	}
}

// zam is the message of acknowledgement a about delivery b.
func (w *businessAckWorker) zam(a BusinessAckArgs, b storedBusinessAck, controlID string, now time.Time) hl7.ZAM {
	at := b.UpdatedAt
	switch {
	case a.Event == BusinessAckDelivery && b.DeliveredAt != nil && !a.Failed:
		at = *b.DeliveredAt
	case a.Event == BusinessAckRead && b.ReadAt != nil && !a.Failed:
		at = *b.ReadAt
	}
	z := hl7.ZAM{
		Event:                a.Event,
		ControlID:            controlID,
		Time:                 now,
		ProcessingID:         w.cfg.ProcessingID,
		SendingApplication:   hl7.HD{NamespaceID: cmp.Or(w.cfg.SendingApplication, b.ReceivingApplication, "MSSDISPATCH")},
		SendingFacility:      hl7.HD{NamespaceID: cmp.Or(w.cfg.SendingFacility, b.ReceivingFacility)},
		ReceivingApplication: hl7.HD{NamespaceID: b.SendingApplication},
		ReceivingFacility:    hl7.HD{NamespaceID: b.SendingFacility},
		EventTime:            at,
		OriginalControlID:    b.ControlID,
		RecipientAddress:     b.Address,
		RecipientID:          cmp.Or(b.NationalID, b.RPPS),
	}
	if a.Failed {
		z.Error = &hl7.ZAMError{Code: a.ErrorCode, Text: a.ErrorText}
	}
	return z
}

// businessAckControlID is the MSH-10 of the ZAM of a: the same at every
// attempt, unique since each acknowledgement is sent once.
func businessAckControlID(a BusinessAckArgs) string {
	return fmt.Sprintf("ZAM-%s-%d", a.Event, a.DeliveryID)
}

// dpiAck is what the DPI answered to a ZAM.
type dpiAck struct {
	Code    string // MSA-1
	ErrCode string // ERR-3.1 (HL7 table 0357), when given
	Text    string // MSA-3 or ERR-8, shortened
}

func (a dpiAck) String() string {
	return strings.TrimSpace(strings.Join([]string{a.Code, a.ErrCode, a.Text}, " "))
}

// accepted reports an AA (or an enhanced-mode CA).
func (a dpiAck) accepted() bool { return a.Code == hl7.AckAccept || a.Code == "CA" }

// permanent reports a refusal the DPI would repeat: AE (CE), or AR (CR)
// saying the message type, event, processing id or version is not supported.
func (a dpiAck) permanent() bool {
	switch a.Code {
	case hl7.AckError, "CE":
		return true
	case hl7.AckReject, "CR":
		switch a.ErrCode {
		case "200", "201", "202", "203":
			return true
		}
	}
	return false
}

// readDPIAck reads the DPI's ACK to the ZAM controlID.
func readDPIAck(resp []byte, controlID string) (dpiAck, error) {
	m, err := hl7.Parse(resp, hl7.ParseOptions{})
	if err != nil {
		return dpiAck{}, fmt.Errorf("the DPI's answer is not HL7: %w", err)
	}
	msa := m.Segment("MSA")
	if msa == nil {
		return dpiAck{}, errors.New("the DPI's answer has no MSA segment")
	}
	if got := msa.Get(2); got != controlID {
		return dpiAck{}, fmt.Errorf("the DPI's answer acknowledges %q, not %q", got, controlID)
	}
	a := dpiAck{Code: strings.ToUpper(strings.TrimSpace(msa.Get(1))), Text: msa.Get(3)}
	if e := m.Segment("ERR"); e != nil {
		a.ErrCode = e.Component(3, 1)
		a.Text = cmp.Or(a.Text, e.Get(8))
	}
	switch a.Code {
	case hl7.AckAccept, hl7.AckError, hl7.AckReject, "CA", "CE", "CR":
	default:
		return dpiAck{}, fmt.Errorf("the DPI's answer has MSA-1 %q", a.Code)
	}
	if r := []rune(a.Text); len(r) > 200 {
		a.Text = string(r[:200]) + "…"
	}
	return a, nil
}
