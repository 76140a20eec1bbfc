package hl7intake

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/quarantine"
	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// Recorder records what becomes of a message: a dispatch.Service for a
// message received, a *quarantine.Requeued for a quarantined one processed
// again.
type Recorder interface {
	Previous(ctx context.Context, in dispatch.Inbound) (dispatch.Answer, bool, error)
	Receive(ctx context.Context, in dispatch.Inbound, r dispatch.Report, respond func(reportID int64, documentID string, receivedAt time.Time, warnings []dispatch.Warning) []byte) (dispatch.Receipt, error)
	Reject(ctx context.Context, in dispatch.Inbound, raw []byte, why dispatch.Refusal, response []byte) (dispatch.Answer, error)
}

// Requeuer takes up a quarantined message again (quarantine.Desk).
type Requeuer interface {
	Requeue(ctx context.Context, id int64, user string, services []string) (*quarantine.Requeued, error)
}

// Config configures a Handler.
type Config struct {
	// Receiver stores the reports and the refused messages (a
	// *dispatch.Service). Required.
	Receiver Recorder
	// Quarantine takes up a quarantined message again, for Reprocess (a
	// *quarantine.Desk). Required.
	Quarantine Requeuer
	// DefaultCharset applies when MSH-18 is empty: "UNICODE UTF-8" (default),
	// "8859/1" or "8859/15".
	DefaultCharset string
	// MaxSize is the largest message accepted, in bytes, over MLLP (set the
	// mllp.Server's MaxMessageSize to it) and the REST API. Defaults to
	// hl7.DefaultMaxSize, 16 MiB.
	MaxSize int
	// Registerer receives the intake metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default(). Only ids and counts are logged.
	Logger *slog.Logger
}

// Handler turns HL7 messages into stored reports and ACKs.
type Handler struct {
	cfg      Config
	messages *prometheus.CounterVec
	// latency times a message from its reading to its ACK.
	latency *prometheus.HistogramVec
}

// New validates cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Receiver == nil || cfg.Quarantine == nil {
		return nil, errors.New("hl7intake: Config.Receiver and Quarantine are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = hl7.DefaultMaxSize
	}
	h := &Handler{cfg: cfg, messages: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mssdispatch_intake_messages_total",
		Help: "HL7 messages received, by source (mllp, api) and ACK code (AA, AE, AR).",
	}, []string{"source", "ack"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mssdispatch_intake_duration_seconds",
			Help:    "Time from a message read to its ACK (parse, store, commit), by source (mllp, api).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"source"})}
	for _, source := range []string{"mllp", "api"} {
		for _, code := range []string{hl7.AckAccept, hl7.AckError, hl7.AckReject} {
			h.messages.WithLabelValues(source, code)
		}
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{h.messages, h.latency} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("hl7intake: register metrics: %w", err)
			}
		}
	}
	return h, nil
}

// ServeMLLP handles a message received over MLLP and returns its ACK.
func (h *Handler) ServeMLLP(ctx context.Context, raw []byte) []byte {
	return h.handle(ctx, raw, "mllp")
}

// ServeMLLPTooLarge answers a message over the MLLP size limit with an AE
// (sent again, it would be refused again), keeping its head (all the server
// read of it) in quarantine.
func (h *Handler) ServeMLLPTooLarge(ctx context.Context, head []byte, size int64) []byte {
	return h.count("mllp", h.tooLarge(ctx, h.cfg.Receiver, head, size, "mllp"))
}

// HandleHL7TooLarge answers a message over the REST API's size limit as
// ServeMLLPTooLarge does over MLLP.
func (h *Handler) HandleHL7TooLarge(ctx context.Context, head []byte, size int64) []byte {
	return h.count("api", h.tooLarge(ctx, h.cfg.Receiver, head, size, "api"))
}

// tooLarge answers a message of size bytes over the limit, of which head is
// the start: AE, and its first mllp.HeadSize bytes in quarantine, through rec.
func (h *Handler) tooLarge(ctx context.Context, rec Recorder, head []byte, size int64, source string) []byte {
	head = head[:min(len(head), mllp.HeadSize)]
	msg, _ := hl7.Parse(head, hl7.ParseOptions{DefaultCharset: h.cfg.DefaultCharset})
	in := dispatch.Inbound{Kind: "hl7", Source: source}
	if msg != nil {
		in = inbound(msg, source)
		in.ControlID = "" // without a key it is not remembered: a smaller message may follow with the same id
	}
	detail := hl7.ErrDetail{Code: hl7.CodeInternal, Severity: "E",
		Msg: fmt.Sprintf("le message (%d octets) dépasse la taille que le service accepte", size)}
	why := refusalOf(msg, detail)
	why.Partial = true
	return h.quarantine(ctx, rec, in, head, why, h.ack(msg, head, hl7.AckError, detail).Encode())
}

