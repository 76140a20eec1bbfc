package hl7intake

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mssdispatch/mssdispatch/cda"
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

// INS authority OIDs (PID-3 with identifier type INS).
var insOIDs = map[string]bool{
	"1.2.250.1.213.1.4.8": true, "1.2.250.1.213.1.4.9": true,
	"1.2.250.1.213.1.4.10": true, "1.2.250.1.213.1.4.11": true,
}

// toReport maps an ORU^R01 to a dispatch.Report, or returns a *rejection.
func toReport(msg *hl7.Message) (dispatch.Report, error) {
	code, event, _ := msg.Type()
	if code != "ORU" || event != "R01" {
		return dispatch.Report{}, reject(hl7.AckReject, "MSH", 9, hl7.CodeUnsupportedMessageType, "message type %s^%s is not supported: send ORU^R01", code, event)
	}
	msh := msg.Segment("MSH")
	r := dispatch.Report{
		SendingApplication: msh.Get(3),
		SendingFacility:    msh.Get(4),
		ControlID:          msg.ControlID(),
		MessageType:        code + "^" + event,
	}
	if r.ControlID == "" {
		return r, reject(hl7.AckReject, "MSH", 10, hl7.CodeRequiredField, "MSH-10 (message control id) is empty")
	}
	pid := msg.Segment("PID")
	if pid == nil {
		return r, reject(hl7.AckError, "PID", 0, hl7.CodeSegmentSequence, "the PID segment is missing")
	}
	for _, rep := range pid.Field(3) {
		switch rep.Comp(5) {
		case "INS":
			if oid := rep.Sub(4, 2); insOIDs[oid] {
				r.Patient.INS, r.Patient.INSOID = rep.Comp(1), oid
			}
		case "PI":
			r.Patient.IPP = rep.Comp(1)
		}
	}
	name := pid.Field(5).Rep(0)
	r.Patient.Family, r.Patient.Given = name.Comp(1), name.Comp(2)
	r.Patient.BirthDate = pid.Get(7)
	if len(r.Patient.BirthDate) > 8 {
		r.Patient.BirthDate = r.Patient.BirthDate[:8]
	}
	r.Patient.Sex = pid.Get(8)

	doc, err := document(msg)
	if err != nil {
		return r, err
	}
	r.Document = doc
	for i, prt := range msg.SegmentsNamed("PRT") {
		if prt.Component(4, 1) != "RCT" {
			continue
		}
		rc := dispatch.Recipient{Role: "RCT"}
		person := prt.Field(5).Rep(0)
		rc.Family, rc.Given = person.Comp(2), person.Comp(3)
		if id := person.Comp(1); id != "" {
			rc.NationalID = id
			if person.Sub(9, 2) == "1.2.250.1.71.4.2.1" && len(id) == 12 && id[0] == '8' {
				rc.RPPS = id[1:]
			}
		}
		for _, tel := range prt.Field(15) {
			if tel.Comp(3) == "X.400" && tel.Comp(4) != "" {
				rc.Address = strings.ToLower(strings.TrimSpace(tel.Comp(4)))
				break
			}
		}
		if rc.NationalID == "" && rc.Address == "" && rc.Family == "" {
			return r, &rejection{code: hl7.AckError, detail: hl7.ErrDetail{Segment: "PRT", Sequence: i + 1, Field: 5, Code: hl7.CodeRequiredField,
				Severity: "E", Msg: "a PRT RCT recipient has neither an id, a name nor an address"}}
		}
		r.Recipients = append(r.Recipients, rc)
	}
	return r, nil
}

// document reads the CDA carried by the message's OBX of type ED.
func document(msg *hl7.Message) (dispatch.Document, error) {
	for i, obx := range msg.SegmentsNamed("OBX") {
		if obx.Get(2) != "ED" || strings.HasPrefix(obx.Component(3, 1), "CORPSMAIL") {
			continue
		}
		doc, err := obxDocument(obx)
		var rej *rejection
		if errors.As(err, &rej) {
			rej.detail.Sequence = i + 1
		}
		return doc, err
	}
	return dispatch.Document{}, reject(hl7.AckError, "OBX", 5, hl7.CodeRequiredField, "no OBX of type ED carries the CDA document")
}

func obxDocument(obx *hl7.Segment) (dispatch.Document, error) {
	if status := obx.Get(11); status != "F" {
		return dispatch.Document{}, reject(hl7.AckError, "OBX", 11, hl7.CodeTableValue,
			"OBX-11 %q is not supported yet: only new validated documents (F) are accepted", status)
	}
	cdaBytes, err := base64.StdEncoding.DecodeString(strings.Map(dropSpace, obx.Component(5, 5)))
	if err != nil || len(cdaBytes) == 0 {
		return dispatch.Document{}, reject(hl7.AckError, "OBX", 5, hl7.CodeDataType, "OBX-5.5 is not a base64 document")
	}
	header, err := cda.Parse(cdaBytes)
	if err != nil {
		return dispatch.Document{}, reject(hl7.AckError, "OBX", 5, hl7.CodeDataType, "OBX-5 is not a CDA R2 document: %v", err)
	}
	pdf, err := cda.ExtractPDF(cdaBytes)
	if err != nil && !errors.Is(err, cda.ErrNoPDF) {
		return dispatch.Document{}, reject(hl7.AckError, "OBX", 5, hl7.CodeDataType, "the CDA's PDF cannot be read: %v", err)
	}
	doc := dispatch.Document{ID: header.UniqueID(), Code: header.Code.Code, Title: header.Title, CDA: cdaBytes, PDF: pdf}
	if doc.Code == "" {
		doc.Code = obx.Component(3, 1)
	}
	if doc.Title == "" {
		doc.Title = obx.Component(3, 2)
	}
	return doc, nil
}

func dropSpace(r rune) rune {
	switch r {
	case ' ', '\t', '\r', '\n':
		return -1
	}
	return r
}
