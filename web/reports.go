package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/internal/redact"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

// ReportIntake stores reports received as JSON (dispatch.Service).
type ReportIntake interface {
	Previous(ctx context.Context, in dispatch.Inbound) (dispatch.Answer, bool, error)
	Receive(ctx context.Context, in dispatch.Inbound, r dispatch.Report, respond func(reportID int64, documentID string, receivedAt time.Time, warnings []dispatch.Warning) []byte) (dispatch.Receipt, error)
	Reject(ctx context.Context, in dispatch.Inbound, raw []byte, why dispatch.Refusal, response []byte) (dispatch.Answer, error)
}

// reportRequest is the body of POST /api/v1/reports (see openapi.json).
type reportRequest struct {
	// Patient is required: nil when the request has none.
	Patient  *patientRequest `json:"patient"`
	Service  string          `json:"service"`
	Document struct {
		ID       string `json:"id"`
		ParentID string `json:"parent_id"`
		Action   string `json:"action"`
		Code     string `json:"code"`
		Title    string `json:"title"`
		PDF      []byte `json:"pdf"`
		CDA      []byte `json:"cda"`
	} `json:"document"`
	Author           recipientRequest   `json:"author"`
	ReplyTo          string             `json:"reply_to"`
	Recipients       []recipientRequest `json:"recipients"`
	Flags            *dispatch.Flags    `json:"flags"`
	BodyProfessional string             `json:"body_professional"`
	BodyPatient      string             `json:"body_patient"`
}

// patientRequest is the patient of a reportRequest.
type patientRequest struct {
	Family       string                 `json:"family"`
	Given        string                 `json:"given"`
	BirthDate    string                 `json:"birth_date"`
	Sex          string                 `json:"sex"`
	INS          string                 `json:"ins"`
	INSOID       string                 `json:"ins_oid"`
	INSQualified bool                   `json:"ins_qualified"`
	IPP          string                 `json:"ipp"`
	Address      dispatch.PostalAddress `json:"address"`
}

// patient maps the patient, who must be named and identified as HL7's PID-5
// and PID-3 must: a report whose patient no one can tell would be sent,
// shown, searched and printed without one.
func (p *patientRequest) patient() (dispatch.Patient, error) {
	switch {
	case p == nil:
		return dispatch.Patient{}, &fieldError{"patient", "le compte rendu doit identifier son patient : donnez patient, avec son nom (family) et son IPP (ipp) ou son INS (ins)"}
	case strings.TrimSpace(p.Family) == "":
		return dispatch.Patient{}, &fieldError{"patient.family", "le nom de famille du patient est vide"}
	case strings.TrimSpace(p.IPP) == "" && strings.TrimSpace(p.INS) == "":
		return dispatch.Patient{}, &fieldError{"patient.ipp", "donnez l'IPP (ipp) ou l'INS (ins) du patient : son nom seul ne l'identifie pas"}
	}
	return dispatch.Patient{Family: p.Family, Given: p.Given, BirthDate: strings.ReplaceAll(p.BirthDate, "-", ""),
		Sex: p.Sex, INS: p.INS, INSOID: p.INSOID, INSQualified: p.INSQualified, IPP: p.IPP, Address: p.Address}, nil
}

type recipientRequest struct {
	RPPS         string `json:"rpps"`
	ADELI        string `json:"adeli"`
	FINESS       string `json:"finess"`
	Family       string `json:"family"`
	Given        string `json:"given"`
	Organisation string `json:"organisation"`
	Address      string `json:"address"`
}

// fieldError is a request field the client must fix.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// report maps the request to the domain, checking what only JSON can get wrong.
func (req *reportRequest) report() (dispatch.Report, error) {
	r := dispatch.Report{
		Action:           dispatch.Action(req.Document.Action),
		Service:          req.Service,
		ReplyTo:          strings.ToLower(strings.TrimSpace(req.ReplyTo)),
		Flags:            dispatch.DefaultFlags,
		BodyProfessional: req.BodyProfessional,
		BodyPatient:      req.BodyPatient,
		Document: dispatch.Document{ID: req.Document.ID, ParentID: req.Document.ParentID, Code: req.Document.Code,
			Title: req.Document.Title, CDA: req.Document.CDA, PDF: req.Document.PDF},
	}
	if r.Action == "" {
		r.Action = dispatch.ActionNew
	}
	patient, err := req.Patient.patient()
	if err != nil {
		return r, err
	}
	r.Patient = patient
	if req.Flags != nil {
		r.Flags = *req.Flags
		r.Flags.Present = true
	}
	if len(r.Document.CDA) == 0 && len(r.Document.PDF) == 0 && r.Action != dispatch.ActionDelete {
		return r, &fieldError{"document", "donnez le document en cda ou en pdf (base64)"}
	}
	author, err := req.Author.recipient("author", dispatch.RoleSender)
	if err != nil {
		return r, err
	}
	if author.Kind != "" {
		r.Author = author
	}
	for i, rr := range req.Recipients {
		rc, err := rr.recipient(fmt.Sprintf("recipients[%d]", i), dispatch.RoleResultCopiesTo)
		if err != nil {
			return r, err
		}
		if rc.Kind == "" {
			return r, &fieldError{fmt.Sprintf("recipients[%d]", i), "donnez un rpps, un adeli, un finess, un nom ou une adresse"}
		}
		r.Recipients = append(r.Recipients, rc)
	}
	return r, nil
}

