package cda

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/beevik/etree"
)

// Template ids a CDA R2 level 1 document built by WrapPDF declares: HL7
// France, CI-SIS, and IHE XDS-SD (scanned document, here a PDF).
const (
	TemplateHL7France = "2.16.840.1.113883.2.8.2.1" // Conformance to HL7 France.
	TemplateCISIS     = "1.2.250.1.213.1.1.1.1"     // Conformance to the CI-SIS.
	TemplateXDSSD     = "1.3.6.1.4.1.19376.1.2.20"  // Conformance to IHE XDS-SD.
)

// OIDConfidentiality is the HL7 Confidentiality code system (N, R, V).
const OIDConfidentiality = "2.16.840.1.113883.5.25"

// WrapHeader is the header of the CDA R2 level 1 document WrapPDF builds;
// Document.HasPDF is ignored.
type WrapHeader struct {
	// Document holds the header fields. Required: ID.Root, Code.Code,
	// Title, EffectiveTime, at least one Patient.IDs, Author.ID.Root and
	// Custodian.ID.Root. Defaults: SetID to ID, Version to 1,
	// Confidentiality to N, Author.Time to EffectiveTime, LegalAuthenticator
	// to Author.Person.
	Document
	// PracticeSetting is the XDS practiceSettingCode, written as
	// documentationOf/serviceEvent/performer/assignedEntity/
	// representedOrganization/standardIndustryClassCode; omitted when empty.
	PracticeSetting Code
	// HealthcareFacilityType is the XDS healthcareFacilityTypeCode, written as
	// componentOf/encompassingEncounter/location/healthCareFacility/code;
	// omitted when empty.
	HealthcareFacilityType Code
}

// ErrInvalidHeader is returned by WrapPDF for a header missing a required field.
var ErrInvalidHeader = errors.New("cda: invalid header")

