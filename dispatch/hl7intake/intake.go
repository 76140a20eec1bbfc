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
	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// Receiver stores reports and refused messages (dispatch.Service).
type Receiver interface {
	Previous(ctx context.Context, in dispatch.Inbound) (dispatch.Answer, bool, error)
	Receive(ctx context.Context, in dispatch.Inbound, r dispatch.Report, respond func(reportID int64, documentID string, warnings []dispatch.Warning) []byte) (dispatch.Receipt, error)
	Reject(ctx context.Context, in dispatch.Inbound, raw []byte, why dispatch.Refusal, response []byte) (dispatch.Answer, error)
}

// Config configures a Handler.
type Config struct {
	// Receiver stores the reports. Required.
	Receiver Receiver
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
	if cfg.Receiver == nil {
		return nil, errors.New("hl7intake: Config.Receiver is required")
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
	return h.tooLarge(ctx, head, size, "mllp")
}

// HandleHL7TooLarge answers a message over the REST API's size limit as
// ServeMLLPTooLarge does over MLLP.
func (h *Handler) HandleHL7TooLarge(ctx context.Context, head []byte, size int64) []byte {
	return h.tooLarge(ctx, head, size, "api")
}

// tooLarge answers a message of size bytes over the limit, of which head is
// the start: AE, and its first mllp.HeadSize bytes in quarantine.
func (h *Handler) tooLarge(ctx context.Context, head []byte, size int64, source string) []byte {
	head = head[:min(len(head), mllp.HeadSize)]
	msg, _ := hl7.Parse(head, hl7.ParseOptions{DefaultCharset: h.cfg.DefaultCharset})
	// Without a key it is not remembered: a smaller message may follow with the same id.
	in := dispatch.Inbound{Kind: "hl7", Source: source}
	detail := hl7.ErrDetail{Code: hl7.CodeInternal, Severity: "E",
		Msg: fmt.Sprintf("le message (%d octets) dépasse la taille que le service accepte", size)}
	return h.quarantine(ctx, in, head, detail, h.ack(msg, head, hl7.AckError, detail).Encode())
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

func (h *Handler) handle(ctx context.Context, raw []byte, source string) []byte {
	defer func(start time.Time) { h.latency.WithLabelValues(source).Observe(time.Since(start).Seconds()) }(time.Now())
	if len(raw) > h.cfg.MaxSize {
		return h.tooLarge(ctx, raw, int64(len(raw)), source)
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
		return h.quarantine(ctx, in, raw, detail, h.ack(msg, raw, hl7.AckError, detail).Encode())
	}
	in := inbound(msg, source)
	prev, found, err := h.cfg.Receiver.Previous(ctx, in)
	switch {
	case found:
		h.cfg.Logger.InfoContext(ctx, "HL7 message retransmitted", "source", source, "control_id", in.ControlID)
		return h.count(source, prev.Response)
	case errors.Is(err, dispatch.ErrKeyReused):
		return h.refuse(ctx, msg, in, raw, hl7.AckError, reusedKey(in))
	case err != nil:
		return h.unavailable(ctx, msg, in, err)
	}
	report, warnings, err := toReport(msg)
	var rej *rejection
	if errors.As(err, &rej) {
		return h.refuse(ctx, msg, in, raw, rej.code, rej.detail)
	}
	receipt, err := h.cfg.Receiver.Receive(ctx, in, report, func(_ int64, _ string, all []dispatch.Warning) []byte {
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
		return h.count(source, receipt.Response)
	case errors.As(err, &invalid):
		detail := locate(msg, invalid.Field)
		detail.Severity, detail.Msg = "E", invalid.Msg
		return h.refuse(ctx, msg, in, raw, hl7.AckError, detail)
	case errors.Is(err, dispatch.ErrKeyReused):
		return h.refuse(ctx, msg, in, raw, hl7.AckError, reusedKey(in))
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

// refuse answers msg with code and detail, after keeping it in quarantine.
func (h *Handler) refuse(ctx context.Context, msg *hl7.Message, in dispatch.Inbound, raw []byte, code string, detail hl7.ErrDetail) []byte {
	return h.quarantine(ctx, in, raw, detail, h.ack(msg, raw, code, detail).Encode())
}

// quarantine keeps a refused message and returns ack, or the first ACK of a
// retransmission. If even that fails, the ACK is an AR: the DPI sends the
// message again.
func (h *Handler) quarantine(ctx context.Context, in dispatch.Inbound, raw []byte, detail hl7.ErrDetail, ack []byte) []byte {
	h.cfg.Logger.WarnContext(ctx, "HL7 message refused", "source", in.Source, "control_id", in.ControlID,
		"bytes", len(raw), "err_code", detail.Code, "err_location", detail.Location()) // ERR-8 may repeat patient data
	answer, err := h.cfg.Receiver.Reject(ctx, in, raw, dispatch.Refusal{Reason: detail.Msg, Code: detail.Code, Location: detail.Location()}, ack)
	if err != nil {
		h.cfg.Logger.ErrorContext(ctx, "HL7 message not quarantined", "source", in.Source, "control_id", in.ControlID, "error", redact.Text(err.Error()))
		return h.count(in.Source, h.ack(nil, raw, hl7.AckReject, unavailableDetail).Encode())
	}
	return h.count(in.Source, answer.Response)
}

var unavailableDetail = hl7.ErrDetail{Code: hl7.CodeInternal, Severity: "E",
	Msg: "le message n'a pas pu être enregistré : envoyez-le à nouveau plus tard"}

// unavailable answers a message the service could not store now with an AR.
func (h *Handler) unavailable(ctx context.Context, msg *hl7.Message, in dispatch.Inbound, err error) []byte {
	h.cfg.Logger.ErrorContext(ctx, "HL7 message not stored", "source", in.Source, "control_id", in.ControlID, "error", redact.Text(err.Error()))
	return h.count(in.Source, h.ack(msg, nil, hl7.AckReject, unavailableDetail).Encode())
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
