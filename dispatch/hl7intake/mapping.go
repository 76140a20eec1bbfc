package hl7intake

import (
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/hl7"
)

// This file maps ORU^R01 (v2.5) and MDM^T02/T10/T04 (v2.6) messages of the
// ANS volet "Transmission d'un document CDA-R2 en HL7v2" (CISIS_CDA_HL7_V2)
// onto a dispatch.Report. It checks what only the message can tell (types,
// statuses, consistency of ORC-1, OBX-11, TXA with the event and the CDA) and
// maps the rest faithfully: the rules on the report as a whole (flag matrix,
// qualified INS for the patient mailbox, parent of a replacement) are the
// domain's, and locate turns its errors back into HL7 locations.

// Coding system of the volet's metadata OBX (OBX-3.3).
const metaDMPMSS = "MetaDMPMSS"

// Metadata codes of the table MetaDMPMSS that are not flags.
const (
	bodyProfessional = "CORPSMAIL_PS"
	bodyPatient      = "CORPSMAIL_PATIENT"
)

// flagFields maps the MetaDMPMSS flag codes to the field they set.
var flagFields = map[string]func(*dispatch.Flags) *bool{
	"MASQUE_PS":            func(f *dispatch.Flags) *bool { return &f.MaskedForPros },
	"INVISIBLE_PATIENT":    func(f *dispatch.Flags) *bool { return &f.InvisiblePatient },
	"INVISIBLE_REP_LEGAUX": func(f *dispatch.Flags) *bool { return &f.InvisibleGuardians },
	"CONNEXION_SECRETE":    func(f *dispatch.Flags) *bool { return &f.SecretConnection },
	"MODIF_CONF_CODE":      func(f *dispatch.Flags) *bool { return &f.ConfCodeChanged },
	"DESTDMP":              func(f *dispatch.Flags) *bool { return &f.ToDMP },
	"DESTMSSANTEPS":        func(f *dispatch.Flags) *bool { return &f.ToProfessionals },
	"DESTMSSANTEPAT":       func(f *dispatch.Flags) *bool { return &f.ToPatient },
	"ACK_RECEPTION":        func(f *dispatch.Flags) *bool { return &f.DeliveryAck },
	"ACK_LECTURE_MSS":      func(f *dispatch.Flags) *bool { return &f.ReadAck },
}

// flagCode returns the canonical code of an OBX-3.1 value: some examples of
// the volet spell ACK_LECTURE_MSS ACK_LECTURE.
func flagCode(code string) string {
	code = strings.ToUpper(strings.TrimSpace(code))
	if code == "ACK_LECTURE" {
		return "ACK_LECTURE_MSS"
	}
	return code
}

// INS authority OIDs (PID-3 with identifier type INS).
var insOIDs = []string{cda.OIDINSNIR, cda.OIDINSNIA, cda.OIDINSNIRTest, cda.OIDINSNIRDemo}

// action is what a message asks, and the values its fields must then hold.
type action struct {
	action    dispatch.Action
	obxStatus string // OBX-11 of the document
	orcCtrl   string // ORC-1
	what      string // for messages
}

// Actions by OBX-11 (ORU) and MDM event (volet, "Evènements déclenchants" and ORC-1).
var (
	actNew     = action{dispatch.ActionNew, "F", "NW", "a new document"}
	actReplace = action{dispatch.ActionReplace, "C", "RO", "a replacement"}
	actDelete  = action{dispatch.ActionDelete, "D", "CA", "a deletion"}
)

var (
	actionsByStatus = map[string]action{"F": actNew, "C": actReplace, "D": actDelete}
	actionsByEvent  = map[string]action{"T02": actNew, "T10": actReplace, "T04": actDelete}
)

// seg is a segment with its occurrence among the segments of its name (1-based).
type seg struct {
	*hl7.Segment
	seq int
}

// mapper holds the state of one toReport call.
type mapper struct {
	msg     *hl7.Message
	mdm     bool
	msgType string // e.g. "ORU^R01"
	r       dispatch.Report
}

// fail returns an AE rejection located at field of s.
func fail(s seg, name string, field, code int, format string, args ...any) *rejection {
	return &rejection{code: hl7.AckError, detail: hl7.ErrDetail{Segment: name, Sequence: s.seq, Field: field,
		Code: code, Severity: "E", Msg: fmt.Sprintf(format, args...)}}
}