// HandleHL7 handles a message received through the REST API and returns its ACK.
func (h *Handler) HandleHL7(ctx context.Context, raw []byte) []byte {
	return h.handle(ctx, raw, "api")
}

// rejection is a message the service will not store, with the ACK code to answer.
type rejection struct {
	code   string // AE or AR
	detail hl7.ErrDetail
}

func (r *rejection) Error() string { return r.detail.Msg }

func reject(code string, seg string, field, errCode int, format string, args ...any) *rejection {
	return &rejection{code: code, detail: hl7.ErrDetail{Segment: seg, Sequence: 1, Field: field, Code: errCode,
		Severity: "E", Msg: fmt.Sprintf(format, args...)}}
}

// Reprocess runs the quarantined message id through the intake again, as
// if received again, for user, who sees services (nil: all): accepted, it
// is stored as a report (none if the DPI sent the same document again
// meanwhile: its row then names that report) and its row says so; refused,
// its row gives the new reason (see quarantine.Requeued). Nothing is counted
// as received. It returns dispatch.ErrNotFound for a message the user does
// not see whole, quarantine.ErrHandled once it was accepted or set aside,
// quarantine.ErrNotReprocessable for one that cannot be processed again.
func (h *Handler) Reprocess(ctx context.Context, id int64, user string, services []string) (quarantine.Reprocessed, error) {
	q, err := h.cfg.Quarantine.Requeue(ctx, id, user, services)
	if err != nil {
		return quarantine.Reprocessed{}, err
	}
	h.process(ctx, q.Raw, q.Source, q)
	return q.Outcome()
}

// handle handles a message received from source and returns its ACK.
func (h *Handler) handle(ctx context.Context, raw []byte, source string) []byte {
	defer func(start time.Time) { h.latency.WithLabelValues(source).Observe(time.Since(start).Seconds()) }(time.Now())
	return h.count(source, h.process(ctx, raw, source, h.cfg.Receiver))
}

// process runs raw, received from source, through the intake, recording
// what becomes of it through rec, and returns its ACK.
func (h *Handler) process(ctx context.Context, raw []byte, source string, rec Recorder) []byte {
	if len(raw) > h.cfg.MaxSize {
		return h.tooLarge(ctx, rec, raw, int64(len(raw)), source)
	}
	msg, err := hl7.Parse(raw, hl7.ParseOptions{DefaultCharset: h.cfg.DefaultCharset, MaxSize: h.cfg.MaxSize})
	if err != nil {
		// Sent again as is, it would fail again: AE.
		detail := hl7.ErrDetail{Code: hl7.CodeInternal, Severity: "E", Msg: err.Error()}
		var pe *hl7.ParseError
		if errors.As(err, &pe) {
			detail = pe.Detail()
		}
		in := dispatch.Inbound{Kind: "hl7", Source: source}
		if msg != nil {
			in = inbound(msg, source)
		}
		return h.quarantine(ctx, rec, in, raw, refusalOf(msg, detail), h.ack(msg, raw, hl7.AckError, detail).Encode())
	}
	in := inbound(msg, source)
	prev, found, err := rec.Previous(ctx, in)
	switch {
	case found:
		h.cfg.Logger.InfoContext(ctx, "HL7 message retransmitted", "source", source, "control_id", in.ControlID)
		return prev.Response
	case errors.Is(err, dispatch.ErrKeyReused):
		return h.refuse(ctx, rec, msg, in, raw, hl7.AckError, reusedKey(in))
	case err != nil:
		return h.unavailable(ctx, msg, in, err)
	}
	report, warnings, err := toReport(msg)
	var rej *rejection
	if errors.As(err, &rej) {
		return h.refuse(ctx, rec, msg, in, raw, rej.code, rej.detail)
	}
	receipt, err := rec.Receive(ctx, in, report, func(_ int64, _ string, _ time.Time, all []dispatch.Warning) []byte {
		errs := slices.Clone(warnings)
		for _, w := range all {
			if w.Field == "" {
				continue // the mapping's own, in warnings
			}
			d := locate(msg, w.Field)
			d.Severity, d.Msg = "W", w.Msg
			errs = append(errs, d)
		}
		return h.ack(msg, raw, hl7.AckAccept, errs...).Encode()
	})
	var invalid *dispatch.InvalidError
	switch {
	case err == nil:
		h.cfg.Logger.InfoContext(ctx, "HL7 message accepted", "source", source, "control_id", in.ControlID,
			"report_id", receipt.ReportID, "duplicate", receipt.Duplicate, "warnings", len(report.Warnings))
		return receipt.Response
	case errors.As(err, &invalid):
		detail := locate(msg, invalid.Field)
		detail.Severity, detail.Msg = "E", invalid.Msg
		return h.refuse(ctx, rec, msg, in, raw, hl7.AckError, detail)
	case errors.Is(err, dispatch.ErrKeyReused):
		return h.refuse(ctx, rec, msg, in, raw, hl7.AckError, reusedKey(in))
	default:
		return h.unavailable(ctx, msg, in, err)
	}
}

