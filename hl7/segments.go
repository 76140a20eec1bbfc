package hl7

// Typed, read-only views of the segments and data types the intake reads.
//
// A view wraps a *Segment, which may be nil: every accessor of a nil segment
// returns the zero value, so
//
//	pid := hl7.PID{Segment: msg.Segment("PID")}
//	if pid.Segment == nil { ... }
//
// reads safely whether or not the message has the segment. Field and
// component numbers are those of HL7 v2.5 (ORU^R01) and v2.6 (MDM), which
// agree for everything read here; PRT is the v2.9 segment the ANS volet
// pre-adopts. Values are returned as received (not trimmed, not upper-cased):
// normalising them is the caller's business.

// HD is a hierarchic designator.
type HD struct {
	NamespaceID     string // HD.1
	UniversalID     string // HD.2, usually an OID
	UniversalIDType string // HD.3, usually "ISO"
}

// CE is a coded element: the CE of v2.5 or the CWE of v2.6, whose first
// three components agree. Later components (alternate code, versions,
// original text) are not read.
type CE struct {
	Identifier   string // CE.1 / CWE.1
	Text         string // CE.2 / CWE.2
	CodingSystem string // CE.3 / CWE.3 name of coding system
}

// EI is an entity identifier.
type EI struct {
	ID              string // EI.1 entity identifier
	NamespaceID     string // EI.2
	UniversalID     string // EI.3, usually an OID
	UniversalIDType string // EI.4, usually "ISO"
}

// CX is an extended composite identifier (a patient identifier).
type CX struct {
	ID                 string // CX.1
	AssigningAuthority HD     // CX.4
	TypeCode           string // CX.5 identifier type code (table 0203: INS, PI…)
}

// XPN is an extended person name.
type XPN struct {
	Family      string // XPN.1 family name (FN.1 surname)
	Given       string // XPN.2
	SecondGiven string // XPN.3 second and further given names
	Suffix      string // XPN.4
	Prefix      string // XPN.5
	TypeCode    string // XPN.7 name type code (table 0200: L legal/birth name, D display…)
}

// XCN is an extended composite ID number and name for persons.
type XCN struct {
	ID                 string // XCN.1
	Family             string // XCN.2 family name (FN.1 surname)
	Given              string // XCN.3
	SecondGiven        string // XCN.4 second and further given names
	Suffix             string // XCN.5
	Prefix             string // XCN.6
	AssigningAuthority HD     // XCN.9
	NameTypeCode       string // XCN.10
	TypeCode           string // XCN.13 identifier type code (RPPS, ADELI, IDNPS, INS…)
}

// XON is an extended composite name and identification number for organisations.
type XON struct {
	Name               string // XON.1 organization name
	AssigningAuthority HD     // XON.6
	TypeCode           string // XON.7 identifier type code (FINEG, FINEJ, UF, SVR…)
	ID                 string // XON.10 organization identifier
}

// XTN is an extended telecommunication number.
type XTN struct {
	Number        string // XTN.1 (deprecated) telephone number
	Use           string // XTN.2 telecommunication use code (table 0201: NET, WPN…)
	EquipmentType string // XTN.3 (table 0202: X.400, Internet, PH…)
	Email         string // XTN.4 communication (email) address
}

// XAD is an extended address.
type XAD struct {
	Street           string // XAD.1 street address (SAD.1 street or mailing address)
	OtherDesignation string // XAD.2
	City             string // XAD.3
	State            string // XAD.4 state or province
	PostalCode       string // XAD.5 zip or postal code
	Country          string // XAD.6
	Type             string // XAD.7 address type (table 0190: H home, BDL birth place…)
}

// PL is a person location.
type PL struct {
	PointOfCare string // PL.1
	Room        string // PL.2
	Bed         string // PL.3
	Facility    HD     // PL.4
}

// ED is encapsulated data.
type ED struct {
	Source   string // ED.1 source application (HD.1)
	Type     string // ED.2 type of data (TEXT, text, Application…)
	Subtype  string // ED.3 data subtype (XML…)
	Encoding string // ED.4 encoding (Base64, A, Hex)
	Data     string // ED.5
}

func hd(r Repetition, c int) HD {
	return HD{NamespaceID: r.Sub(c, 1), UniversalID: r.Sub(c, 2), UniversalIDType: r.Sub(c, 3)}
}

func ce(r Repetition) CE {
	return CE{Identifier: r.Comp(1), Text: r.Comp(2), CodingSystem: r.Comp(3)}
}

func ei(r Repetition) EI {
	return EI{ID: r.Comp(1), NamespaceID: r.Comp(2), UniversalID: r.Comp(3), UniversalIDType: r.Comp(4)}
}