// recipient maps a person or organisation; Kind is empty when nothing was
// given. field names it in errors (empty for top-level fields).
func (rr recipientRequest) recipient(field, role string) (dispatch.Recipient, error) {
	rc := dispatch.Recipient{Role: role, FINESS: rr.FINESS, Family: rr.Family, Given: rr.Given,
		Organisation: rr.Organisation, Address: strings.ToLower(strings.TrimSpace(rr.Address))}
	sub := func(name string) string {
		if field == "" {
			return name
		}
		return field + "." + name
	}
	fromRPPS, errRPPS := correspondents.NationalIDFromRPPS(rr.RPPS)
	fromADELI, errADELI := correspondents.NationalIDFromADELI(rr.ADELI)
	switch {
	case rr.RPPS != "" && errRPPS != nil:
		return rc, &fieldError{sub("rpps"), "un numéro RPPS a 11 chiffres"}
	case rr.ADELI != "" && errADELI != nil:
		return rc, &fieldError{sub("adeli"), "un numéro ADELI a 9 chiffres"}
	case rr.RPPS != "":
		rc.RPPS, rc.NationalID = rr.RPPS, fromRPPS.String()
	case rr.ADELI != "":
		rc.NationalID = fromADELI.String()
	}
	switch {
	case rc.NationalID != "" || rc.Family != "" || rc.Given != "":
		rc.Kind = dispatch.KindProfessional
	case rc.Organisation != "" || rc.FINESS != "" || rc.Address != "":
		rc.Kind = dispatch.KindOrganisation
	}
	return rc, nil
}

// postReport takes a report as JSON. The Idempotency-Key header is required: a
// request sent again with the same key and body gets the first answer.
func (s *server) postReport(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	if key == "" || len(key) > 200 {
		writeError(w, http.StatusBadRequest, "the Idempotency-Key header is required (at most 200 characters)")
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	sum := sha256.Sum256(body)
	in := dispatch.Inbound{Kind: "json", Source: "api", ControlID: key, MessageType: "report", Fingerprint: sum[:]}
	ctx := r.Context()
	prev, found, err := s.cfg.Intake.Previous(ctx, in)
	switch {
	case found:
		writeAnswer(w, prev)
		return
	case errors.Is(err, dispatch.ErrKeyReused):
		writeError(w, http.StatusConflict, "this Idempotency-Key was already used for a different request")
		return
	case err != nil:
		s.unavailable(w, r, err)
		return
	}

	var req reportRequest
	if err := decodeStrict(body, &req); err != nil {
		s.refuse(w, r, in, body, "", fmt.Sprintf("le corps n'est pas un compte rendu valide : %v", err))
		return
	}
	in.Service = req.Service // the report's, for the quarantine's scope
	report, err := req.report()
	var fe *fieldError
	if errors.As(err, &fe) {
		s.refuse(w, r, in, body, fe.field, fe.msg)
		return
	}
	receipt, err := s.cfg.Intake.Receive(ctx, in, report, func(id int64, documentID string, receivedAt time.Time, warnings []dispatch.Warning) []byte {
		b, _ := json.Marshal(receivedReport{ReportView: readmodel.ReportView{ID: id, DocumentID: documentID,
			DocumentIDs: []string{documentID}, Status: dispatch.ReportReceived, ReceivedAt: receivedAt, Deliveries: []readmodel.DeliveryView{}},
			Warnings: warningsOf(warnings)})
		return b
	})
	var invalid *dispatch.InvalidError
	switch {
	case err == nil:
		writeAnswer(w, receipt.Answer)
	case errors.As(err, &invalid):
		s.refuse(w, r, in, body, invalid.Field, invalid.Msg)
	case errors.Is(err, dispatch.ErrKeyReused):
		writeError(w, http.StatusConflict, "this Idempotency-Key was already used for a different request")
	default:
		s.unavailable(w, r, err)
	}
}

// receivedReport is the answer to a report received: the report, and what
// was not used of it without refusing it.
type receivedReport struct {
	readmodel.ReportView
	Warnings []warningView `json:"warnings,omitempty"`
}

// warningView is a dispatch.Warning in JSON.
type warningView struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func warningsOf(ws []dispatch.Warning) []warningView {
	var out []warningView
	for _, w := range ws {
		out = append(out, warningView{Field: w.Field, Message: w.Msg})
	}
	return out
}

// refuse answers 422 with the field at fault, after keeping the request in quarantine.
func (s *server) refuse(w http.ResponseWriter, r *http.Request, in dispatch.Inbound, body []byte, field, msg string) {
	resp, _ := json.Marshal(map[string]string{"error": msg, "field": field})
	answer, err := s.cfg.Intake.Reject(r.Context(), in, body, dispatch.Refusal{Reason: msg, Location: field}, resp)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	writeAnswer(w, answer)
}

func (s *server) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	s.cfg.Logger.ErrorContext(r.Context(), "report not stored", "error", redact.Text(err.Error()))
	writeError(w, http.StatusServiceUnavailable, "the report could not be stored, send it again later")
}

// writeAnswer writes a stored answer: 201 with the report, or 422 with the reason.
func writeAnswer(w http.ResponseWriter, a dispatch.Answer) {
	status := http.StatusUnprocessableEntity
	if a.Accepted {
		status = http.StatusCreated
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(a.Response)
}

// readBody reads a request body within the size limit, answering the error itself.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodySize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", s.cfg.MaxBodySize))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "cannot read the body")
		return nil, false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(w, http.StatusBadRequest, "empty body")
		return nil, false
	}
	return body, true
}
