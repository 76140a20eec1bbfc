package cda

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// Object identifiers (OIDs) of the French identifier systems and code
// systems found in CDA headers.
const (
	OIDINSNIR     = "1.2.250.1.213.1.4.8"   // INS-NIR: the national health identifier (NIR).
	OIDINSNIA     = "1.2.250.1.213.1.4.9"   // INS-NIA: a temporary national health identifier.
	OIDINSNIRTest = "1.2.250.1.213.1.4.10"  // INS-NIR of test patients.
	OIDINSNIRDemo = "1.2.250.1.213.1.4.11"  // INS-NIR of demonstration patients.
	OIDRPPS       = "1.2.250.1.71.4.2.1"    // National id of health professionals ("8" + RPPS, "0" + ADELI).
	OIDFINESS     = "1.2.250.1.71.4.2.2"    // National id of health organisations ("1" + FINESS, …).
	OIDLOINC      = "2.16.840.1.113883.6.1" // LOINC, the code system of document types.
)

// ErrMissingID is returned for a ClinicalDocument without id/@root.
var ErrMissingID = errors.New("cda: ClinicalDocument/id/@root missing")

// II is an HL7 instance identifier.
type II struct{ Root, Extension string }

// IsZero reports whether the identifier is empty (absent or nullFlavor).
func (i II) IsZero() bool { return i.Root == "" && i.Extension == "" }

// Code is a coded value.
type Code struct{ Code, CodeSystem, DisplayName string }

// Document is the header of a CDA R2 document.
type Document struct {
	ID, SetID          II           // id (this version) and setId (all versions of the document).
	Version            int          // versionNumber/@value, 0 if absent.
	ParentID           II           // relatedDocument[@typeCode='RPLC']/parentDocument/id (replacements), zero if absent.
	Code               Code         // ClinicalDocument/code (LOINC).
	Title              string       // ClinicalDocument/title.
	EffectiveTime      time.Time    // Parsed HL7 TS (see ParseTS); zero if absent.
	Confidentiality    Code         // confidentialityCode.
	Patient            Patient      // recordTarget/patientRole.
	Author             Author       // First author.
	Custodian          Organization // custodian/assignedCustodian/representedCustodianOrganization.
	LegalAuthenticator Person       // legalAuthenticator/assignedEntity.
	Recipients         []Person     // informationRecipient/intendedRecipient.
	HasPDF             bool         // A PDF can be extracted (see ExtractPDF).
}

// Patient is the recordTarget of a document.
type Patient struct {
	IDs []II // patientRole/id: INS (see INS) and local identifiers (IPP).
	// Family and Given are the birth names (qualifier BR, the INS identity
	// traits): the first family name and the first birth given name.
	Family, Given string
	// UsedFamily and UsedGiven are the names in use (qualifier CL), empty when absent.
	UsedFamily, UsedGiven string
	BirthDate             string // birthTime/@value as in the CDA, usually YYYYMMDD.
	Sex                   string // administrativeGenderCode/@code: M, F or U.
}

// Person is a health professional (author, legal authenticator, recipient).
type Person struct {
	ID                            II     // Usually the RPPS/ADELI national id (root OIDRPPS).
	Family, Given, Prefix, Suffix string // First name parts of each kind; Prefix M, MME…, Suffix DR, PR….
}

// Author is the first author of a document.
type Author struct {
	Person
	Organization Organization // assignedAuthor/representedOrganization.
	Time         time.Time    // author/time, zero if absent.
}

// Organization is a health organisation, usually identified by FINESS.
type Organization struct {
	ID   II
	Name string
}

// Parse reads the header of a CDA R2 document.
//
// It fails when data is larger than MaxSize, is not well-formed XML, has a
// DOCTYPE, its root is not {urn:hl7-org:v3}ClinicalDocument, it lacks
// id/@root, or a header value it reads is malformed (versionNumber,
// effectiveTime, author/time).
func Parse(data []byte) (*Document, error) {
	t, err := Read(data)
	if err != nil {
		return nil, err
	}
	return t.Header()
}

// Tree is a CDA document read once, to take both its header and its PDF.
// It keeps slices of the data it was read from, which must not change, and
// is not safe for concurrent use.
type Tree struct {
	data []byte // as given to Read
	root *etree.Element
	// bulk holds the base64 texts cut out before parsing, by placeholder.
	bulk map[string][]byte
	// pdf and pdfErr are the result of PDF, once pdfRead.
	pdf     []byte
	pdfErr  error
	pdfRead bool
}

// Read parses data as Parse does, without reading the header yet.
func Read(data []byte) (*Tree, error) { return readRoot(data) }

// Header reads the document's header, as Parse.
func (t *Tree) Header() (*Document, error) {
	d, err := t.header()
	if err != nil {
		return nil, err
	}
	_, err = t.PDF()
	d.HasPDF = err == nil
	return d, nil
}