// inbound identifies msg: its key (MSH-3, MSH-4, MSH-10), its care unit and a fingerprint
// of its content (its type and every segment but MSH, whose date and control
// id a retransmission may change, in canonical encoding).
func inbound(msg *hl7.Message, source string) dispatch.Inbound {
	code, event, _ := msg.Type()
	msh := msg.Segment("MSH")
	content := &hl7.Message{Delims: msg.Delims}
	for _, s := range msg.Segments {
		if s.Name != "MSH" {
			content.Add(s)
		}
	}
	sum := sha256.New()
	sum.Write([]byte(code + "^" + event + "\r"))
	sum.Write(content.Encode())
	return dispatch.Inbound{Kind: "hl7", Source: source, SendingApplication: msh.Get(3), SendingFacility: msh.Get(4),
		ReceivingApplication: msh.Get(5), ReceivingFacility: msh.Get(6),
		ControlID: msg.ControlID(), MessageType: code + "^" + event, Service: serviceOf(msg), Fingerprint: sum.Sum(nil)}
}

func reusedKey(in dispatch.Inbound) hl7.ErrDetail {
	return hl7.ErrDetail{Segment: "MSH", Sequence: 1, Field: 10, Code: hl7.CodeDuplicateKey, Severity: "E",
		Msg: fmt.Sprintf("MSH-10 %q a déjà servi à %s pour un autre message : chaque message a son propre identifiant", in.ControlID, in.SendingApplication)}
}

// refuse answers msg with code and detail, after keeping it in quarantine
// through rec.
func (h *Handler) refuse(ctx context.Context, rec Recorder, msg *hl7.Message, in dispatch.Inbound, raw []byte, code string, detail hl7.ErrDetail) []byte {
	return h.quarantine(ctx, rec, in, raw, refusalOf(msg, detail), h.ack(msg, raw, code, detail).Encode())
}

// refusalOf is the refusal of msg (nil when unreadable) for detail.
func refusalOf(msg *hl7.Message, detail hl7.ErrDetail) dispatch.Refusal {
	why := dispatch.Refusal{Reason: detail.Msg, Code: detail.Code, Location: detail.Location()}
	if msg != nil {
		why.Patient, why.Document = patientOf(msg), documentOf(msg)
	}
	return why
}

// quarantine keeps a refused message through rec and returns ack, or the
// first ACK of a retransmission. If even that fails, the ACK is an AR: the
// DPI sends the message again.
func (h *Handler) quarantine(ctx context.Context, rec Recorder, in dispatch.Inbound, raw []byte, why dispatch.Refusal, ack []byte) []byte {
	h.cfg.Logger.WarnContext(ctx, "HL7 message refused", "source", in.Source, "control_id", in.ControlID,
		"bytes", len(raw), "err_code", why.Code, "err_location", why.Location) // ERR-8 may repeat patient data
	answer, err := rec.Reject(ctx, in, raw, why, ack)
	if err != nil {
		h.cfg.Logger.ErrorContext(ctx, "HL7 message not quarantined", "source", in.Source, "control_id", in.ControlID, "error", redact.Text(err.Error()))
		return h.ack(nil, raw, hl7.AckReject, unavailableDetail).Encode()
	}
	return answer.Response
}

var unavailableDetail = hl7.ErrDetail{Code: hl7.CodeInternal, Severity: "E",
	Msg: "le message n'a pas pu être enregistré : envoyez-le à nouveau plus tard"}

// unavailable answers a message the service could not store now with an AR.
func (h *Handler) unavailable(ctx context.Context, msg *hl7.Message, in dispatch.Inbound, err error) []byte {
	h.cfg.Logger.ErrorContext(ctx, "HL7 message not stored", "source", in.Source, "control_id", in.ControlID, "error", redact.Text(err.Error()))
	return h.ack(msg, nil, hl7.AckReject, unavailableDetail).Encode()
}

// count counts an ACK by its code and returns it.
func (h *Handler) count(source string, ack []byte) []byte {
	code := hl7.AckReject
	if m, err := hl7.Parse(ack, hl7.ParseOptions{}); err == nil {
		code = m.Segment("MSA").Get(1)
	}
	h.messages.WithLabelValues(source, code).Inc()
	return ack
}

// ack acknowledges orig, or when its header could not be parsed the message
// raw, mirroring what can be salvaged of its header.
func (h *Handler) ack(orig *hl7.Message, raw []byte, code string, errs ...hl7.ErrDetail) *hl7.Message {
	if orig == nil {
		orig = hl7.SalvageHeader(raw)
	}
	return hl7.NewACK(orig, code, newControlID(), time.Now(), errs...)
}

func newControlID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