// WrapPDF builds a CDA R2 level 1 document (DOC_NON_STRUCTURE, IHE XDS-SD)
// whose nonXMLBody is pdf, base64 encoded, with the header h.
func WrapPDF(pdf []byte, h WrapHeader) ([]byte, error) {
	if !bytes.HasPrefix(pdf, pdfMagic) {
		return nil, fmt.Errorf("%w: no %%PDF- signature", ErrInvalidPDF)
	}
	if err := h.check(); err != nil {
		return nil, err
	}
	d := h.Document
	if d.SetID.IsZero() {
		d.SetID = d.ID
	}
	if d.Version == 0 {
		d.Version = 1
	}
	if d.Confidentiality.Code == "" {
		d.Confidentiality = Code{Code: "N", CodeSystem: OIDConfidentiality, DisplayName: "Normal"}
	}
	if d.Author.Time.IsZero() {
		d.Author.Time = d.EffectiveTime
	}
	if d.LegalAuthenticator == (Person{}) {
		d.LegalAuthenticator = d.Author.Person
	}

	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	cd := doc.CreateElement("ClinicalDocument")
	cd.CreateAttr("xmlns", NS)
	setAttrs(cd.CreateElement("realmCode"), "code", "FR")
	setAttrs(cd.CreateElement("typeId"), "root", "2.16.840.1.113883.1.3", "extension", "POCD_HD000040")
	for _, t := range []string{TemplateHL7France, TemplateCISIS, TemplateXDSSD} {
		setAttrs(cd.CreateElement("templateId"), "root", t)
	}
	writeII(cd.CreateElement("id"), d.ID)
	writeCode(cd.CreateElement("code"), d.Code, "LOINC")
	cd.CreateElement("title").SetText(d.Title)
	writeTS(cd.CreateElement("effectiveTime"), d.EffectiveTime)
	writeCode(cd.CreateElement("confidentialityCode"), d.Confidentiality, "")
	setAttrs(cd.CreateElement("languageCode"), "code", "fr-FR")
	writeII(cd.CreateElement("setId"), d.SetID)
	setAttrs(cd.CreateElement("versionNumber"), "value", strconv.Itoa(d.Version))

	pr := cd.CreateElement("recordTarget").CreateElement("patientRole")
	for _, id := range d.Patient.IDs {
		writeII(pr.CreateElement("id"), id)
	}
	pat := pr.CreateElement("patient")
	setAttrs(pat, "classCode", "PSN")
	name := pat.CreateElement("name")
	namePartEl(name, "family", d.Patient.Family, "BR")
	namePartEl(name, "given", d.Patient.Given, "")
	namePartEl(name, "family", d.Patient.UsedFamily, "CL")
	namePartEl(name, "given", d.Patient.UsedGiven, "CL")
	if len(name.Child) == 0 {
		setAttrs(name, "nullFlavor", "UNK")
	}
	if d.Patient.Sex != "" {
		setAttrs(pat.CreateElement("administrativeGenderCode"), "code", d.Patient.Sex, "codeSystem", "2.16.840.1.113883.5.1")
	} else {
		setAttrs(pat.CreateElement("administrativeGenderCode"), "nullFlavor", "UNK")
	}
	if d.Patient.BirthDate != "" {
		setAttrs(pat.CreateElement("birthTime"), "value", d.Patient.BirthDate)
	} else {
		setAttrs(pat.CreateElement("birthTime"), "nullFlavor", "UNK")
	}

	author := cd.CreateElement("author")
	writeTS(author.CreateElement("time"), d.Author.Time)
	aa := author.CreateElement("assignedAuthor")
	writeII(aa.CreateElement("id"), d.Author.ID)
	writePersonName(aa, "assignedPerson", d.Author.Person)
	writeOrganization(aa, "representedOrganization", d.Author.Organization)

	cust := cd.CreateElement("custodian").CreateElement("assignedCustodian")
	writeOrganization(cust, "representedCustodianOrganization", d.Custodian)

	for _, r := range d.Recipients {
		ir := cd.CreateElement("informationRecipient").CreateElement("intendedRecipient")
		if !r.ID.IsZero() {
			writeII(ir.CreateElement("id"), r.ID)
		}
		writePersonName(ir, "informationRecipient", r)
	}

	la := cd.CreateElement("legalAuthenticator")
	writeTS(la.CreateElement("time"), d.EffectiveTime)
	setAttrs(la.CreateElement("signatureCode"), "code", "S")
	ae := la.CreateElement("assignedEntity")
	writeII(ae.CreateElement("id"), d.LegalAuthenticator.ID)
	writePersonName(ae, "assignedPerson", d.LegalAuthenticator)

	se := cd.CreateElement("documentationOf").CreateElement("serviceEvent")
	writeTS(se.CreateElement("effectiveTime").CreateElement("low"), d.EffectiveTime)
	if h.PracticeSetting.Code != "" {
		pe := se.CreateElement("performer")
		setAttrs(pe, "typeCode", "PRF")
		pa := pe.CreateElement("assignedEntity")
		writeII(pa.CreateElement("id"), d.Author.ID)
		ro := pa.CreateElement("representedOrganization")
		if !d.Author.Organization.ID.IsZero() {
			writeII(ro.CreateElement("id"), d.Author.Organization.ID)
		}
		if d.Author.Organization.Name != "" {
			ro.CreateElement("name").SetText(d.Author.Organization.Name)
		}
		writeCode(ro.CreateElement("standardIndustryClassCode"), h.PracticeSetting, "")
	}

	if !d.ParentID.IsZero() {
		rd := cd.CreateElement("relatedDocument")
		setAttrs(rd, "typeCode", "RPLC")
		writeII(rd.CreateElement("parentDocument").CreateElement("id"), d.ParentID)
	}

	enc := cd.CreateElement("componentOf").CreateElement("encompassingEncounter")
	writeTS(enc.CreateElement("effectiveTime").CreateElement("low"), d.EffectiveTime)
	if h.HealthcareFacilityType.Code != "" {
		writeCode(enc.CreateElement("location").CreateElement("healthCareFacility").CreateElement("code"), h.HealthcareFacilityType, "")
	}

	text := cd.CreateElement("component").CreateElement("nonXMLBody").CreateElement("text")
	setAttrs(text, "mediaType", "application/pdf", "representation", "B64")
	text.SetText(wrapBase64(pdf))
	// Indentation only touches white-space text, so not the base64.
	doc.Indent(2)
	out, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("cda: write document: %w", err)
	}
	return out, nil
}