// toReport maps an ORU^R01 or MDM^T02/T10/T04 to a dispatch.Report, or
// returns a *rejection.
func toReport(msg *hl7.Message) (dispatch.Report, error) {
	code, event, _ := msg.Type()
	m := &mapper{msg: msg, mdm: code == "MDM"}
	switch {
	case code == "ORU" && event == "R01", m.mdm && actionsByEvent[event].action != "":
	case code == "ORU" || code == "MDM":
		return dispatch.Report{}, reject(hl7.AckReject, "MSH", 9, hl7.CodeUnsupportedEvent,
			"MSH-9 event %s^%s is not supported: send ORU^R01, MDM^T02, MDM^T10 or MDM^T04", code, event)
	default:
		return dispatch.Report{}, reject(hl7.AckReject, "MSH", 9, hl7.CodeUnsupportedMessageType,
			"MSH-9 message type %s^%s is not supported: send ORU^R01 or MDM^T02/T10/T04", code, event)
	}
	m.msgType = code + "^" + event
	if msg.ControlID() == "" {
		return dispatch.Report{}, reject(hl7.AckReject, "MSH", 10, hl7.CodeRequiredField, "MSH-10 (message control id) is empty")
	}
	for _, step := range []func() error{m.patient, m.document, m.flags, m.participants} {
		if err := step(); err != nil {
			return dispatch.Report{}, err
		}
	}
	m.fallbackCorrespondents()
	m.service()
	return m.r, nil
}

// first returns the first segment named name.
func (m *mapper) first(name string) seg {
	return seg{m.msg.Segment(name), 1}
}

// all returns the segments named name with their occurrences.
func (m *mapper) all(name string) []seg {
	var out []seg
	for i, s := range m.msg.SegmentsNamed(name) {
		out = append(out, seg{s, i + 1})
	}
	return out
}

// before returns the last segment named name that precedes target in the
// message, else the first one.
func (m *mapper) before(name string, target *hl7.Segment) seg {
	if target == nil {
		return m.first(name)
	}
	var found seg
	n := 0
	for _, s := range m.msg.Segments {
		if s == target {
			break
		}
		if s != nil && s.Name == name {
			n++
			found = seg{s, n}
		}
	}
	if found.Segment == nil {
		return m.first(name)
	}
	return found
}

