package hl7intake

import (
	"bytes"
	"encoding/base64"
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
	actNew     = action{dispatch.ActionNew, "F", "NW", "un nouveau document"}
	actReplace = action{dispatch.ActionReplace, "C", "RO", "un remplacement"}
	actDelete  = action{dispatch.ActionDelete, "D", "CA", "une suppression"}
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
	// warnings are what the mapping ignored, located, for the ACK (their
	// messages also go to r.Warnings, for the report's history).
	warnings []hl7.ErrDetail
}

// fail returns an AE rejection located at field of s.
func fail(s seg, name string, field, code int, format string, args ...any) *rejection {
	return &rejection{code: hl7.AckError, detail: hl7.ErrDetail{Segment: name, Sequence: s.seq, Field: field,
		Code: code, Severity: "E", Msg: fmt.Sprintf(format, args...)}}
}

// warn records d as a warning (severity W), once per segment, field, code
// and message (a field missing from several segments is told once).
func (m *mapper) warn(d hl7.ErrDetail) {
	d.Severity = "W"
	if d.Sequence == 0 {
		d.Sequence = 1
	}
	for _, w := range m.warnings {
		if w.Segment == d.Segment && w.Field == d.Field && w.Code == d.Code && w.Msg == d.Msg {
			return
		}
	}
	m.warnings = append(m.warnings, d)
	m.r.Warnings = append(m.r.Warnings, dispatch.Warning{Msg: d.Msg})
}

// toReport maps an ORU^R01 or MDM^T02/T10/T04 to a dispatch.Report, with the
// warnings of what it ignored (severity W), or returns a *rejection.
func toReport(msg *hl7.Message) (dispatch.Report, []hl7.ErrDetail, error) {
	code, event, _ := msg.Type()
	m := &mapper{msg: msg, mdm: code == "MDM"}
	switch {
	case code == "ORU" && event == "R01", m.mdm && actionsByEvent[event].action != "":
	case code == "ORU" || code == "MDM":
		return dispatch.Report{}, nil, reject(hl7.AckError, "MSH", 9, hl7.CodeUnsupportedEvent,
			"MSH-9 : l'événement %s^%s n'est pas pris en charge : envoyez ORU^R01, MDM^T02, MDM^T10 ou MDM^T04", code, event)
	default:
		return dispatch.Report{}, nil, reject(hl7.AckError, "MSH", 9, hl7.CodeUnsupportedMessageType,
			"MSH-9 : le type de message %s^%s n'est pas pris en charge : envoyez ORU^R01 ou MDM^T02, MDM^T10, MDM^T04", code, event)
	}
	m.msgType = code + "^" + event
	if msg.ControlID() == "" {
		return dispatch.Report{}, nil, reject(hl7.AckError, "MSH", 10, hl7.CodeRequiredField, "MSH-10 (identifiant du message) est vide")
	}
	for _, step := range []func() error{m.header, m.patient, m.document, m.flags, m.participants} {
		if err := step(); err != nil {
			return dispatch.Report{}, nil, err
		}
	}
	m.fallbackCorrespondents()
	m.service()
	return m.r, m.warnings, nil
}

