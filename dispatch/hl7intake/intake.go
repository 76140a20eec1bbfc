package hl7intake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/hl7"
)

// Receiver stores a report (dispatch.Service).
type Receiver interface {
	Receive(ctx context.Context, r dispatch.Report) (dispatch.Receipt, error)
}

// Config configures a Handler.
type Config struct {
	// Receiver stores the reports. Required.
	Receiver Receiver
	// DefaultCharset applies when MSH-18 is empty: "UNICODE UTF-8" (default),
	// "8859/1" or "8859/15".
	DefaultCharset string
	// MaxSize is the largest message accepted, in bytes. Defaults to 16 MiB.
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
}

// New validates cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Receiver == nil {
		return nil, errors.New("hl7intake: Config.Receiver is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{cfg: cfg, messages: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mssdispatch_intake_messages_total",
		Help: "HL7 messages received, by source (mllp, api) and ACK code (AA, AE, AR).",
	}, []string{"source", "ack"})}
	for _, source := range []string{"mllp", "api"} {
		for _, code := range []string{hl7.AckAccept, hl7.AckError, hl7.AckReject} {
			h.messages.WithLabelValues(source, code)
		}
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(h.messages); err != nil {
			return nil, fmt.Errorf("hl7intake: register metrics: %w", err)
		}
	}
	return h, nil
}

// ServeMLLP handles a message received over MLLP and returns its ACK.
func (h *Handler) ServeMLLP(ctx context.Context, raw []byte) []byte {
	return h.handle(ctx, raw, "mllp")
}

// ServeMLLPTooLarge answers a message over the MLLP size limit, of which only
// the head was kept, with an AR.
func (h *Handler) ServeMLLPTooLarge(ctx context.Context, head []byte, size int64) []byte {
	msg, _ := hl7.Parse(head, hl7.ParseOptions{DefaultCharset: h.cfg.DefaultCharset})
	h.cfg.Logger.WarnContext(ctx, "HL7 message too large", "source", "mllp", "control_id", hl7.ControlIDOf(head), "bytes", size)
	h.messages.WithLabelValues("mllp", hl7.AckReject).Inc()
	return h.ack(msg, hl7.ControlIDOf(head), hl7.AckReject, hl7.ErrDetail{Code: hl7.CodeInternal, Severity: "E",
		Msg: fmt.Sprintf("the message (%d bytes) is larger than the service accepts", size)}).Encode()
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
	msg, err := hl7.Parse(raw, hl7.ParseOptions{DefaultCharset: h.cfg.DefaultCharset, MaxSize: h.cfg.MaxSize})
	var ack *hl7.Message
	switch {
	case err != nil:
		detail := hl7.ErrDetail{Code: hl7.CodeInternal, Severity: "E", Msg: err.Error()}
		var pe *hl7.ParseError
		if errors.As(err, &pe) {
			detail = hl7.ErrDetail{Segment: pe.Segment, Sequence: pe.Sequence, Field: pe.Field, Code: pe.Code, Severity: "E", Msg: pe.Msg}
		}
		ack = h.ack(msg, hl7.ControlIDOf(raw), hl7.AckReject, detail)
		h.cfg.Logger.WarnContext(ctx, "HL7 message rejected", "source", source, "control_id", hl7.ControlIDOf(raw), "bytes", len(raw), "error", detail.Msg)
	default:
		ack = h.receive(ctx, msg, source)
	}
	h.messages.WithLabelValues(source, ack.Segment("MSA").Get(1)).Inc()
	return ack.Encode()
}

func (h *Handler) receive(ctx context.Context, msg *hl7.Message, source string) *hl7.Message {
	report, err := toReport(msg)
	if err == nil {
		report.Source = source
		var receipt dispatch.Receipt
		receipt, err = h.cfg.Receiver.Receive(ctx, report)
		if err == nil {
			h.cfg.Logger.InfoContext(ctx, "HL7 message accepted", "source", source, "control_id", msg.ControlID(),
				"report_id", receipt.ReportID, "duplicate", receipt.Duplicate)
			return h.ack(msg, "", hl7.AckAccept)
		}
		var invalid *dispatch.InvalidError
		if errors.As(err, &invalid) {
			err = reject(hl7.AckError, "", 0, hl7.CodeRequiredField, "%s", invalid.Error())
		}
	}
	var rej *rejection
	if !errors.As(err, &rej) {
		// The report could not be stored (database down, commit failed): the DPI
		// must send it again.
		h.cfg.Logger.ErrorContext(ctx, "HL7 message not stored", "source", source, "control_id", msg.ControlID(), "error", err)
		rej = reject(hl7.AckReject, "", 0, hl7.CodeInternal, "the report could not be stored, send it again later")
	} else {
		h.cfg.Logger.WarnContext(ctx, "HL7 message refused", "source", source, "control_id", msg.ControlID(), "ack", rej.code, "error", rej.detail.Msg)
	}
	return h.ack(msg, "", rej.code, rej.detail)
}

// ack acknowledges orig, or when nothing could be parsed the message whose
// control id is origControlID.
func (h *Handler) ack(orig *hl7.Message, origControlID, code string, errs ...hl7.ErrDetail) *hl7.Message {
	if orig == nil {
		return hl7.NewACKFor(origControlID, code, newControlID(), time.Now(), errs...)
	}
	return hl7.NewACK(orig, code, newControlID(), time.Now(), errs...)
}

func newControlID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
