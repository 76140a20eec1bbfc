package hl7intake

import (
	"fmt"
	"strings"

	"github.com/mssdispatch/mssdispatch/hl7"
)

// This file is the table of the fields the volet "Transmission d'un document
// CDA-R2 en HL7v2" marks required (page profils-messages, its segment
// tables), with what this service does when one is missing: it refuses the
// message (AE) when it needs the field to send the right document to the
// right people, and otherwise accepts the message with a warning (AA, ERR of
// severity W naming the field), for the volet asks senders to fill only
// those fields and the DPI's integrator should see what is missing. The
// README's table is written from it (TestREADMERequiredFields).

// Messages a volet field applies to.
const (
	oruOnly = "ORU"
	mdmOnly = "MDM"
	both    = "ORU, MDM"
)

// voletField is a field, or a segment (Field 0), the volet marks required.
type voletField struct {
	Segment string
	Field   int
	// Label names it, in French.
	Label string
	// In is oruOnly, mdmOnly or both.
	In string
	// Refused is true when a message without it is refused (AE): the
	// service checks it where it maps the field. Otherwise the message is
	// accepted with a warning, and Instead says what the service uses.
	Refused bool
	// Instead is, for a field not refused, what the service does without it.
	Instead string
}

// voletFields are the volet's required fields, in the order of its tables.
// The MetaDMPMSS flags are listed by code under the segment name "OBX".
var voletFields = []voletField{
	{"MSH", 1, "séparateur de champ", both, true, ""},
	{"MSH", 2, "caractères d'encodage", both, true, ""},
	{"MSH", 3, "application émettrice", both, false, "clé du message sans application (MSH-3, MSH-4, MSH-10)"},
	{"MSH", 4, "organisation émettrice", both, false, "clé du message sans organisation"},
	{"MSH", 5, "application réceptrice", both, false, "les accusés métier (ZAM) portent MSSDISPATCH_DPI_ACK_APPLICATION, à défaut MSSDISPATCH"},
	{"MSH", 6, "organisation réceptrice", both, false, "les accusés métier portent MSSDISPATCH_DPI_ACK_FACILITY"},
	{"MSH", 7, "date/heure du message", both, false, "sans objet"},
	{"MSH", 9, "type du message", both, true, ""},
	{"MSH", 10, "identifiant du message", both, true, ""},
	{"MSH", 11, "identifiant de traitement", both, false, "P"},
	{"MSH", 12, "version HL7 (2.5 ORU, 2.6 MDM)", both, false, "la version attendue pour le type ; une version qui n'est pas 2.x est refusée (203)"},
	{"MSH", 17, "pays (FRA)", both, false, "sans objet"},
	{"MSH", 18, "jeu de caractères", both, false, "MSSDISPATCH_HL7_CHARSET (UNICODE UTF-8 par défaut)"},
	{"MSH", 21, "profil (2.1^CISIS_CDA_HL7_V2)", both, false, "sans objet"},
	{"EVN", 0, "segment EVN", mdmOnly, false, "sans objet"},
	{"PID", 3, "identifiants du patient", both, true, ""},
	{"PID", 5, "nom du patient", both, true, ""},
	{"PV1", 0, "segment PV1", both, false, "sans objet"},
	{"PV1", 2, "classe du patient", both, false, "sans objet"},
	{"ORC", 1, "demande (NW, RO, CA)", both, true, ""},
	{"OBR", 4, "code du document", both, false, "le code du CDA (ClinicalDocument/code)"},
	{"TXA", 1, "set id (1)", mdmOnly, false, "sans objet"},
	{"TXA", 2, "type de document", mdmOnly, false, "le code du CDA"},
	{"TXA", 3, "présentation (TEXT)", mdmOnly, false, "sans objet"},
	{"TXA", 12, "identifiant unique du document", mdmOnly, false, "l'identifiant du CDA (ClinicalDocument/id) ; une suppression sans CDA est refusée"},
	{"TXA", 17, "statut de complétude (AU)", mdmOnly, true, ""},
	{"OBX", 1, "set id du document", both, false, "sans objet"},
	{"OBX", 2, "type de valeur du document (ED)", both, true, ""},
	{"OBX", 3, "code du document", both, false, "le code du CDA"},
	{"OBX", 5, "document CDA R2 en base64", both, true, ""},
	{"OBX", 11, "statut du document (F, C, D)", both, true, ""},
	{"PRT", 4, "participation (SB, RCT, REPLY)", both, true, ""},
	{"PRT", 2, "code action (UC)", both, false, "sans objet"},
	{"PRT", 0, "PRT SB (expéditeur)", both, false, "l'auteur du lot de soumission XDM est celui du CDA"},
	{"PRT", 15, "adresse MSSanté du destinataire (RCT)", both, false, "l'adresse est cherchée dans l'annuaire (RPPS, FINESS) ; sans personne ni organisation, le PRT est refusé"},
	{"OBX", 0, "MASQUE_PS", both, true, ""},
	{"OBX", 0, "INVISIBLE_PATIENT", both, true, ""},
	{"OBX", 0, "INVISIBLE_REP_LEGAUX", both, true, ""},
	{"OBX", 0, "CONNEXION_SECRETE", both, true, ""},
	{"OBX", 0, "MODIF_CONF_CODE", both, false, "N"},
	{"OBX", 0, "DESTDMP", both, false, "N"},
	{"OBX", 0, "DESTMSSANTEPS", both, true, ""},
	{"OBX", 0, "DESTMSSANTEPAT", both, true, ""},
}

// warnMissing adds a warning for each field of voletFields that the service
// accepts without and msg lacks, among the fields that are found by their
// position (MSH, EVN, PV1, OBR, TXA, and the document's OBX); the others
// are checked where they are mapped.
func (m *mapper) warnMissing(docs []seg) {
	msgs := oruOnly
	if m.mdm {
		msgs = mdmOnly
	}
	for _, f := range voletFields {
		if f.Refused || !strings.Contains(f.In, msgs) {
			continue
		}
		var at []seg
		switch f.Segment {
		case "MSH", "EVN", "PV1", "TXA":
			at = []seg{m.first(f.Segment)}
		case "OBR":
			for _, d := range docs {
				at = append(at, m.before("OBR", d.Segment))
			}
		case "OBX":
			if f.Field == 0 {
				continue // a flag: flags() checks it
			}
			at = docs
		default:
			continue // PRT: participants() checks it
		}
		for _, s := range at {
			switch {
			case s.Segment == nil:
				m.warn(hl7.ErrDetail{Segment: f.Segment, Code: hl7.CodeSegmentSequence,
					Msg: fmt.Sprintf("le segment %s, requis par le volet, est absent : %s", f.Segment, f.Instead)})
			case f.Field > 0 && !hasValue(s.Field(f.Field)):
				m.warn(hl7.ErrDetail{Segment: f.Segment, Sequence: s.seq, Field: f.Field, Code: hl7.CodeRequiredField,
					Msg: fmt.Sprintf("%s-%d (%s), requis par le volet, est vide : %s", f.Segment, f.Field, f.Label, f.Instead)})
			}
		}
	}
}

// hasValue reports whether a field holds any value in any component.
func hasValue(f hl7.Field) bool {
	for _, r := range f {
		for _, c := range r {
			for _, s := range c {
				if strings.TrimSpace(s) != "" {
					return true
				}
			}
		}
	}
	return false
}