func norm(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// patient maps PID.
func (m *mapper) patient() error {
	s := m.first("PID")
	if s.Segment == nil {
		return reject(hl7.AckError, "PID", 0, hl7.CodeSegmentSequence, "the PID segment is missing")
	}
	pid := hl7.PID{Segment: s.Segment}
	p := &m.r.Patient
	for _, id := range pid.Identifiers() {
		switch norm(id.TypeCode) {
		case "INS":
			if oid := authorityOID(id.AssigningAuthority, insOIDs); oid != "" && p.INS == "" {
				p.INS, p.INSOID = strings.TrimSpace(id.ID), oid
			}
		case "PI":
			if p.IPP == "" {
				p.IPP = strings.TrimSpace(id.ID)
			}
		}
	}
	names := pid.Names()
	if i := slices.IndexFunc(names, func(n hl7.XPN) bool { return norm(n.TypeCode) == "L" }); i > 0 {
		names = names[i:]
	}
	if len(names) > 0 {
		p.Family, p.Given = strings.TrimSpace(names[0].Family), strings.TrimSpace(names[0].Given)
	}
	p.BirthDate = strings.TrimSpace(pid.BirthDate())
	if len(p.BirthDate) > 8 {
		p.BirthDate = p.BirthDate[:8]
	}
	p.Sex = strings.TrimSpace(pid.Sex())
	p.Address = postalAddress(pid.Addresses())
	p.INSQualified = p.INS != "" && slices.ContainsFunc(pid.IdentityReliability(), func(v string) bool { return norm(v) == "VALI" })
	return nil
}

// authorityOID returns the OID of a, its universal id or (as some DPIs send
// it) its namespace id, when it is one of oids.
func authorityOID(a hl7.HD, oids []string) string {
	for _, v := range []string{a.UniversalID, a.NamespaceID} {
		if v = strings.TrimSpace(v); slices.Contains(oids, v) {
			return v
		}
	}
	return ""
}

// postalAddress returns the home address (XAD.7 H), else the first one that
// is not the birth place (BDL).
func postalAddress(addrs []hl7.XAD) dispatch.PostalAddress {
	i := slices.IndexFunc(addrs, func(a hl7.XAD) bool { return norm(a.Type) == "H" })
	if i < 0 {
		i = slices.IndexFunc(addrs, func(a hl7.XAD) bool { return norm(a.Type) != "BDL" })
	}
	if i < 0 {
		return dispatch.PostalAddress{}
	}
	a := addrs[i]
	var pa dispatch.PostalAddress
	for _, l := range []string{a.Street, a.OtherDesignation} {
		if l = strings.TrimSpace(l); l != "" {
			pa.Lines = append(pa.Lines, l)
		}
	}
	pa.PostalCode, pa.City, pa.Country = strings.TrimSpace(a.PostalCode), strings.TrimSpace(a.City), strings.TrimSpace(a.Country)
	return pa
}

// isMetadata reports whether an OBX-3 is a code of the table MetaDMPMSS
// (some DPIs leave out the coding system of the flags).
func isMetadata(id hl7.CE) bool {
	if strings.EqualFold(strings.TrimSpace(id.CodingSystem), metaDMPMSS) {
		return true
	}
	code := flagCode(id.Identifier)
	return flagFields[code] != nil || code == bodyProfessional || code == bodyPatient
}

// documentOBX returns the OBX that carries the document: the first of type
// ED that is not a MetaDMPMSS metadata (CORPSMAIL_*); seq is 0 when there is none.
func documentOBX(msg *hl7.Message) (hl7.OBX, int) {
	for i, s := range msg.SegmentsNamed("OBX") {
		obx := hl7.OBX{Segment: s}
		if norm(obx.ValueType()) == "ED" && !isMetadata(obx.Identifier()) {
			return obx, i + 1
		}
	}
	return hl7.OBX{}, 0
}

// document checks what the message asks and that the document is validated,
// then maps the document.
func (m *mapper) document() error {
	obx, seq := documentOBX(m.msg)
	at := seg{obx.Segment, seq}
	act, err := m.action(obx, at)
	if err != nil {
		return err
	}
	m.r.Action = act.action
	if err := m.orderControl(obx, act); err != nil {
		return err
	}
	txa, err := m.validated(obx, act)
	if err != nil {
		return err
	}
	if seq != 0 {
		if err := m.content(obx, at, act); err != nil {
			return err
		}
	}
	if m.mdm {
		return m.documentIDs(txa, act)
	}
	return nil
}

// action returns what the message asks: by the event of an MDM, which OBX-11
// of the document must agree with, or by OBX-11 of an ORU.
func (m *mapper) action(obx hl7.OBX, at seg) (action, error) {
	var act action
	if m.mdm {
		_, event, _ := m.msg.Type()
		act = actionsByEvent[event]
	}
	if at.seq == 0 {
		if m.mdm && act == actDelete {
			return act, nil // a deletion may name its document by TXA-12 alone
		}
		return act, reject(hl7.AckError, "OBX", 5, hl7.CodeRequiredField,
			"no OBX of type ED carries the CDA document (OBX-5 ^text^XML^Base64^<document>)")
	}
	status := norm(obx.Status())
	byStatus, ok := actionsByStatus[status]
	switch {
	case status == "":
		return act, fail(at, "OBX", 11, hl7.CodeRequiredField,
			"OBX-11 (observation result status) of the document is empty: expected F (new), C (replacement) or D (deletion)")
	case !ok:
		return act, fail(at, "OBX", 11, hl7.CodeTableValue,
			"OBX-11 (observation result status) of the document is %q: expected F (new), C (replacement) or D (deletion)", obx.Status())
	case m.mdm && byStatus != act:
		return act, fail(at, "OBX", 11, hl7.CodeTableValue, "OBX-11 (observation result status) is %q but the event %s is %s: expected %s",
			obx.Status(), m.msgType, act.what, act.obxStatus)
	}
	return byStatus, nil
}

// orderControl checks that ORC-1 (of the order of the document) agrees with
// the action: NW, RO or CA.
func (m *mapper) orderControl(obx hl7.OBX, act action) error {
	s := m.before("ORC", obx.Segment)
	if s.Segment == nil {
		return reject(hl7.AckError, "ORC", 0, hl7.CodeSegmentSequence, "the ORC segment is missing: ORC-1 must say %s for %s", act.orcCtrl, act.what)
	}
	ctrl := hl7.ORC{Segment: s.Segment}.OrderControl()
	if norm(ctrl) == act.orcCtrl {
		return nil
	}
	by := "OBX-11 " + act.obxStatus
	if m.mdm {
		by = "the event " + m.msgType
	}
	return fail(s, "ORC", 1, hl7.CodeTableValue, "ORC-1 (order control) is %q but %s asks for %s: expected %s", ctrl, by, act.what, act.orcCtrl)
}

// validated checks that the document is validated: TXA-17 AU or LA (MDM),
// OBR-25 F, or C for a replacement (ORU). It returns the TXA of an MDM.
func (m *mapper) validated(obx hl7.OBX, act action) (hl7.TXA, error) {
	if !m.mdm {
		s := m.before("OBR", obx.Segment)
		if s.Segment == nil {
			return hl7.TXA{}, reject(hl7.AckError, "OBR", 0, hl7.CodeSegmentSequence, "the OBR segment is missing")
		}
		switch st := norm(hl7.OBR{Segment: s.Segment}.ResultStatus()); {
		case st == "F", st == "C" && act == actReplace:
			return hl7.TXA{}, nil
		case st == "":
			return hl7.TXA{}, fail(s, "OBR", 25, hl7.CodeRequiredField, "OBR-25 (result status) is empty: expected F (final)")
		default:
			return hl7.TXA{}, fail(s, "OBR", 25, hl7.CodeTableValue, "OBR-25 (result status) is %q: expected F (final), or C for a replacement", st)
		}
	}
	s := m.first("TXA")
	if s.Segment == nil {
		return hl7.TXA{}, reject(hl7.AckError, "TXA", 0, hl7.CodeSegmentSequence, "the TXA segment is missing")
	}
	txa := hl7.TXA{Segment: s.Segment}
	switch norm(txa.CompletionStatus()) {
	case "AU", "LA":
		return txa, nil
	case "":
		return txa, fail(s, "TXA", 17, hl7.CodeRequiredField, "TXA-17 (document completion status) is empty: expected AU (validated) or LA")
	}
	return txa, fail(s, "TXA", 17, hl7.CodeTableValue,
		"TXA-17 (document completion status) is %q: only validated documents (AU or LA) are sent", txa.CompletionStatus())
}

// content decodes the CDA of the document OBX and maps what it says: the
// document, the parent of a replacement, the author (unless a PRT SB names
// one); the INS of its recordTarget must be that of PID-3.
func (m *mapper) content(obx hl7.OBX, at seg, act action) error {
	doc, header, err := decodeDocument(obx, at, act == actDelete && m.mdm)
	if err != nil || header == nil {
		return err
	}
	p := m.r.Patient
	if ins, oid, ok := header.Patient.INS(); ok && p.INS != "" && (ins != p.INS || oid != p.INSOID) {
		return fail(m.first("PID"), "PID", 3, hl7.CodeDataType, "PID-3 INS %s (%s) is not the INS of the CDA recordTarget, %s (%s)",
			p.INS, p.INSOID, ins, oid)
	}
	if act == actReplace && !header.ParentID.IsZero() {
		doc.ParentID = uniqueID(header.ParentID)
	}
	m.r.Document = doc
	m.r.Author = cdaAuthor(header.Author)
	return nil
}

// documentIDs checks TXA-12 and TXA-13 against the CDA, and takes them when
// the message carries no CDA.
func (m *mapper) documentIDs(txa hl7.TXA, act action) error {
	s := seg{txa.Segment, 1}
	doc := &m.r.Document
	if id := eiUniqueID(txa.UniqueDocumentNumber()); id != "" {
		if doc.ID != "" && doc.ID != id {
			return fail(s, "TXA", 12, hl7.CodeDataType, "TXA-12 (unique document number) %q is not the CDA ClinicalDocument/id %q", id, doc.ID)
		}
		doc.ID = id
	}
	if doc.ID == "" {
		return fail(s, "TXA", 12, hl7.CodeRequiredField, "TXA-12 (unique document number) is empty and the message carries no CDA")
	}
	if doc.Code == "" { // no CDA: a deletion named by TXA-12, of type TXA-2 (else OBR-4)
		dt := txa.DocumentType()
		if strings.TrimSpace(dt.Identifier) == "" {
			dt = hl7.OBR{Segment: m.msg.Segment("OBR")}.UniversalServiceID()
		}
		doc.Code, doc.Title = strings.TrimSpace(dt.Identifier), strings.TrimSpace(dt.Text)
	}
	if act != actReplace {
		return nil
	}
	if id := eiUniqueID(txa.ParentDocumentNumber()); id != "" {
		if doc.ParentID != "" && doc.ParentID != id {
			return fail(s, "TXA", 13, hl7.CodeDataType, "TXA-13 (parent document number) %q is not the CDA relatedDocument/parentDocument/id %q", id, doc.ParentID)
		}
		doc.ParentID = id
	}
	return nil
}

// eiUniqueID returns the XDS uniqueId a TXA-12/13 names: per the volet,
// extension^^root^ISO (root^extension) or root alone.
func eiUniqueID(e hl7.EI) string {
	id, root := strings.TrimSpace(e.ID), strings.TrimSpace(e.UniversalID)
	switch {
	case id == "":
		return ""
	case root != "":
		return root + "^" + id
	}
	return id
}

// uniqueID formats an instance identifier as an XDS uniqueId, like cda.Document.UniqueID.
func uniqueID(ii cda.II) string {
	if ii.Extension == "" {
		return ii.Root
	}
	return ii.Root + "^" + ii.Extension
}

// decodeDocument reads the CDA of the document OBX. With optional, an
// empty OBX-5.5 means no document.
func decodeDocument(obx hl7.OBX, at seg, optional bool) (dispatch.Document, *cda.Document, error) {
	ed := obx.EncapsulatedData()
	if enc := strings.TrimSpace(ed.Encoding); !strings.EqualFold(enc, "Base64") {
		return dispatch.Document{}, nil, fail(at, "OBX", 5, hl7.CodeDataType, "OBX-5.4 (encoding) of the document is %q: expected Base64", enc)
	}
	if sub := strings.TrimSpace(ed.Subtype); !strings.EqualFold(sub, "XML") {
		return dispatch.Document{}, nil, fail(at, "OBX", 5, hl7.CodeDataType, "OBX-5.3 (data subtype) of the document is %q: expected XML (a CDA R2 document)", sub)
	}
	data, err := cda.DecodeBase64([]byte(ed.Data))
	switch {
	case err != nil:
		return dispatch.Document{}, nil, fail(at, "OBX", 5, hl7.CodeDataType, "OBX-5.5 (data) of the document is not base64: %v", err)
	case len(data) == 0 && optional:
		return dispatch.Document{}, nil, nil
	case len(data) == 0:
		return dispatch.Document{}, nil, fail(at, "OBX", 5, hl7.CodeRequiredField, "OBX-5.5 (data) of the document is empty")
	}
	tree, err := cda.Read(data)
	var header *cda.Document
	if err == nil {
		header, err = tree.Header()
	}
	if err != nil {
		return dispatch.Document{}, nil, fail(at, "OBX", 5, hl7.CodeDataType, "OBX-5.5 is not a CDA R2 document: %v", err)
	}
	pdf, err := tree.PDF()
	if err != nil && !errors.Is(err, cda.ErrNoPDF) {
		return dispatch.Document{}, nil, fail(at, "OBX", 5, hl7.CodeDataType, "the PDF embedded in the CDA cannot be read: %v", err)
	}
	id := obx.Identifier()
	doc := dispatch.Document{ID: header.UniqueID(), Code: header.Code.Code, Title: header.Title,
		Confidentiality: header.Confidentiality.Code, CDA: data, PDF: pdf, PDFInCDA: pdf != nil, Header: header}
	if doc.Code == "" {
		doc.Code = strings.TrimSpace(id.Identifier)
	}
	if doc.Title == "" {
		doc.Title = strings.TrimSpace(id.Text)
	}
	return doc, header, nil
}

// cdaAuthor returns the first author of the CDA as a participant.
func cdaAuthor(a cda.Author) dispatch.Recipient {
	rc := dispatch.Recipient{Family: a.Family, Given: a.Given, Organisation: a.Organization.Name}
	if a.ID.Root == cda.OIDRPPS {
		rc.NationalID, rc.RPPS = nationalID(a.ID.Extension)
	}
	if a.Organization.ID.Root == cda.OIDFINESS {
		rc.FINESS = finess(a.Organization.ID.Extension)
	}
	switch {
	case rc.NationalID != "" || rc.Family != "" || rc.Given != "":
		rc.Kind = dispatch.KindProfessional
	case rc.Organisation != "" || rc.FINESS != "":
		rc.Kind = dispatch.KindOrganisation
	default:
		return dispatch.Recipient{}
	}
	return rc
}

// nationalID returns the national id of a professional and its RPPS: the
// national id is "8" + RPPS (12 digits) or "0" + ADELI.
func nationalID(id string) (national, rpps string) {
	id = strings.TrimSpace(id)
	if len(id) == 12 && id[0] == '8' && digits(id) {
		return id, id[1:]
	}
	return id, ""
}

// finess returns the FINESS number of an organisation id: the national
// structure id "1" + FINESS (10 digits) or the FINESS itself.
func finess(id string) string {
	id = strings.TrimSpace(id)
	if len(id) == 10 && id[0] == '1' && digits(id) {
		return id[1:]
	}
	return id
}

func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// flags maps the MetaDMPMSS OBX: flags and email bodies.
func (m *mapper) flags() error {
	f := dispatch.Flags{Present: true}
	seen := map[string]bool{}
	for _, s := range m.all("OBX") {
		obx := hl7.OBX{Segment: s.Segment}
		id := obx.Identifier()
		if !isMetadata(id) {
			continue
		}
		code := flagCode(id.Identifier)
		switch code {
		case bodyProfessional, bodyPatient:
			if seen[code] {
				return fail(s, "OBX", 3, hl7.CodeSegmentSequence, "a second OBX %s: the volet allows one", code)
			}
			seen[code] = true
			text, err := bodyText(obx, s, code, m.msg.Charset)
			if err != nil {
				return err
			}
			if code == bodyProfessional {
				m.r.BodyProfessional = text
			} else {
				m.r.BodyPatient = text
			}
			continue
		}
		field := flagFields[code]
		if field == nil {
			continue // a metadata of a later version of the volet
		}
		v := obx.CodedValue().Identifier
		var on bool
		switch norm(v) {
		case "Y":
			on = true
		case "N":
		case "":
			return fail(s, "OBX", 5, hl7.CodeRequiredField, "OBX-5 (value) of %s is empty: expected Y or N", code)
		default:
			return fail(s, "OBX", 5, hl7.CodeTableValue, "OBX-5 (value) of %s is %q: expected Y or N", code, v)
		}
		if seen[code] && *field(&f) != on {
			return fail(s, "OBX", 5, hl7.CodeTableValue, "%s is given twice, Y and N", code)
		}
		seen[code] = true
		*field(&f) = on
	}
	m.r.Flags = dispatch.DefaultFlags
	delete(seen, bodyProfessional)
	delete(seen, bodyPatient)
	if len(seen) > 0 {
		m.r.Flags = f
	}
	return nil
}

// bodyText decodes the text of a CORPSMAIL_* OBX: ED ^TEXT^^Base64^<text>
// per the volet (also A or Hex encodings, and TX/FT/ST values). The bytes
// are UTF-8; when they are not valid UTF-8, they are ISO-8859-15 if the
// message says so (MSH-18 8859/15), else ISO-8859-1.
func bodyText(obx hl7.OBX, at seg, code, charset string) (string, error) {
	var b []byte
	switch vt := norm(obx.ValueType()); vt {
	case "ED":
		ed := obx.EncapsulatedData()
		var err error
		switch enc := norm(ed.Encoding); enc {
		case "BASE64":
			b, err = cda.DecodeBase64([]byte(ed.Data))
		case "HEX":
			b, err = hex.DecodeString(strings.TrimSpace(ed.Data))
		case "A", "":
			b = []byte(ed.Data)
		default:
			return "", fail(at, "OBX", 5, hl7.CodeDataType, "OBX-5.4 (encoding) of %s is %q: expected Base64", code, ed.Encoding)
		}
		if err != nil {
			return "", fail(at, "OBX", 5, hl7.CodeDataType, "OBX-5.5 (data) of %s is not %s: %v", code, ed.Encoding, err)
		}
	case "TX", "FT", "ST":
		var lines []string
		for _, r := range obx.Value() {
			lines = append(lines, r.Comp(1))
		}
		b = []byte(strings.Join(lines, "\n"))
	default:
		return "", fail(at, "OBX", 2, hl7.CodeDataType, "OBX-2 (value type) of %s is %q: expected ED", code, obx.ValueType())
	}
	if utf8.Valid(b) {
		return string(b), nil
	}
	cm := charmap.ISO8859_1
	if strings.TrimSpace(charset) == "8859/15" {
		cm = charmap.ISO8859_15
	}
	text, err := cm.NewDecoder().Bytes(b)
	if err != nil {
		return "", fail(at, "OBX", 5, hl7.CodeDataType, "OBX-5.5 (data) of %s is not text: %v", code, err)
	}
	return string(text), nil
}

// participants maps the PRT segments: RCT recipients, SB author, REPLY address.
func (m *mapper) participants() error {
	for _, s := range m.all("PRT") {
		prt := hl7.PRT{Segment: s.Segment}
		switch norm(prt.Participation().Identifier) {
		case "RCT":
			rc := participant(prt)
			if rc.Kind == "" {
				return fail(s, "PRT", 5, hl7.CodeRequiredField,
					"PRT %d (RCT) has neither a person (PRT-5), an organisation (PRT-8) nor an MSSanté address (PRT-15 ^NET^X.400^address)", s.seq)
			}
			rc.Role = dispatch.RoleResultCopiesTo
			if rc.Kind == dispatch.KindPatient {
				rc.Role = dispatch.RolePatient
			}
			if !slices.ContainsFunc(m.r.Recipients, func(o dispatch.Recipient) bool { return reflect.DeepEqual(o, rc) }) {
				m.r.Recipients = append(m.r.Recipients, rc)
			}
		case "SB":
			if m.r.Author.Role == dispatch.RoleSender {
				continue // the first sender is the author
			}
			if rc := participant(prt); rc.Kind != "" && rc.Kind != dispatch.KindPatient {
				rc.Role = dispatch.RoleSender
				m.r.Author = rc
			}
		case "REPLY":
			if m.r.ReplyTo != "" {
				continue
			}
			if m.r.ReplyTo = emailOf(prt.Telecoms()); m.r.ReplyTo == "" {
				return fail(s, "PRT", 15, hl7.CodeRequiredField, "PRT %d (REPLY) has no address in PRT-15 (^NET^X.400^address)", s.seq)
			}
		}
	}
	return nil
}

// participant maps a PRT: a professional (PRT-5), the patient (PRT-5 with an
// INS, or an address at patient.mssante.fr), else an organisation (PRT-8, or
// an address alone: a service's or an application's mailbox, PRT-10). Kind
// is empty when it names no one.
func participant(prt hl7.PRT) dispatch.Recipient {
	person, org := prt.Person(), prt.Organisation()
	rc := dispatch.Recipient{Address: emailOf(prt.Telecoms()), PostalAddress: postalAddress(prt.Addresses())}
	rc.Family, rc.Given = strings.TrimSpace(person.Family), strings.TrimSpace(person.Given)
	rc.Organisation = strings.TrimSpace(org.Name)
	if isFINESS(org) {
		rc.FINESS = finess(org.ID)
	}
	if norm(person.TypeCode) == "INS" || authorityOID(person.AssigningAuthority, insOIDs) != "" ||
		strings.HasSuffix(rc.Address, "@"+correspondents.PatientMailDomain) {
		return dispatch.Recipient{Kind: dispatch.KindPatient, Family: rc.Family, Given: rc.Given, Address: rc.Address}
	}
	rc.NationalID, rc.RPPS = professionalID(person)
	switch {
	case rc.NationalID != "" || rc.Family != "" || rc.Given != "":
		rc.Kind = dispatch.KindProfessional
	case rc.Organisation != "" || rc.FINESS != "" || rc.Address != "":
		// An organisation, a service, or an application mailbox (PRT-10).
		rc.Kind = dispatch.KindOrganisation
	}
	return rc
}

// isFINESS reports whether an XON is identified by a FINESS: XON.7 FINEG or
// FINEJ, or no XON.7 and XON.6 the OID of the national structure ids (a UF
// or a service, XON.7 UF or SVR, has its own number in XON.10).
func isFINESS(o hl7.XON) bool {
	switch norm(o.TypeCode) {
	case "FINEG", "FINEJ":
		return o.ID != ""
	case "":
		return o.ID != "" && authorityOID(o.AssigningAuthority, []string{cda.OIDFINESS}) != ""
	}
	return false
}

// professionalID returns the national id and RPPS of a person identified by
// the national directory of professionals (XCN.9 1.2.250.1.71.4.2.1 or
// XCN.13 RPPS, ADELI or IDNPS); other ids (local staff ids) are not kept. An
// RPPS (11 digits) or ADELI (9 digits) given without its prefix gets it.
func professionalID(x hl7.XCN) (national, rpps string) {
	id, typ := strings.TrimSpace(x.ID), norm(x.TypeCode)
	directory := authorityOID(x.AssigningAuthority, []string{cda.OIDRPPS}) != "" ||
		strings.EqualFold(strings.ReplaceAll(x.AssigningAuthority.NamespaceID, " ", ""), "ASIP-SANTE-PS")
	known := directory || typ == "RPPS" || typ == "ADELI" || typ == "IDNPS"
	switch {
	case !known || id == "":
		return "", ""
	case len(id) == 11 && digits(id) && typ != "ADELI":
		return "8" + id, id
	case len(id) == 9 && digits(id) && typ == "ADELI":
		return "0" + id, ""
	}
	return nationalID(id)
}

// emailOf returns the first email address of telecoms, lower-cased:
// ^NET^X.400^address (or ^^X.400^, ^NET^Internet^).
func emailOf(telecoms []hl7.XTN) string {
	for _, t := range telecoms {
		addr := strings.ToLower(strings.TrimSpace(t.Email))
		if addr == "" {
			continue
		}
		switch norm(t.EquipmentType) {
		case "X.400", "INTERNET":
			return addr
		}
		if norm(t.Use) == "NET" {
			return addr
		}
	}
	return ""
}

// fallbackCorrespondents maps the correspondents of DPIs that do not follow
// the volet: ROL, PV1-8, OBR-28 and PD1-4, each with its role; the domain
// decides whether to send to them. Within a role, a professional listed
// twice (same national id) is kept once.
func (m *mapper) fallbackCorrespondents() {
	rolesByCode := map[string]string{"ODRP": dispatch.RoleGP, "RP": dispatch.RoleReferring, "AT": dispatch.RoleAttending,
		"AD": dispatch.RoleAdmitting, "CP": dispatch.RoleConsulting, "RT": dispatch.RoleResultsCopy}
	add := func(role string, persons []hl7.XCN, address string) {
		for _, x := range persons {
			rc := dispatch.Recipient{Role: role, Kind: dispatch.KindProfessional,
				Family: strings.TrimSpace(x.Family), Given: strings.TrimSpace(x.Given)}
			rc.NationalID, rc.RPPS = professionalID(x)
			if len(persons) == 1 {
				rc.Address = address
			}
			if rc.NationalID == "" && rc.Family == "" && rc.Given == "" {
				continue
			}
			m.addFallback(rc)
		}
	}
	for _, s := range m.all("ROL") {
		rol := hl7.ROL{Segment: s.Segment}
		role := rolesByCode[norm(rol.Role().Identifier)]
		if role == "" || norm(rol.ActionCode()) == "DE" {
			continue
		}
		add(role, rol.Persons(), emailOf(rol.Telecoms()))
	}
	add(dispatch.RoleReferring, hl7.PV1{Segment: m.msg.Segment("PV1")}.ReferringDoctors(), "")
	for _, s := range m.all("OBR") {
		add(dispatch.RoleResultsCopy, hl7.OBR{Segment: s.Segment}.ResultCopiesTo(), "")
	}
	add(dispatch.RolePrimaryCare, hl7.PD1{Segment: m.msg.Segment("PD1")}.PrimaryCareProviders(), "")
}

// addFallback appends rc, or completes the recipient of the same role that
// is the same professional: same national id, or same name when one of them
// has no national id.
func (m *mapper) addFallback(rc dispatch.Recipient) {
	for i, o := range m.r.Recipients {
		sameName := o.Family != "" && strings.EqualFold(o.Family, rc.Family) && strings.EqualFold(o.Given, rc.Given)
		same := o.Role == rc.Role && (rc.NationalID != "" && o.NationalID == rc.NationalID ||
			(o.NationalID == "" || rc.NationalID == "") && sameName)
		if !same {
			continue
		}
		o := &m.r.Recipients[i]
		for _, f := range [][2]*string{{&o.NationalID, &rc.NationalID}, {&o.RPPS, &rc.RPPS}, {&o.Family, &rc.Family},
			{&o.Given, &rc.Given}, {&o.Address, &rc.Address}} {
			if *f[0] == "" {
				*f[0] = *f[1]
			}
		}
		return
	}
	m.r.Recipients = append(m.r.Recipients, rc)
}

// service maps the care unit: PV1-3.1 (point of care), else ORC-13.1
// (enterer's location), else ORC-17.1 (entering organization).
func (m *mapper) service() {
	orc := hl7.ORC{Segment: m.msg.Segment("ORC")}
	for _, v := range []string{
		hl7.PV1{Segment: m.msg.Segment("PV1")}.AssignedLocation().PointOfCare,
		orc.EntererLocation().PointOfCare,
		orc.EnteringOrganization().Identifier,
	} {
		if v = strings.TrimSpace(v); v != "" {
			m.r.Service = v
			return
		}
	}
}

// locate returns the location in msg of the field of a report that the
// domain found invalid (dispatch.InvalidError.Field), with its table 0357
// code; the caller sets the message. An unknown field gives code 207 and no
// location.
func locate(msg *hl7.Message, field string) hl7.ErrDetail {
	code, _, _ := msg.Type()
	mdm := code == "MDM"
	_, docSeq := documentOBX(msg)
	doc := func(f, code int) hl7.ErrDetail {
		seq := docSeq
		if seq == 0 {
			seq = 1 // where the document is expected
		}
		return hl7.ErrDetail{Segment: "OBX", Sequence: seq, Field: f, Code: code, Severity: "E"}
	}
	at := func(seg string, f, code int) hl7.ErrDetail {
		return hl7.ErrDetail{Segment: seg, Sequence: 1, Field: f, Code: code, Severity: "E"}
	}
	switch field {
	case "control_id":
		return at("MSH", 10, hl7.CodeRequiredField)
	case "document.id":
		if mdm {
			return at("TXA", 12, hl7.CodeRequiredField)
		}
		return doc(5, hl7.CodeRequiredField)
	case "document.cda":
		return doc(5, hl7.CodeRequiredField)
	case "document.parent_id":
		if mdm {
			return at("TXA", 13, hl7.CodeRequiredField)
		}
		return doc(5, hl7.CodeRequiredField) // the CDA's relatedDocument/parentDocument
	case "action":
		if mdm {
			return at("MSH", 9, hl7.CodeUnsupportedEvent)
		}
		return doc(11, hl7.CodeTableValue)
	case "patient.ins":
		pid := hl7.PID{Segment: msg.Segment("PID")}
		for _, id := range pid.Identifiers() {
			if norm(id.TypeCode) == "INS" && authorityOID(id.AssigningAuthority, insOIDs) != "" {
				return at("PID", 32, hl7.CodeTableValue) // an INS, not qualified
			}
		}
		return at("PID", 3, hl7.CodeRequiredField)
	}
	if name, ok := strings.CutPrefix(field, "flags."); ok {
		name = flagCode(name)
		for i, s := range msg.SegmentsNamed("OBX") {
			id := (hl7.OBX{Segment: s}).Identifier()
			if isMetadata(id) && flagCode(id.Identifier) == name {
				return hl7.ErrDetail{Segment: "OBX", Sequence: i + 1, Field: 5, Code: hl7.CodeTableValue, Severity: "E"}
			}
		}
		if flagFields[name] != nil {
			// No OBX carries the flag: the OBX with that OBX-3 is missing.
			return hl7.ErrDetail{Segment: "OBX", Field: 3, Code: hl7.CodeRequiredField, Severity: "E"}
		}
	}
	return hl7.ErrDetail{Code: hl7.CodeInternal, Severity: "E"}
}
