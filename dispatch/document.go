package dispatch

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/correspondents"
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

// prepare completes r before it is stored: its addresses are checked and
// put in their stored form; a CDA gives its document's id, code, title and
// PDF when they are missing; a bare PDF is wrapped into a CDA R2 level-1
// document; the patient's mailbox is added when the flags ask for it, with
// a warning when it cannot be used as given.
func (s *Service) prepare(r *Report, now time.Time) error {
	if err := r.parseAddresses(); err != nil {
		return err
	}
	for i, doc := range r.documents() {
		idField, cdaField := documentFields(i)
		switch {
		case len(doc.CDA) > 0:
			if err := completeFromCDA(doc, idField, cdaField); err != nil {
				return err
			}
		case i == 0 && len(doc.PDF) > 0 && r.Action != ActionDelete:
			wrapped, err := s.wrapPDF(*r, now)
			if err != nil {
				return err
			}
			doc.CDA, doc.PDFInCDA = wrapped, true
		}
	}
	r.patientRecipient()
	return nil
}

// parseAddresses puts r's email addresses in their stored form, or returns
// an InvalidError for one that is not an RFC 5321 mailbox (it could carry
// a header line or a second recipient into an email).
func (r *Report) parseAddresses() error {
	fields := []*string{&r.ReplyTo}
	names := []string{"reply_to"}
	for i := range r.Recipients {
		fields = append(fields, &r.Recipients[i].Address)
		names = append(names, fmt.Sprintf("recipients[%d].address", i))
	}
	for i, f := range fields {
		if *f == "" {
			continue
		}
		a, err := correspondents.ParseMailbox(*f)
		if err != nil {
			return &InvalidError{Field: names[i], Msg: err.Error()}
		}
		*f = a
	}
	return nil
}

// documentFields are the fields of the i-th document of a report, its id
// and its CDA, in an InvalidError or a Warning.
func documentFields(i int) (id, cda string) {
	if i == 0 {
		return FieldDocumentID, FieldDocumentCDA
	}
	return FieldOtherFormatID, FieldOtherFormatCDA
}

// completeFromCDA fills what doc lacks from its CDA's header, and its PDF.
func completeFromCDA(doc *Document, idField, cdaField string) error {
	header, err := doc.Header, error(nil)
	if header == nil {
		header, err = cda.Parse(doc.CDA)
	}
	if err != nil {
		return &InvalidError{Field: cdaField, Msg: fmt.Sprintf("ce n'est pas un document CDA R2 : %v", err)}
	}
	switch id := header.UniqueID(); {
	case doc.ID == "":
		doc.ID = id
	case doc.ID != id:
		return &InvalidError{Field: idField, Msg: fmt.Sprintf("l'identifiant %s n'est pas celui du CDA (ClinicalDocument/id) %s", doc.ID, id)}
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
			return &InvalidError{Field: cdaField, Msg: fmt.Sprintf("le PDF du CDA est illisible : %v", err)}
		}
		doc.PDF, doc.PDFInCDA = pdf, pdf != nil
	}
	return nil
}

// patientRecipient keeps the patient among the recipients only when the flags
// send to the patient: the patient the DPI listed, else the report's patient
// (the resolver routes it to INS@patient.mssante.fr when the INS is
// qualified). When the patient's mailbox cannot be used as the DPI gave it
// (an identity not qualified, an address that is not the INS's mailbox),
// the resolver leaves the patient's delivery for review and r gets a
// warning saying so.
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
	mailbox := correspondents.PatientMailbox(r.Patient.INS, r.Patient.INSQualified)
	switch {
	case mailbox == "":
		r.Warnings = append(r.Warnings, Warning{Field: FieldPatientINS,
			Msg: "DESTMSSANTEPAT=Y mais l'identité du patient n'est pas qualifiée (PID-32 différent de VALI) : sa messagerie MSSanté ne peut pas être utilisée, l'envoi au patient attend une vérification"})
	case rc.Address != "" && !strings.EqualFold(rc.Address, mailbox):
		r.Warnings = append(r.Warnings, Warning{Field: FieldPatientMailbox,
			Msg: "l'adresse MSSanté du patient donnée par le DPI n'est pas la messagerie de son INS qualifié (" + mailbox + ") : rien n'y est envoyé, l'envoi au patient attend une vérification"})
	}
}

// wrapPDF builds the CDA R2 level-1 document of a report that came as a PDF.
func (s *Service) wrapPDF(r Report, now time.Time) ([]byte, error) {
	switch {
	case s.custodian.FINESS == "":
		return nil, &InvalidError{Field: "document.pdf",
			Msg: "ce service ne peut pas construire de CDA autour d'un PDF seul : son FINESS n'est pas configuré ; envoyez un CDA"}
	case r.Document.ID == "":
		return nil, &InvalidError{Field: FieldDocumentID, Msg: "un PDF seul a besoin de l'identifiant du document (racine OID, ^extension facultative)"}
	case r.Document.Code == "" || r.Document.Title == "":
		return nil, &InvalidError{Field: "document.code", Msg: "un PDF seul a besoin de son code LOINC et de son titre"}
	case r.Patient.INS == "" || r.Patient.INSOID == "":
		return nil, &InvalidError{Field: FieldPatientINS, Msg: "un PDF seul a besoin de l'INS du patient et de son OID"}
	case r.Author.RPPS == "":
		return nil, &InvalidError{Field: "author.rpps", Msg: "un PDF seul a besoin du RPPS de son auteur"}
	}
	author, err := correspondents.NationalIDFromRPPS(r.Author.RPPS)
	if err != nil {
		return nil, &InvalidError{Field: "author.rpps", Msg: fmt.Sprintf("%q n'est pas un RPPS à 11 chiffres", r.Author.RPPS)}
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
		Author: cda.Author{Person: cda.Person{ID: cda.II{Root: oidRPPS, Extension: author.String()},
			Family: r.Author.Family, Given: r.Author.Given}, Organization: custodian},
		Custodian: custodian,
	}}
	out, err := cda.WrapPDF(r.Document.PDF, h)
	if err != nil {
		return nil, &InvalidError{Field: "document.pdf", Msg: err.Error()}
	}
	return out, nil
}