// header checks the version of the message (MSH-12): another 2.x than the
// volet's is read with a warning, anything else is refused.
func (m *mapper) header() error {
	want := "2.5"
	if m.mdm {
		want = "2.6"
	}
	switch v := strings.TrimSpace(m.msg.Version()); {
	case v == "":
	case !strings.HasPrefix(v, "2."):
		return reject(hl7.AckError, "MSH", 12, hl7.CodeUnsupportedVersion,
			"MSH-12 : la version HL7 %q n'est pas prise en charge : le volet utilise %s pour %s", v, want, m.msgType)
	case v != want:
		m.warn(hl7.ErrDetail{Segment: "MSH", Field: 12, Code: hl7.CodeUnsupportedVersion,
			Msg: fmt.Sprintf("MSH-12 : version %s, le volet utilise %s pour %s : le message est lu selon le volet", v, want, m.msgType)})
	}
	if p := norm(m.msg.ProcessingID()); p != "" && p != "P" && p != "T" && p != "D" {
		m.warn(hl7.ErrDetail{Segment: "MSH", Field: 11, Code: hl7.CodeUnsupportedProcessingID,
			Msg: fmt.Sprintf("MSH-11 : identifiant de traitement %q inconnu (P, T ou D) : ignoré", p)})
	}
	return nil
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

// following returns the segments that follow target up to the next segment
// not named name: the NTE of an OBX.
func (m *mapper) following(target *hl7.Segment, name string) []*hl7.Segment {
	i := slices.Index(m.msg.Segments, target)
	if i < 0 {
		return nil
	}
	var out []*hl7.Segment
	for _, s := range m.msg.Segments[i+1:] {
		if s.Name != name {
			break
		}
		out = append(out, s)
	}
	return out
}

func norm(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// patient maps PID: it must identify the patient (PID-3) and name them (PID-5).
func (m *mapper) patient() error {
	s := m.first("PID")
	if s.Segment == nil {
		return reject(hl7.AckError, "PID", 0, hl7.CodeSegmentSequence, "le segment PID est absent")
	}
	pid := hl7.PID{Segment: s.Segment}
	p := &m.r.Patient
	ids := pid.Identifiers()
	for _, id := range ids {
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
	if !slices.ContainsFunc(ids, func(id hl7.CX) bool { return strings.TrimSpace(id.ID) != "" }) {
		return fail(s, "PID", 3, hl7.CodeRequiredField, "PID-3 (identifiants du patient) est vide")
	}
	p.Family, p.Given = legalName(pid)
	if p.Family == "" && p.Given == "" {
		return fail(s, "PID", 5, hl7.CodeRequiredField, "PID-5 (nom du patient) est vide")
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

// documentOBXs returns the OBX that carry documents: those of type ED that
// are not MetaDMPMSS metadata (CORPSMAIL_*).
func documentOBXs(msg *hl7.Message) []seg {
	var out []seg
	for i, s := range msg.SegmentsNamed("OBX") {
		obx := hl7.OBX{Segment: s}
		if norm(obx.ValueType()) == "ED" && !isMetadata(obx.Identifier()) {
			out = append(out, seg{s, i + 1})
		}
	}
	return out
}

// document checks what the message asks and that its documents are
// validated, then maps them: an MDM carries one, an ORU one or two (the
// same report as CDA level 1 and level 3).
func (m *mapper) document() error {
	docs := documentOBXs(m.msg)
	m.warnMissing(docs)
	most, what := 2, "un message ORU porte un ou deux documents (le même compte rendu en CDA niveau 1 et niveau 3)"
	if m.mdm {
		most, what = 1, "un message MDM porte un seul document"
	}
	if len(docs) > most {
		return fail(docs[most], "OBX", 5, hl7.CodeSegmentSequence, "l'OBX %d est le document n°%d du message : %s", docs[most].seq, most+1, what)
	}
	act, err := m.action(docs)
	if err != nil {
		return err
	}
	m.r.Action = act.action
	orders := docs
	if len(orders) == 0 {
		orders = []seg{{}} // the message's ORC
	}
	for _, d := range orders {
		if err := m.orderControl(d.Segment, act); err != nil {
			return err
		}
	}
	txa, err := m.validated(docs, act)
	if err != nil {
		return err
	}
	for i, d := range docs {
		doc, err := m.content(d, act)
		if err != nil {
			return err
		}
		switch {
		case doc.ID == "" && doc.CDA == nil: // a deletion's empty OBX-5: named by TXA-12
		case i == 0:
			m.r.Document = doc
		default:
			m.r.OtherFormat = &doc
		}
	}
	if m.mdm {
		return m.documentIDs(txa, act)
	}
	return nil
}

// action returns what the message asks: by the event of an MDM, which OBX-11
// of its document must agree with, or by OBX-11 of an ORU's documents.
func (m *mapper) action(docs []seg) (action, error) {
	var act action
	if m.mdm {
		_, event, _ := m.msg.Type()
		act = actionsByEvent[event]
	}
	if len(docs) == 0 {
		if m.mdm && act == actDelete {
			return act, nil // a deletion may name its document by TXA-12 alone
		}
		for _, s := range m.all("OBX") {
			obx := hl7.OBX{Segment: s.Segment}
			if ed := obx.EncapsulatedData(); !isMetadata(obx.Identifier()) && norm(ed.Subtype) == "XML" && norm(ed.Encoding) == "BASE64" {
				return act, fail(s, "OBX", 2, hl7.CodeDataType, "OBX-2 (type de valeur) du document vaut %q : ED attendu", obx.ValueType())
			}
		}
		return act, reject(hl7.AckError, "OBX", 5, hl7.CodeRequiredField,
			"aucun OBX de type ED ne porte le document CDA (OBX-5 ^TEXT^XML^Base64^<document>)")
	}
	var first action
	for i, at := range docs {
		obx := hl7.OBX{Segment: at.Segment}
		status := norm(obx.Status())
		byStatus, ok := actionsByStatus[status]
		switch {
		case status == "":
			return act, fail(at, "OBX", 11, hl7.CodeRequiredField,
				"OBX-11 (statut) du document est vide : F (nouveau), C (remplacement) ou D (suppression) attendu")
		case !ok:
			return act, fail(at, "OBX", 11, hl7.CodeTableValue,
				"OBX-11 (statut) du document vaut %q : F (nouveau), C (remplacement) ou D (suppression) attendu", obx.Status())
		case m.mdm && byStatus != act:
			return act, fail(at, "OBX", 11, hl7.CodeTableValue, "OBX-11 (statut) vaut %q mais l'événement %s demande %s : %s attendu",
				obx.Status(), m.msgType, act.what, act.obxStatus)
		case i > 0 && byStatus != first:
			return act, fail(at, "OBX", 11, hl7.CodeTableValue,
				"OBX-11 (statut) des deux documents diffère (%s puis %s) : les deux formats d'un compte rendu vont ensemble", first.obxStatus, byStatus.obxStatus)
		}
		first = byStatus
	}
	return first, nil
}

// orderControl checks that ORC-1 (of the order of the document obx, or the
// message's first) agrees with the action: NW, RO or CA.
func (m *mapper) orderControl(obx *hl7.Segment, act action) error {
	s := m.before("ORC", obx)
	if s.Segment == nil {
		return reject(hl7.AckError, "ORC", 0, hl7.CodeSegmentSequence, "le segment ORC est absent : ORC-1 doit valoir %s pour %s", act.orcCtrl, act.what)
	}
	ctrl := hl7.ORC{Segment: s.Segment}.OrderControl()
	if norm(ctrl) == act.orcCtrl {
		return nil
	}
	by := "OBX-11 " + act.obxStatus
	if m.mdm {
		by = "l'événement " + m.msgType
	}
	if strings.TrimSpace(ctrl) == "" {
		return fail(s, "ORC", 1, hl7.CodeRequiredField, "ORC-1 (demande) est vide : %s demande %s, ORC-1 %s attendu", by, act.what, act.orcCtrl)
	}
	return fail(s, "ORC", 1, hl7.CodeTableValue, "ORC-1 (demande) vaut %q mais %s demande %s : %s attendu", ctrl, by, act.what, act.orcCtrl)
}

// validated checks that the documents are validated: TXA-17 AU or LA
// (MDM); OBR-25, optional, F or C when given (ORU: the volet's examples
// write F whatever OBX-11 asks). It returns the TXA of an MDM.
func (m *mapper) validated(docs []seg, act action) (hl7.TXA, error) {
	if !m.mdm {
		for _, d := range docs {
			s := m.before("OBR", d.Segment)
			if s.Segment == nil {
				continue // warnMissing warned
			}
			switch st := norm(hl7.OBR{Segment: s.Segment}.ResultStatus()); st {
			case "", "F", "C":
			default:
				return hl7.TXA{}, fail(s, "OBR", 25, hl7.CodeTableValue,
					"OBR-25 (statut du résultat) vaut %q : seul un document validé est envoyé (F, ou C pour une correction ; OBR-25 peut aussi être vide)", st)
			}
		}
		return hl7.TXA{}, nil
	}
	s := m.first("TXA")
	if s.Segment == nil {
		return hl7.TXA{}, reject(hl7.AckError, "TXA", 0, hl7.CodeSegmentSequence, "le segment TXA est absent")
	}
	txa := hl7.TXA{Segment: s.Segment}
	switch norm(txa.CompletionStatus()) {
	case "AU", "LA":
		return txa, nil
	case "":
		return txa, fail(s, "TXA", 17, hl7.CodeRequiredField, "TXA-17 (statut de complétude) est vide : AU (validé) attendu")
	}
	return txa, fail(s, "TXA", 17, hl7.CodeTableValue,
		"TXA-17 (statut de complétude) vaut %q : seul un document validé (AU ou LA) est envoyé", txa.CompletionStatus())
}

// content decodes the CDA of the document OBX at and maps what it says: the
// document, the parent of a replacement, the author of the first document
// (unless a PRT SB names one), the patient's birth date and sex when PID
// leaves them out (the volet does not require PID-7 and PID-8); the INS of
// its recordTarget must be that of PID-3.
func (m *mapper) content(at seg, act action) (dispatch.Document, error) {
	obx := hl7.OBX{Segment: at.Segment}
	doc, header, err := decodeDocument(obx, at, act == actDelete && m.mdm)
	if err != nil || header == nil {
		return doc, err
	}
	p := m.r.Patient
	if ins, oid, ok := header.Patient.INS(); ok && p.INS != "" && (ins != p.INS || oid != p.INSOID) {
		return doc, fail(m.first("PID"), "PID", 3, hl7.CodeDataType, "l'INS de PID-3, %s (%s), n'est pas celui du recordTarget du CDA de l'OBX %d, %s (%s)",
			p.INS, p.INSOID, at.seq, ins, oid)
	}
	if act == actReplace && !header.ParentID.IsZero() {
		doc.ParentID = uniqueID(header.ParentID)
	}
	if pat := &m.r.Patient; pat.BirthDate == "" {
		pat.BirthDate = header.Patient.BirthDate[:min(8, len(header.Patient.BirthDate))]
	}
	if pat := &m.r.Patient; pat.Sex == "" {
		pat.Sex = header.Patient.Sex
	}
	if m.r.Author.Kind == "" {
		m.r.Author = cdaAuthor(header.Author)
	}
	return doc, nil
}

// documentIDs checks TXA-12 and TXA-13 against the CDA, and takes them when
// the message carries no CDA.
func (m *mapper) documentIDs(txa hl7.TXA, act action) error {
	s := seg{txa.Segment, 1}
	doc := &m.r.Document
	if id := eiUniqueID(txa.UniqueDocumentNumber()); id != "" {
		if doc.ID != "" && doc.ID != id {
			return fail(s, "TXA", 12, hl7.CodeDataType, "TXA-12 (identifiant du document) %q n'est pas l'identifiant du CDA (ClinicalDocument/id) %q", id, doc.ID)
		}
		doc.ID = id
	}
	if doc.ID == "" {
		return fail(s, "TXA", 12, hl7.CodeRequiredField, "TXA-12 (identifiant du document) est vide et le message ne porte pas de CDA")
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
			return fail(s, "TXA", 13, hl7.CodeDataType, "TXA-13 (document remplacé) %q n'est pas le relatedDocument/parentDocument/id du CDA %q", id, doc.ParentID)
		}
		doc.ParentID = id
	}
	if doc.ParentID == "" {
		return fail(s, "TXA", 13, hl7.CodeRequiredField, "TXA-13 (document remplacé) est vide et le CDA ne nomme pas de relatedDocument : un remplacement nomme le document qu'il remplace")
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
		return dispatch.Document{}, nil, fail(at, "OBX", 5, hl7.CodeDataType, "OBX-5.4 (encodage) du document vaut %q : Base64 attendu", enc)
	}
	if sub := strings.TrimSpace(ed.Subtype); !strings.EqualFold(sub, "XML") {
		return dispatch.Document{}, nil, fail(at, "OBX", 5, hl7.CodeDataType, "OBX-5.3 (sous-type) du document vaut %q : XML attendu (un document CDA R2)", sub)
	}
	data, err := cda.DecodeBase64([]byte(ed.Data))
	switch {
	case err != nil:
		return dispatch.Document{}, nil, fail(at, "OBX", 5, hl7.CodeDataType, "OBX-5.5 (données) du document n'est pas du base64 (%s)", decodeProblem(err))
	case len(data) == 0 && optional:
		return dispatch.Document{}, nil, nil
	case len(data) == 0:
		return dispatch.Document{}, nil, fail(at, "OBX", 5, hl7.CodeRequiredField, "OBX-5.5 (données) du document est vide")
	}
	tree, err := cda.Read(data)
	var header *cda.Document
	if err == nil {
		header, err = tree.Header()
	}
	if err != nil {
		return dispatch.Document{}, nil, fail(at, "OBX", 5, hl7.CodeDataType, "OBX-5.5 n'est pas un document CDA R2 : %v", err)
	}
	pdf, err := tree.PDF()
	if err != nil && !errors.Is(err, cda.ErrNoPDF) {
		return dispatch.Document{}, nil, fail(at, "OBX", 5, hl7.CodeDataType, "le PDF inclus dans le CDA est illisible : %v", err)
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

// decodeProblem says where base64 or hex text is corrupt.
func decodeProblem(err error) string {
	var b64 base64.CorruptInputError
	var bad hex.InvalidByteError
	switch {
	case errors.As(err, &b64):
		return fmt.Sprintf("caractère %d invalide, ou longueur impossible", int64(b64)+1)
	case errors.As(err, &bad):
		return fmt.Sprintf("caractère %q invalide", rune(bad))
	case errors.Is(err, hex.ErrLength):
		return "nombre impair de chiffres"
	}
	return err.Error()
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

// nationalID returns the national id of a professional, kept as given
// (trimmed), and its RPPS when it is "8" + RPPS (correspondents.NationalID).
func nationalID(id string) (national, rpps string) {
	id = strings.TrimSpace(id)
	rpps, _ = correspondents.NationalID(id).RPPS()
	return id, rpps
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

// flags maps the MetaDMPMSS OBX: the flags, the FIN of DESTMSSANTEPAT and
// the email bodies. A message with flags must carry those the volet
// requires and the service needs to know who may receive the document
// (voletFields); the others, and the optional ones, default to N with a
// warning when missing or unreadable. A message with no flag at all (a DPI
// that does not follow the volet) gets DefaultFlags, with a warning. An
// unreadable email body or an unknown metadata code is ignored with a
// warning.
func (m *mapper) flags() error {
	f := dispatch.Flags{Present: true}
	seen := map[string]bool{}
	var group seg // the first flag, where missing ones are reported
	for _, s := range m.all("OBX") {
		obx := hl7.OBX{Segment: s.Segment}
		id := obx.Identifier()
		if !isMetadata(id) {
			continue
		}
		code := flagCode(id.Identifier)
		if code == bodyProfessional || code == bodyPatient {
			m.body(obx, s, code, seen)
			continue
		}
		field := flagFields[code]
		if field == nil {
			m.warn(hl7.ErrDetail{Segment: "OBX", Sequence: s.seq, Field: 3, Code: hl7.CodeTableValue,
				Msg: fmt.Sprintf("OBX-3 : %q n'est pas une métadonnée MetaDMPMSS du volet : ignorée", strings.TrimSpace(id.Identifier))})
			continue
		}
		if group.Segment == nil {
			group = s
		}
		needed := flagRequired(code)
		v := obx.CodedValue().Identifier
		var on bool
		switch norm(v) {
		case "Y":
			on = true
		case "N":
		case "":
			if needed {
				return fail(s, "OBX", 5, hl7.CodeRequiredField, "OBX-5 (valeur) de %s est vide : Y ou N attendu", code)
			}
			m.warn(hl7.ErrDetail{Segment: "OBX", Sequence: s.seq, Field: 5, Code: hl7.CodeRequiredField,
				Msg: fmt.Sprintf("OBX-5 (valeur) de %s est vide : N retenu", code)})
		default:
			if needed {
				return fail(s, "OBX", 5, hl7.CodeTableValue, "OBX-5 (valeur) de %s vaut %q : Y ou N attendu", code, v)
			}
			m.warn(hl7.ErrDetail{Segment: "OBX", Sequence: s.seq, Field: 5, Code: hl7.CodeTableValue,
				Msg: fmt.Sprintf("OBX-5 (valeur) de %s vaut %q, ni Y ni N : N retenu", code, v)})
		}
		if seen[code] && *field(&f) != on {
			if needed {
				return fail(s, "OBX", 5, hl7.CodeTableValue, "%s est donné deux fois, Y et N", code)
			}
			m.warn(hl7.ErrDetail{Segment: "OBX", Sequence: s.seq, Field: 5, Code: hl7.CodeTableValue,
				Msg: fmt.Sprintf("%s est donné deux fois, Y et N : le premier est retenu", code)})
			continue
		}
		seen[code] = true
		*field(&f) = on
		if code == "DESTMSSANTEPAT" && on && m.noReply(s.Segment) {
			f.PatientNoReply = true
		}
	}
	if group.Segment == nil {
		m.r.Flags = dispatch.DefaultFlags
		m.warn(hl7.ErrDetail{Segment: "OBX", Field: 3, Code: hl7.CodeRequiredField,
			Msg: "aucune métadonnée MetaDMPMSS (MASQUE_PS à DESTMSSANTEPAT) : le document est envoyé aux professionnels listés, pas au patient"})
		return nil
	}
	for _, vf := range voletFields {
		if vf.Segment != "OBX" || vf.Field != 0 || seen[vf.Label] {
			continue
		}
		if vf.Refused {
			return fail(group, "OBX", 3, hl7.CodeRequiredField,
				"l'OBX de la métadonnée %s est absent : le volet la requiert et elle décide qui peut recevoir le document", vf.Label)
		}
		m.warn(hl7.ErrDetail{Segment: "OBX", Sequence: group.seq, Field: 3, Code: hl7.CodeRequiredField,
			Msg: fmt.Sprintf("l'OBX de la métadonnée %s, requis par le volet, est absent : %s retenu", vf.Label, vf.Instead)})
	}
	m.r.Flags = f
	return nil
}

// flagRequired reports whether the service refuses a message whose flag code
// is missing or unreadable (voletFields).
func flagRequired(code string) bool {
	return slices.ContainsFunc(voletFields, func(f voletField) bool {
		return f.Segment == "OBX" && f.Field == 0 && f.Label == code && f.Refused
	})
}

// noReply reports whether an NTE of the DESTMSSANTEPAT OBX says FIN (NTE-4):
// the professional does not want the patient to answer.
func (m *mapper) noReply(obx *hl7.Segment) bool {
	return slices.ContainsFunc(m.following(obx, "NTE"), func(s *hl7.Segment) bool {
		return norm(hl7.NTE{Segment: s}.CommentType().Identifier) == "FIN"
	})
}

// body maps a CORPSMAIL_* OBX: an email body the DPI wrote. One that cannot
// be read, or a second one, is ignored with a warning (the default body is
// used).
func (m *mapper) body(obx hl7.OBX, s seg, code string, seen map[string]bool) {
	if seen[code] {
		m.warn(hl7.ErrDetail{Segment: "OBX", Sequence: s.seq, Field: 3, Code: hl7.CodeSegmentSequence,
			Msg: fmt.Sprintf("un second OBX %s : le volet en permet un, celui-ci est ignoré", code)})
		return
	}
	seen[code] = true
	text, err := bodyText(obx, code, m.msg.Charset)
	if err != nil {
		m.warn(hl7.ErrDetail{Segment: "OBX", Sequence: s.seq, Field: 5, Code: hl7.CodeDataType,
			Msg: fmt.Sprintf("%s illisible (%v) : le corps du courriel par défaut est utilisé", code, err)})
		return
	}
	if code == bodyProfessional {
		m.r.BodyProfessional = text
	} else {
		m.r.BodyPatient = text
	}
}

// bodyText decodes the text of a CORPSMAIL_* OBX: ED ^TEXT^^Base64^<text>
// per the volet (also A or Hex encodings, and TX/FT/ST values). The bytes
// are UTF-8; when they are not valid UTF-8, they are ISO-8859-15 if the
// message says so (MSH-18 8859/15), else ISO-8859-1.
func bodyText(obx hl7.OBX, code, charset string) (string, error) {
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
			return "", fmt.Errorf("OBX-5.4 (encodage) vaut %q, Base64 attendu", ed.Encoding)
		}
		if err != nil {
			return "", fmt.Errorf("OBX-5.5 n'est pas du %s valide (%s)", ed.Encoding, decodeProblem(err))
		}
	case "TX", "FT", "ST":
		var lines []string
		for _, r := range obx.Value() {
			lines = append(lines, r.Comp(1))
		}
		b = []byte(strings.Join(lines, "\n"))
	default:
		return "", fmt.Errorf("OBX-2 (type de valeur) de %s vaut %q, ED attendu", code, obx.ValueType())
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return "", errors.New("le texte contient un caractère NUL")
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
		return "", fmt.Errorf("OBX-5.5 n'est pas du texte : %w", err)
	}
	return string(text), nil
}

// participants maps the PRT segments: RCT recipients, SB author, REPLY
// address. A PRT RCT that names no one is refused; the fields the volet
// requires and the service can do without (PRT-2, the RCT's PRT-15, a PRT
// SB) are warned about; an unusable REPLY (optional) is ignored with a
// warning.
func (m *mapper) participants() error {
	sender, rct := false, false
	for _, s := range m.all("PRT") {
		prt := hl7.PRT{Segment: s.Segment}
		role := norm(prt.Participation().Identifier)
		if role != "" && !hasValue(s.Field(2)) {
			m.warn(hl7.ErrDetail{Segment: "PRT", Sequence: s.seq, Field: 2, Code: hl7.CodeRequiredField,
				Msg: "PRT-2 (code action, UC), requis par le volet, est vide : sans objet"})
		}
		switch role {
		case "":
			return fail(s, "PRT", 4, hl7.CodeRequiredField, "PRT-4 (participation) est vide : SB, RCT ou REPLY attendu")
		case "RCT":
			rct = true
			rc, addrErr := participant(prt)
			switch {
			case addrErr != nil && rc.Kind == "":
				return fail(s, "PRT", 15, hl7.CodeDataType, "PRT-15 du PRT %d (RCT) : %v ; et le PRT ne nomme personne d'autre", s.seq, addrErr)
			case addrErr != nil:
				m.warnAddress(s, 15, addrErr)
			}
			if rc.Kind == "" {
				return fail(s, "PRT", 5, hl7.CodeRequiredField,
					"le PRT %d (RCT) ne nomme ni personne (PRT-5), ni organisation (PRT-8), ni adresse MSSanté (PRT-15 ^NET^X.400^adresse)", s.seq)
			}
			if rc.Address == "" {
				m.warn(hl7.ErrDetail{Segment: "PRT", Sequence: s.seq, Field: 15, Code: hl7.CodeRequiredField,
					Msg: fmt.Sprintf("PRT-15 (adresse MSSanté) du PRT %d (RCT), requis par le volet, est vide : l'adresse est cherchée dans l'annuaire", s.seq)})
			}
			rc.Role = dispatch.RoleResultCopiesTo
			if rc.Kind == dispatch.KindPatient {
				rc.Role = dispatch.RolePatient
			}
			if !slices.ContainsFunc(m.r.Recipients, func(o dispatch.Recipient) bool { return reflect.DeepEqual(o, rc) }) {
				m.r.Recipients = append(m.r.Recipients, rc)
			}
		case "SB":
			if sender {
				continue // the first sender is the author
			}
			if rc, _ := participant(prt); rc.Kind != "" && rc.Kind != dispatch.KindPatient {
				rc.Role = dispatch.RoleSender
				m.r.Author, sender = rc, true
			}
		case "REPLY":
			if m.r.ReplyTo != "" {
				continue
			}
			reply, err := emailOf(prt.Telecoms())
			switch {
			case err != nil:
				m.warnAddress(s, 15, err)
			case reply == "":
				m.warn(hl7.ErrDetail{Segment: "PRT", Sequence: s.seq, Field: 15, Code: hl7.CodeRequiredField,
					Msg: fmt.Sprintf("le PRT %d (REPLY) n'a pas d'adresse en PRT-15 (^NET^X.400^adresse) : pas d'adresse de réponse", s.seq)})
			}
			m.r.ReplyTo = reply
		}
	}
	if !sender {
		m.warn(hl7.ErrDetail{Segment: "PRT", Field: 4, Code: hl7.CodeRequiredField,
			Msg: "aucun PRT SB (expéditeur), requis par le volet : l'auteur du lot de soumission XDM est celui du CDA"})
	}
	if !rct && m.r.Flags.ToProfessionals {
		m.warn(hl7.ErrDetail{Segment: "PRT", Field: 4, Code: hl7.CodeSegmentSequence,
			Msg: "DESTMSSANTEPS=Y mais aucun PRT RCT ne nomme de destinataire : le document n'est envoyé à aucun professionnel (sauf les correspondants ROL, PV1-8, OBR-28, PD1-4 si l'établissement l'a activé)"})
	}
	return nil
}

// participant maps a PRT: a professional (PRT-5), the patient (PRT-5 with an
// INS, or an address at patient.mssante.fr), else an organisation (PRT-8, or
// an address alone: a service's or an application's mailbox, PRT-10). Kind
// is empty when it names no one. addrErr says why PRT-15 holds an address
// that cannot be used (it is left out).
func participant(prt hl7.PRT) (rc dispatch.Recipient, addrErr error) {
	person, org := prt.Person(), prt.Organisation()
	address, addrErr := emailOf(prt.Telecoms())
	rc = dispatch.Recipient{Address: address, PostalAddress: postalAddress(prt.Addresses())}
	rc.Family, rc.Given = strings.TrimSpace(person.Family), strings.TrimSpace(person.Given)
	rc.Organisation = strings.TrimSpace(org.Name)
	if isFINESS(org) {
		rc.FINESS = finess(org.ID)
	}
	if norm(person.TypeCode) == "INS" || authorityOID(person.AssigningAuthority, insOIDs) != "" ||
		strings.HasSuffix(rc.Address, "@"+correspondents.PatientMailDomain) {
		return dispatch.Recipient{Kind: dispatch.KindPatient, Family: rc.Family, Given: rc.Given, Address: rc.Address}, addrErr
	}
	rc.NationalID, rc.RPPS = professionalID(person)
	switch {
	case rc.NationalID != "" || rc.Family != "" || rc.Given != "":
		rc.Kind = dispatch.KindProfessional
	case rc.Organisation != "" || rc.FINESS != "" || rc.Address != "":
		// An organisation, a service, or an application mailbox (PRT-10).
		rc.Kind = dispatch.KindOrganisation
	}
	return rc, addrErr
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
// RPPS (11 digits) given without its prefix gets it, unless XCN.13 says
// ADELI; an ADELI (9 digits) only when XCN.13 says ADELI. Any other id is
// kept as given (nationalID).
func professionalID(x hl7.XCN) (national, rpps string) {
	id, typ := strings.TrimSpace(x.ID), norm(x.TypeCode)
	directory := authorityOID(x.AssigningAuthority, []string{cda.OIDRPPS}) != "" ||
		strings.EqualFold(strings.ReplaceAll(x.AssigningAuthority.NamespaceID, " ", ""), "ASIP-SANTE-PS")
	known := directory || typ == "RPPS" || typ == "ADELI" || typ == "IDNPS"
	if !known || id == "" {
		return "", ""
	}
	if typ == "ADELI" {
		if n, err := correspondents.NationalIDFromADELI(id); err == nil {
			return n.String(), ""
		}
	} else if n, err := correspondents.NationalIDFromRPPS(id); err == nil {
		return n.String(), id
	}
	return nationalID(id)
}

// emailOf returns the first email address of telecoms (^NET^X.400^address,
// or ^^X.400^, ^NET^Internet^) in its stored form (correspondents.
// ParseMailbox), "" when there is none; an address that is not one RFC 5321
// mailbox (control characters, a second @, a display name…) is never used:
// err says why.
func emailOf(telecoms []hl7.XTN) (string, error) {
	for _, t := range telecoms {
		addr := strings.TrimSpace(t.Email)
		if addr == "" {
			continue
		}
		switch {
		case norm(t.EquipmentType) == "X.400", norm(t.EquipmentType) == "INTERNET", norm(t.Use) == "NET":
			return correspondents.ParseMailbox(addr)
		}
	}
	return "", nil
}

// warnAddress warns that field of s holds an address that is left out.
func (m *mapper) warnAddress(s seg, field int, err error) {
	m.warn(hl7.ErrDetail{Segment: s.Name, Sequence: s.seq, Field: field, Code: hl7.CodeDataType,
		Msg: fmt.Sprintf("%s-%d du %s %d : %v ; elle est ignorée, rien n'y est envoyé", s.Name, field, s.Name, s.seq, err)})
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
		address, err := emailOf(rol.Telecoms())
		if err != nil {
			m.warnAddress(s, 12, err)
		}
		add(role, rol.Persons(), address)
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

// service maps the care unit (serviceOf).
func (m *mapper) service() { m.r.Service = serviceOf(m.msg) }

// serviceOf is the care unit msg names: PV1-3.1 (point of care), else
// ORC-13.1 (enterer's location), else ORC-17.1 (entering organization);
// "" when none.
func serviceOf(msg *hl7.Message) string {
	orc := hl7.ORC{Segment: msg.Segment("ORC")}
	for _, v := range []string{
		hl7.PV1{Segment: msg.Segment("PV1")}.AssignedLocation().PointOfCare,
		orc.EntererLocation().PointOfCare,
		orc.EnteringOrganization().Identifier,
	} {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// locate returns the location in msg of the field of a report that the
// domain found invalid or warned about (dispatch.InvalidError.Field,
// dispatch.Warning.Field), with its table 0357 code; the caller sets the
// severity and the message. An unknown field gives code 207 and no
// location.
func locate(msg *hl7.Message, field string) hl7.ErrDetail {
	code, _, _ := msg.Type()
	mdm := code == "MDM"
	docs := documentOBXs(msg)
	doc := func(i, f, code int) hl7.ErrDetail {
		seq := 1 // where the document is expected
		if i < len(docs) {
			seq = docs[i].seq
		}
		return hl7.ErrDetail{Segment: "OBX", Sequence: seq, Field: f, Code: code}
	}
	at := func(seg string, f, code int) hl7.ErrDetail {
		return hl7.ErrDetail{Segment: seg, Sequence: 1, Field: f, Code: code}
	}
	switch field {
	case dispatch.FieldControlID:
		return at("MSH", 10, hl7.CodeRequiredField)
	case dispatch.FieldDocumentID:
		if mdm {
			return at("TXA", 12, hl7.CodeRequiredField)
		}
		return doc(0, 5, hl7.CodeRequiredField)
	case dispatch.FieldDocumentCDA:
		return doc(0, 5, hl7.CodeRequiredField)
	case dispatch.FieldOtherFormatID, dispatch.FieldOtherFormatCDA:
		return doc(1, 5, hl7.CodeRequiredField)
	case dispatch.FieldDocumentParent:
		if mdm {
			return at("TXA", 13, hl7.CodeRequiredField)
		}
		return doc(0, 5, hl7.CodeRequiredField) // the CDA's relatedDocument/parentDocument
	case dispatch.FieldAction:
		if mdm {
			return at("MSH", 9, hl7.CodeUnsupportedEvent)
		}
		return doc(0, 11, hl7.CodeTableValue)
	case dispatch.FieldPatientINS:
		pid := hl7.PID{Segment: msg.Segment("PID")}
		for _, id := range pid.Identifiers() {
			if norm(id.TypeCode) == "INS" && authorityOID(id.AssigningAuthority, insOIDs) != "" {
				return at("PID", 32, hl7.CodeTableValue) // an INS, not qualified
			}
		}
		return at("PID", 3, hl7.CodeRequiredField)
	case dispatch.FieldPatientMailbox:
		for i, s := range msg.SegmentsNamed("PRT") {
			prt := hl7.PRT{Segment: s}
			if rc, _ := participant(prt); norm(prt.Participation().Identifier) == "RCT" && rc.Kind == dispatch.KindPatient {
				return hl7.ErrDetail{Segment: "PRT", Sequence: i + 1, Field: 15, Code: hl7.CodeTableValue}
			}
		}
		return at("PID", 3, hl7.CodeTableValue)
	}
	if name, ok := strings.CutPrefix(field, dispatch.FieldFlag("")); ok {
		name = flagCode(name)
		for i, s := range msg.SegmentsNamed("OBX") {
			id := (hl7.OBX{Segment: s}).Identifier()
			if isMetadata(id) && flagCode(id.Identifier) == name {
				return hl7.ErrDetail{Segment: "OBX", Sequence: i + 1, Field: 5, Code: hl7.CodeTableValue}
			}
		}
		if flagFields[name] != nil {
			// No OBX carries the flag: the OBX with that OBX-3 is missing.
			return hl7.ErrDetail{Segment: "OBX", Sequence: 1, Field: 3, Code: hl7.CodeRequiredField}
		}
	}
	return hl7.ErrDetail{Code: hl7.CodeInternal}
}