func cx(r Repetition) CX {
	return CX{ID: r.Comp(1), AssigningAuthority: hd(r, 4), TypeCode: r.Comp(5)}
}

func xpn(r Repetition) XPN {
	return XPN{Family: r.Comp(1), Given: r.Comp(2), SecondGiven: r.Comp(3), Suffix: r.Comp(4),
		Prefix: r.Comp(5), TypeCode: r.Comp(7)}
}

func xcn(r Repetition) XCN {
	return XCN{ID: r.Comp(1), Family: r.Comp(2), Given: r.Comp(3), SecondGiven: r.Comp(4), Suffix: r.Comp(5),
		Prefix: r.Comp(6), AssigningAuthority: hd(r, 9), NameTypeCode: r.Comp(10), TypeCode: r.Comp(13)}
}

func xon(r Repetition) XON {
	return XON{Name: r.Comp(1), AssigningAuthority: hd(r, 6), TypeCode: r.Comp(7), ID: r.Comp(10)}
}

func xtn(r Repetition) XTN {
	return XTN{Number: r.Comp(1), Use: r.Comp(2), EquipmentType: r.Comp(3), Email: r.Comp(4)}
}

func xad(r Repetition) XAD {
	return XAD{Street: r.Comp(1), OtherDesignation: r.Comp(2), City: r.Comp(3), State: r.Comp(4),
		PostalCode: r.Comp(5), Country: r.Comp(6), Type: r.Comp(7)}
}

func pl(r Repetition) PL {
	return PL{PointOfCare: r.Comp(1), Room: r.Comp(2), Bed: r.Comp(3), Facility: hd(r, 4)}
}

// each converts the non-empty repetitions of f.
func each[T any](f Field, conv func(Repetition) T) []T {
	var out []T
	for _, r := range f {
		if r != nil {
			out = append(out, conv(r))
		}
	}
	return out
}

// MSH is the message header segment.
type MSH struct{ *Segment }

// SendingApplication returns MSH-3.
func (s MSH) SendingApplication() HD { return hd(s.Field(3).Rep(0), 1) }

// SendingFacility returns MSH-4.
func (s MSH) SendingFacility() HD { return hd(s.Field(4).Rep(0), 1) }

// EVN is the event type segment (MDM).
type EVN struct{ *Segment }

// RecordedDateTime returns EVN-2 as received (DTM).
func (s EVN) RecordedDateTime() string { return s.Get(2) }

// PID is the patient identification segment.
type PID struct{ *Segment }

// Identifiers returns the repetitions of PID-3 (patient identifier list).
func (s PID) Identifiers() []CX { return each(s.Field(3), cx) }

// Names returns the repetitions of PID-5 (patient name).
func (s PID) Names() []XPN { return each(s.Field(5), xpn) }

// BirthDate returns PID-7.1 (date/time of birth) as received.
func (s PID) BirthDate() string { return s.Get(7) }

// Sex returns PID-8 (administrative sex).
func (s PID) Sex() string { return s.Get(8) }

// Addresses returns the repetitions of PID-11 (patient address).
func (s PID) Addresses() []XAD { return each(s.Field(11), xad) }

// IdentityReliability returns the repetitions of PID-32 (identity
// reliability code; in France VALI for a qualified identity).
func (s PID) IdentityReliability() []string {
	return each(s.Field(32), func(r Repetition) string { return r.Comp(1) })
}

// PD1 is the patient additional demographic segment.
type PD1 struct{ *Segment }

// PrimaryCareProviders returns the repetitions of PD1-4 (patient primary
// care provider name and ID no.).
func (s PD1) PrimaryCareProviders() []XCN { return each(s.Field(4), xcn) }

// PV1 is the patient visit segment.
type PV1 struct{ *Segment }

// AssignedLocation returns PV1-3 (assigned patient location).
func (s PV1) AssignedLocation() PL { return pl(s.Field(3).Rep(0)) }

// ReferringDoctors returns the repetitions of PV1-8 (referring doctor).
func (s PV1) ReferringDoctors() []XCN { return each(s.Field(8), xcn) }

// ORC is the common order segment.
type ORC struct{ *Segment }

// OrderControl returns ORC-1 (order control: NW, RO, CA…).
func (s ORC) OrderControl() string { return s.Get(1) }

// EntererLocation returns ORC-13 (enterer's location).
func (s ORC) EntererLocation() PL { return pl(s.Field(13).Rep(0)) }