// check reports the required header fields that are missing.
func (h *WrapHeader) check() error {
	var missing []string
	for _, f := range []struct {
		name string
		ok   bool
	}{
		{"ID.Root", h.ID.Root != ""},
		{"Code.Code", h.Code.Code != ""},
		{"Title", h.Title != ""},
		{"EffectiveTime", !h.EffectiveTime.IsZero()},
		{"Patient.IDs", len(h.Patient.IDs) > 0},
		{"Author.ID.Root", h.Author.ID.Root != ""},
		{"Custodian.ID.Root", h.Custodian.ID.Root != ""},
	} {
		if !f.ok {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %v", ErrInvalidHeader, missing)
	}
	if h.Version < 0 {
		return fmt.Errorf("%w: negative Version %d", ErrInvalidHeader, h.Version)
	}
	return nil
}

// setAttrs sets the attributes given as key, value pairs on e.
func setAttrs(e *etree.Element, kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		e.CreateAttr(kv[i], kv[i+1])
	}
}

func writeII(e *etree.Element, id II) {
	if id.IsZero() {
		setAttrs(e, "nullFlavor", "UNK")
		return
	}
	setAttrs(e, "root", id.Root)
	if id.Extension != "" {
		setAttrs(e, "extension", id.Extension)
	}
}

func writeCode(e *etree.Element, c Code, systemName string) {
	setAttrs(e, "code", c.Code)
	if c.DisplayName != "" {
		setAttrs(e, "displayName", c.DisplayName)
	}
	if c.CodeSystem != "" {
		setAttrs(e, "codeSystem", c.CodeSystem)
		if systemName != "" && c.CodeSystem == OIDLOINC {
			setAttrs(e, "codeSystemName", systemName)
		}
	}
}

// hl7TS is the layout of an HL7 TS with seconds and UTC offset.
const hl7TS = "20060102150405-0700"

func writeTS(e *etree.Element, t time.Time) {
	if t.IsZero() {
		setAttrs(e, "nullFlavor", "UNK")
		return
	}
	setAttrs(e, "value", t.Format(hl7TS))
}

// namePartEl adds the name part tag with text s and qualifier q to name,
// unless s is empty.
func namePartEl(name *etree.Element, tag, s, q string) {
	if s == "" {
		return
	}
	p := name.CreateElement(tag)
	if q != "" {
		setAttrs(p, "qualifier", q)
	}
	p.SetText(s)
}

// writePersonName adds a tag element (assignedPerson…) with the name of p,
// unless p has no name.
func writePersonName(parent *etree.Element, tag string, p Person) {
	if p.Family == "" && p.Given == "" && p.Prefix == "" && p.Suffix == "" {
		return
	}
	name := parent.CreateElement(tag).CreateElement("name")
	namePartEl(name, "prefix", p.Prefix, "")
	namePartEl(name, "given", p.Given, "")
	namePartEl(name, "family", p.Family, "")
	namePartEl(name, "suffix", p.Suffix, "")
}

// writeOrganization adds a tag element with the id and name of o, unless o is zero.
func writeOrganization(parent *etree.Element, tag string, o Organization) {
	if o == (Organization{}) {
		return
	}
	e := parent.CreateElement(tag)
	writeII(e.CreateElement("id"), o.ID)
	if o.Name != "" {
		e.CreateElement("name").SetText(o.Name)
	}
}

// wrapBase64 encodes b in base64 lines of 76 characters (as MIME does),
// starting and ending with a newline.
func wrapBase64(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var out bytes.Buffer
	out.Grow(len(s) + len(s)/76 + 2)
	out.WriteByte('\n')
	for len(s) > 76 {
		out.WriteString(s[:76])
		out.WriteByte('\n')
		s = s[76:]
	}
	out.WriteString(s)
	out.WriteByte('\n')
	return out.String()
}
