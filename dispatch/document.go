package dispatch

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mssdispatch/mssdispatch/cda"
)

// Organisation is the hospital running the service: the custodian of the
// documents it builds around a bare PDF.
type Organisation struct {
	// FINESS is the establishment's 9-character FINESS number.
	FINESS string
	Name   string
}

// OIDs of the identifiers the service writes into a CDA header.
const (
	oidRPPS   = "1.2.250.1.71.4.2.1"
	oidFINESS = "1.2.250.1.71.4.2.2"
	oidLOINC  = "2.16.840.1.113883.6.1"
)

// prepare completes r before it is stored: a CDA gives the document's id, code,
// title and PDF when they are missing; a bare PDF is wrapped into a CDA R2
// level-1 document; the patient's mailbox is added when the flags ask for it.
func (s *Service) prepare(r *Report, now time.Time) error {
	doc := &r.Document
	switch {
	case len(doc.CDA) > 0:
		header, err := doc.Header, error(nil)
		if header == nil {
			header, err = cda.Parse(doc.CDA)
		}
		if err != nil {
			return &InvalidError{Field: "document.cda", Msg: fmt.Sprintf("not a CDA R2 document: %v", err)}
		}
		if doc.ID == "" {
			doc.ID = header.UniqueID()
		}
		if doc.Code == "" {
			doc.Code = header.Code.Code
		}
		if doc.Title == "" {
			doc.Title = header.Title
		}
		if doc.Confidentiality == "" {
			doc.Confidentiality = header.Confidentiality.Code
		}
		if doc.PDF == nil {
			pdf, err := cda.ExtractPDF(doc.CDA)
			if err != nil && !errors.Is(err, cda.ErrNoPDF) {
				return &InvalidError{Field: "document.cda", Msg: fmt.Sprintf("the CDA's PDF cannot be read: %v", err)}
			}
			doc.PDF, doc.PDFInCDA = pdf, pdf != nil
		}
	case len(doc.PDF) > 0 && r.Action != ActionDelete:
		wrapped, err := s.wrapPDF(*r, now)
		if err != nil {
			return err
		}
		doc.CDA, doc.PDFInCDA = wrapped, true
	}
	r.patientRecipient()
	return nil
}

// patientRecipient keeps the patient among the recipients only when the flags
// send to the patient: the patient the DPI listed, else the report's patient
// (the resolver routes it to INS@patient.mssante.fr when the INS is qualified).
func (r *Report) patientRecipient() {
	i := slices.IndexFunc(r.Recipients, func(rc Recipient) bool { return rc.Role == RolePatient })
	if !r.Flags.SendsToPatient() {
		r.Recipients = slices.DeleteFunc(r.Recipients, func(rc Recipient) bool { return rc.Role == RolePatient })
		return
	}
	if i < 0 {
		r.Recipients = append(r.Recipients, Recipient{Role: RolePatient, Kind: KindPatient})
		i = len(r.Recipients) - 1
	}
	rc := &r.Recipients[i]
	if rc.Family == "" && rc.Given == "" {
		rc.Family, rc.Given = r.Patient.Family, r.Patient.Given
	}
}

// wrapPDF builds the CDA R2 level-1 document of a report that came as a PDF.
func (s *Service) wrapPDF(r Report, now time.Time) ([]byte, error) {
	switch {
	case s.custodian.FINESS == "":
		return nil, &InvalidError{Field: "document.pdf",
			Msg: "this service cannot build a CDA around a bare PDF: its FINESS is not configured; send a CDA"}
	case r.Document.ID == "":
		return nil, &InvalidError{Field: "document.id", Msg: "a bare PDF needs its document id (OID root, optionally ^extension)"}
	case r.Document.Code == "" || r.Document.Title == "":
		return nil, &InvalidError{Field: "document.code", Msg: "a bare PDF needs its LOINC code and title"}
	case r.Patient.INS == "" || r.Patient.INSOID == "":
		return nil, &InvalidError{Field: "patient.ins", Msg: "a bare PDF needs the patient's INS and its OID"}
	case r.Author.RPPS == "":
		return nil, &InvalidError{Field: "author.rpps", Msg: "a bare PDF needs its author's RPPS"}
	}
	root, ext, _ := strings.Cut(r.Document.ID, "^")
	custodian := cda.Organization{ID: cda.II{Root: oidFINESS, Extension: "1" + s.custodian.FINESS}, Name: s.custodian.Name}
	h := cda.WrapHeader{Document: cda.Document{
		ID:            cda.II{Root: root, Extension: ext},
		Code:          cda.Code{Code: r.Document.Code, CodeSystem: oidLOINC, DisplayName: r.Document.Title},
		Title:         r.Document.Title,
		EffectiveTime: now,
		Patient: cda.Patient{IDs: []cda.II{{Root: r.Patient.INSOID, Extension: r.Patient.INS}},
			Family: r.Patient.Family, Given: r.Patient.Given, BirthDate: r.Patient.BirthDate, Sex: r.Patient.Sex},
		Author: cda.Author{Person: cda.Person{ID: cda.II{Root: oidRPPS, Extension: "8" + r.Author.RPPS},
			Family: r.Author.Family, Given: r.Author.Given}, Organization: custodian},
		Custodian: custodian,
	}}
	out, err := cda.WrapPDF(r.Document.PDF, h)
	if err != nil {
		return nil, &InvalidError{Field: "document.pdf", Msg: err.Error()}
	}
	return out, nil
}