// EnteringOrganization returns ORC-17 (entering organization).
func (s ORC) EnteringOrganization() CE { return ce(s.Field(17).Rep(0)) }

// OBR is the observation request segment.
type OBR struct{ *Segment }

// UniversalServiceID returns OBR-4 (universal service identifier; for the
// volet, the document type).
func (s OBR) UniversalServiceID() CE { return ce(s.Field(4).Rep(0)) }

// ResultStatus returns OBR-25 (result status, table 0123: F final, C corrected…).
func (s OBR) ResultStatus() string { return s.Get(25) }

// ResultCopiesTo returns the repetitions of OBR-28 (result copies to).
func (s OBR) ResultCopiesTo() []XCN { return each(s.Field(28), xcn) }

// OBX is the observation segment.
type OBX struct{ *Segment }

// ValueType returns OBX-2 (value type: ED, CE, CWE, TX…).
func (s OBX) ValueType() string { return s.Get(2) }

// Identifier returns OBX-3 (observation identifier).
func (s OBX) Identifier() CE { return ce(s.Field(3).Rep(0)) }

// Value returns OBX-5 (observation value) unread: its data type is OBX-2.
func (s OBX) Value() Field { return s.Field(5) }

// CodedValue returns the first repetition of OBX-5 read as a CE or CWE.
func (s OBX) CodedValue() CE { return ce(s.Field(5).Rep(0)) }

// EncapsulatedData returns the first repetition of OBX-5 read as an ED.
func (s OBX) EncapsulatedData() ED {
	r := s.Field(5).Rep(0)
	return ED{Source: r.Comp(1), Type: r.Comp(2), Subtype: r.Comp(3), Encoding: r.Comp(4), Data: r.Comp(5)}
}

// Status returns OBX-11 (observation result status, table 0085: F, C, D…).
func (s OBX) Status() string { return s.Get(11) }

// TXA is the transcription document header segment (MDM).
type TXA struct{ *Segment }

// DocumentType returns TXA-2 (document type; an IS, often sent as a CWE).
func (s TXA) DocumentType() CE { return ce(s.Field(2).Rep(0)) }

// UniqueDocumentNumber returns TXA-12 (unique document number).
func (s TXA) UniqueDocumentNumber() EI { return ei(s.Field(12).Rep(0)) }

// ParentDocumentNumber returns TXA-13 (parent document number).
func (s TXA) ParentDocumentNumber() EI { return ei(s.Field(13).Rep(0)) }

// CompletionStatus returns TXA-17 (document completion status, table 0271:
// AU authenticated, LA legally authenticated…).
func (s TXA) CompletionStatus() string { return s.Get(17) }

// PRT is the participation information segment (v2.9, pre-adopted by the volet).
type PRT struct{ *Segment }

// Participation returns PRT-4 (participation: RCT, SB, REPLY…).
func (s PRT) Participation() CE { return ce(s.Field(4).Rep(0)) }

// Person returns the first repetition of PRT-5 (participation person).
func (s PRT) Person() XCN { return xcn(s.Field(5).Rep(0)) }

// Organisation returns the first repetition of PRT-8 (participation organization).
func (s PRT) Organisation() XON { return xon(s.Field(8).Rep(0)) }

// Addresses returns the repetitions of PRT-14 (participation address).
func (s PRT) Addresses() []XAD { return each(s.Field(14), xad) }

// Telecoms returns the repetitions of PRT-15 (participation telecommunication address).
func (s PRT) Telecoms() []XTN { return each(s.Field(15), xtn) }

// ROL is the role segment.
type ROL struct{ *Segment }

// ActionCode returns ROL-2 (action code, table 0287: AD, DE, UP, UC).
func (s ROL) ActionCode() string { return s.Get(2) }

// Role returns ROL-3 (role-ROL; in France ODRP, RP, AT, AD, CP, RT…).
func (s ROL) Role() CE { return ce(s.Field(3).Rep(0)) }

// Persons returns the repetitions of ROL-4 (role person).
func (s ROL) Persons() []XCN { return each(s.Field(4), xcn) }

// Telecoms returns the repetitions of ROL-12 (phone, and email addresses).
func (s ROL) Telecoms() []XTN { return each(s.Field(12), xtn) }

// NTE is the notes and comments segment.
type NTE struct{ *Segment }

// Comments returns the repetitions of NTE-3 (comment).
func (s NTE) Comments() []string {
	return each(s.Field(3), func(r Repetition) string { return r.Comp(1) })
}

// CommentType returns NTE-4 (comment type; the volet's FIN: the patient may
// not reply).
func (s NTE) CommentType() CE { return ce(s.Field(4).Rep(0)) }