// header reads the document's header but HasPDF, which costs the PDF's
// decoding.
func (t *Tree) header() (*Document, error) {
	root := t.root
	var err error
	d := &Document{
		ID:              readII(child(root, "id")),
		SetID:           readII(child(root, "setId")),
		Code:            readCode(child(root, "code")),
		Title:           text(child(root, "title")),
		Confidentiality: readCode(child(root, "confidentialityCode")),
	}
	if d.ID.Root == "" {
		return nil, ErrMissingID
	}
	if v := attr(child(root, "versionNumber"), "value"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("cda: versionNumber %q: not a non-negative integer", v)
		}
		d.Version = n
	}
	if d.EffectiveTime, err = readTS(child(root, "effectiveTime")); err != nil {
		return nil, fmt.Errorf("cda: effectiveTime: %w", err)
	}
	for _, rd := range children(root, "relatedDocument") {
		if tc := attr(rd, "typeCode"); tc != "RPLC" && tc != "" {
			continue
		}
		if id := readII(path(rd, "parentDocument", "id")); !id.IsZero() {
			d.ParentID = id
			break
		}
	}
	d.Patient = readPatient(path(root, "recordTarget", "patientRole"))
	if d.Author, err = readAuthor(child(root, "author")); err != nil {
		return nil, err
	}
	d.Custodian = readOrganization(path(root, "custodian", "assignedCustodian", "representedCustodianOrganization"))
	if ae := path(root, "legalAuthenticator", "assignedEntity"); ae != nil {
		d.LegalAuthenticator = readPerson(child(ae, "id"), path(ae, "assignedPerson", "name"))
	}
	for _, ir := range children(root, "informationRecipient") {
		for _, r := range children(ir, "intendedRecipient") {
			d.Recipients = append(d.Recipients, readPerson(child(r, "id"), path(r, "informationRecipient", "name")))
		}
	}
	return d, nil
}

// UniqueID returns the XDS uniqueId of the document: ID.Root when
// ID.Extension is empty, else Root^Extension.
func (d *Document) UniqueID() string {
	if d.ID.Extension == "" {
		return d.ID.Root
	}
	return d.ID.Root + "^" + d.ID.Extension
}

// insRoots are the OIDs of the national health identifier (INS) systems.
var insRoots = []string{OIDINSNIR, OIDINSNIA, OIDINSNIRTest, OIDINSNIRDemo}

// INS returns the first patient identifier whose root is an INS system
// (INS-NIR, INS-NIA, INS-NIR test or demo) and that has a matricule.
func (p Patient) INS() (matricule, oid string, ok bool) {
	for _, id := range p.IDs {
		if id.Extension != "" && slices.Contains(insRoots, id.Root) {
			return id.Extension, id.Root, true
		}
	}
	return "", "", false
}

func readII(e *etree.Element) II {
	return II{Root: attr(e, "root"), Extension: attr(e, "extension")}
}

func readCode(e *etree.Element) Code {
	return Code{Code: attr(e, "code"), CodeSystem: attr(e, "codeSystem"), DisplayName: attr(e, "displayName")}
}

// readTS parses the @value of an HL7 TS element; absent or nullFlavor is
// the zero time.
func readTS(e *etree.Element) (time.Time, error) {
	v := attr(e, "value")
	if v == "" {
		return time.Time{}, nil
	}
	return ParseTS(v)
}

func readPatient(pr *etree.Element) Patient {
	var p Patient
	if pr == nil {
		return p
	}
	for _, id := range children(pr, "id") {
		if ii := readII(id); !ii.IsZero() {
			p.IDs = append(p.IDs, ii)
		}
	}
	pat := child(pr, "patient")
	name := child(pat, "name")
	p.Family = namePart(name, "family", "BR")
	p.Given = namePart(name, "given", "BR")
	p.UsedFamily = qualifiedPart(name, "family", "CL")
	p.UsedGiven = qualifiedPart(name, "given", "CL")
	p.BirthDate = attr(child(pat, "birthTime"), "value")
	p.Sex = attr(child(pat, "administrativeGenderCode"), "code")
	return p
}

func readAuthor(a *etree.Element) (Author, error) {
	var au Author
	if a == nil {
		return au, nil
	}
	t, err := readTS(child(a, "time"))
	if err != nil {
		return au, fmt.Errorf("cda: author/time: %w", err)
	}
	au.Time = t
	aa := child(a, "assignedAuthor")
	au.Person = readPerson(child(aa, "id"), path(aa, "assignedPerson", "name"))
	au.Organization = readOrganization(child(aa, "representedOrganization"))
	return au, nil
}

func readPerson(id, name *etree.Element) Person {
	return Person{
		ID:     readII(id),
		Family: namePart(name, "family", ""),
		Given:  namePart(name, "given", ""),
		Prefix: namePart(name, "prefix", ""),
		Suffix: namePart(name, "suffix", ""),
	}
}

func readOrganization(e *etree.Element) Organization {
	return Organization{ID: readII(child(e, "id")), Name: text(child(e, "name"))}
}

// namePart returns the name part tag of a PN: the first one with qualifier
// prefer when prefer is set, else the first one without qualifier, else
// the first one.
func namePart(name *etree.Element, tag, prefer string) string {
	parts := children(name, tag)
	if prefer != "" {
		if s := qualifiedPart(name, tag, prefer); s != "" {
			return s
		}
	}
	for _, p := range parts {
		if attr(p, "qualifier") == "" {
			if s := text(p); s != "" {
				return s
			}
		}
	}
	for _, p := range parts {
		if s := text(p); s != "" {
			return s
		}
	}
	return ""
}

// qualifiedPart returns the first name part tag whose qualifier set holds q.
func qualifiedPart(name *etree.Element, tag, q string) string {
	for _, p := range children(name, tag) {
		if slices.Contains(strings.Fields(attr(p, "qualifier")), q) {
			if s := text(p); s != "" {
				return s
			}
		}
	}
	return ""
}
