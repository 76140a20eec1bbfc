package dispatch

import (
	"crypto/sha256"
	"errors"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/postal"
)

// Report is a validated report received from the DPI, with the recipients it
// listed.
type Report struct {
	// Action is what the report does to its document.
	Action  Action
	Patient Patient
	// Service is the care unit the report comes from (PV1-3 point of care,
	// else ORC/OBR ordering unit), for the CME rules; may be empty.
	Service  string
	Document Document
	// OtherFormat is the second document an ORU^R01 may carry: the same
	// report in another format (the volet: CDA level 1 and level 3, each with
	// its own id). It goes with Document in every email, and a replacement
	// or deletion applies to both. Nil for most reports.
	OtherFormat *Document `json:"-"`
	// Author is the professional who signed or sent the document (PRT SB,
	// else the CDA author), when known.
	Author Recipient
	// ReplyTo is the address replies should go to (PRT REPLY), if any.
	ReplyTo    string
	Recipients []Recipient
	Flags      Flags
	// BodyProfessional and BodyPatient are the email bodies the DPI wrote
	// (CORPSMAIL_PS, CORPSMAIL_PATIENT); empty means the default text.
	BodyProfessional string
	BodyPatient      string
	// Warnings are what the edge or the domain ignored or could not use
	// without refusing the report (an optional field unreadable, the
	// patient's mailbox not that of the INS): they go to the DPI with the
	// acknowledgement and into the report's history.
	Warnings []Warning `json:"-"`
}

// Warning is something of a report the service did not use, without
// refusing the report.
type Warning struct {
	// Field names the field of the report concerned, as InvalidError.Field
	// does, for the edge to locate it in the message; empty when the edge
	// raised the warning itself (it then knows where).
	Field string
	// Msg says what was ignored and why, in French.
	Msg string
}

// documents returns the report's documents: Document, then OtherFormat.
func (r *Report) documents() []*Document {
	if r.OtherFormat == nil {
		return []*Document{&r.Document}
	}
	return []*Document{&r.Document, r.OtherFormat}
}

// Action is what a report does to its document.
type Action string

// Actions (OBX-11 F / C / D, MDM T02 / T10 / T04).
const (
	ActionNew     Action = "new"     // a new validated document
	ActionReplace Action = "replace" // a new version replacing Document.ParentID
	ActionDelete  Action = "delete"  // the document Document.ID is withdrawn
)

// Patient is the report's patient.
type Patient struct {
	Family, Given string
	BirthDate     string // YYYYMMDD
	Sex           string
	INS, INSOID   string // matricule and OID of the INS, when given
	// INSQualified is true when the identity is qualified (PID-32 VALI): only
	// then may the INS be used (X-MSS-INS, patient mailbox).
	INSQualified bool
	IPP          string // the hospital's patient id
	Address      PostalAddress
}

// DisplayBirthDate is the patient's birth date as written in French,
// DD/MM/YYYY from the YYYYMMDD of BirthDate; BirthDate as is when shorter.
func (p Patient) DisplayBirthDate() string {
	d := p.BirthDate
	if len(d) < 8 {
		return d
	}
	return d[6:8] + "/" + d[4:6] + "/" + d[0:4]
}

// PostalAddress is a postal address.
type PostalAddress = postal.PostalAddress

// Document is the report's document.
type Document struct {
	// ID is the XDS uniqueId: root, or root^extension.
	ID string
	// ParentID is the uniqueId of the document a replacement replaces.
	ParentID string
	Code     string // LOINC
	Title    string
	// Confidentiality is the code of the CDA confidentialityCode (N, R, V), for the rules.
	Confidentiality string
	CDA             []byte
	PDF             []byte // nil when the CDA embeds none
	// PDFInCDA says PDF is the one the CDA embeds (it is then not stored
	// apart from the CDA). The HL7 mapping sets it; Receive does for the
	// others.
	PDFInCDA bool `json:"-"`
	// Header is CDA's header when the caller already parsed it (the HL7
	// mapping did, with the PDF); nil makes Receive parse the CDA.
	Header *cda.Document `json:"-"`
	// sha256 is the SHA-256 of CDA, once sum computed it.
	sha256 []byte
}

// sum returns the SHA-256 of d's CDA (nil without a CDA), by which a
// document sent again is recognised.
func (d *Document) sum() []byte {
	if d.sha256 == nil && len(d.CDA) > 0 {
		s := sha256.Sum256(d.CDA)
		d.sha256 = s[:]
	}
	return d.sha256
}

// Recipient kinds.
const (
	KindProfessional = correspondents.KindProfessional
	KindOrganisation = correspondents.KindOrganisation
	KindPatient      = correspondents.KindPatient
)

// Recipient roles: where the DPI listed the recipient. Only RoleResultCopiesTo
// and RolePatient are sent to by default; the others are a fallback source
// for DPIs that do not follow the volet.
const (
	RoleResultCopiesTo = "RCT"   // PRT-4 RCT
	RolePatient        = "PAT"   // the patient (DESTMSSANTEPAT=Y)
	RoleSender         = "SB"    // PRT-4 SB
	RoleGP             = "ODRP"  // ROL médecin traitant
	RoleReferring      = "RP"    // ROL referring, PV1-8
	RoleAttending      = "AT"    // ROL attending
	RoleAdmitting      = "AD"    // ROL admitting
	RoleConsulting     = "CP"    // ROL consulting
	RoleResultsCopy    = "RT"    // ROL or OBR-28 result copies
	RolePrimaryCare    = "PD1-4" // PD1-4 primary care provider
	// RoleServed marks a recipient added to a replacement or deletion because
	// it received an earlier version of the document.
	RoleServed = "SERVED"
)

// Recipient is a correspondent the DPI listed.
type Recipient struct {
	// Role is where the DPI listed the recipient (a Role constant).
	Role string `json:"role,omitempty"`
	// Kind is professional, organisation or patient.
	Kind string `json:"kind,omitempty"`
	// NationalID is "8" + RPPS or "0" + ADELI (a correspondents.NationalID), when known.
	NationalID string `json:"national_id,omitempty"`
	// RPPS is the 11-digit RPPS number, when known.
	RPPS string `json:"rpps,omitempty"`
	// FINESS identifies an organisation recipient.
	FINESS string `json:"finess,omitempty"`
	Family string `json:"family,omitempty"`
	Given  string `json:"given,omitempty"`
	// Organisation is the organisation's name for an organisation recipient.
	Organisation string `json:"organisation,omitempty"`
	// Address is the MSSanté address the DPI gave, if any.
	Address string `json:"address,omitempty"`
	// PostalAddress is the postal address the DPI gave (PRT-14), if any.
	PostalAddress PostalAddress `json:"postal_address,omitzero"`
}

// Name is the recipient's display name.
func (r Recipient) Name() string {
	switch {
	case r.Family == "" && r.Given == "":
		return r.Organisation
	case r.Family == "":
		return r.Given
	case r.Given == "":
		return r.Family
	}
	return r.Given + " " + r.Family
}

// Report statuses.
const (
	ReportReceived = "received" // stored, recipients not yet resolved
	ReportResolved = "resolved" // deliveries created
)

// ErrNotFound is returned when a report does not exist.
var ErrNotFound = errors.New("not found")
