package dispatch

import (
	"fmt"
	"reflect"
	"strings"
	"unicode"
)

// Flags are the MetaDMPMSS restrictions the DPI set on a document.
type Flags struct {
	// Present is false when the DPI sent none; the defaults then apply:
	// send to the listed professionals, not to the patient.
	Present            bool `json:"present"`
	MaskedForPros      bool `json:"MASQUE_PS"`
	InvisiblePatient   bool `json:"INVISIBLE_PATIENT"`
	InvisibleGuardians bool `json:"INVISIBLE_REP_LEGAUX"`
	SecretConnection   bool `json:"CONNEXION_SECRETE"`
	ConfCodeChanged    bool `json:"MODIF_CONF_CODE"`
	ToDMP              bool `json:"DESTDMP"`
	ToProfessionals    bool `json:"DESTMSSANTEPS"`
	ToPatient          bool `json:"DESTMSSANTEPAT"`
	DeliveryAck        bool `json:"ACK_RECEPTION"`
	ReadAck            bool `json:"ACK_LECTURE_MSS"`
	// PatientNoReply is the "FIN" of the DESTMSSANTEPAT OBX (its NTE-4):
	// the professional does not want the patient to answer, and the
	// patient's email carries X-MSS-MES: FIN.
	PatientNoReply bool `json:"FIN,omitempty"`
}

// DefaultFlags are the flags of a report that carries none.
var DefaultFlags = Flags{ToProfessionals: true}

// SendsToProfessionals reports whether the listed professionals may receive the document.
func (f Flags) SendsToProfessionals() bool { return f.ToProfessionals && !f.MaskedForPros }

// SendsToPatient reports whether the patient's mailbox receives the document.
func (f Flags) SendsToPatient() bool { return f.ToPatient && !f.InvisiblePatient }

// Validate checks the flags against the matrix of MSSanté exchanges of the
// volet (règles de gestion MSSanté, release 2.1.3): "les cas non
// représentés génèrent un message d'erreur". The destination flags choose
// the row, the others must then hold its values:
//
//	row 1, DESTMSSANTEPS=Y DESTMSSANTEPAT=Y: MASQUE_PS, INVISIBLE_PATIENT and INVISIBLE_REP_LEGAUX N
//	row 2, DESTMSSANTEPS=Y DESTMSSANTEPAT=N: MASQUE_PS N
//	row 3, DESTMSSANTEPS=N DESTMSSANTEPAT=Y: INVISIBLE_PATIENT, CONNEXION_SECRETE and DESTDMP N
//
// CONNEXION_SECRETE may be Y in rows 1 and 2 since release 2.1.3. Row 2 of
// the volet also writes INVISIBLE_PATIENT Y and INVISIBLE_REP_LEGAUX N, but
// its official MDM examples send to a professional alone with Y and Y
// (T02) and with N and N (T10, T04): both flags only concern the patient's
// copy, which row 2 does not send, so this service takes either value there.
func (f Flags) Validate() error {
	if !f.Present {
		return nil
	}
	const (
		row1 = "ligne 1 de la matrice MSSanté du volet (envoi aux professionnels et au patient)"
		row2 = "ligne 2 de la matrice MSSanté du volet (envoi aux professionnels seuls)"
		row3 = "ligne 3 de la matrice MSSanté du volet (envoi au patient seul)"
	)
	switch {
	case !f.ToProfessionals && !f.ToPatient:
		return &InvalidError{Field: FieldFlag("DESTMSSANTEPS"),
			Msg: "DESTMSSANTEPS et DESTMSSANTEPAT valent N : rien à envoyer par MSSanté (cas absent de la matrice MSSanté du volet)"}
	case f.ToProfessionals && f.MaskedForPros:
		row := row2
		if f.ToPatient {
			row = row1
		}
		return &InvalidError{Field: FieldFlag("MASQUE_PS"),
			Msg: "MASQUE_PS=Y avec DESTMSSANTEPS=Y : un document masqué aux professionnels ne leur est pas envoyé (" + row + " : MASQUE_PS=N)"}
	case f.ToProfessionals && f.ToPatient && f.InvisiblePatient:
		return &InvalidError{Field: FieldFlag("INVISIBLE_PATIENT"),
			Msg: "INVISIBLE_PATIENT=Y avec DESTMSSANTEPAT=Y (" + row1 + " : INVISIBLE_PATIENT=N ; pour ne pas l'envoyer au patient, DESTMSSANTEPAT=N, ligne 2)"}
	case f.ToProfessionals && f.ToPatient && f.InvisibleGuardians:
		return &InvalidError{Field: FieldFlag("INVISIBLE_REP_LEGAUX"),
			Msg: "INVISIBLE_REP_LEGAUX=Y avec DESTMSSANTEPAT=Y et DESTMSSANTEPS=Y (" + row1 + " : INVISIBLE_REP_LEGAUX=N)"}
	case !f.ToProfessionals && f.InvisiblePatient:
		return &InvalidError{Field: FieldFlag("INVISIBLE_PATIENT"),
			Msg: "INVISIBLE_PATIENT=Y avec DESTMSSANTEPAT=Y : un document invisible au patient ne lui est pas envoyé (" + row3 + " : INVISIBLE_PATIENT=N)"}
	case !f.ToProfessionals && f.SecretConnection:
		return &InvalidError{Field: FieldFlag("CONNEXION_SECRETE"),
			Msg: "CONNEXION_SECRETE=Y pour un envoi au patient seul (" + row3 + " : CONNEXION_SECRETE=N)"}
	case !f.ToProfessionals && f.ToDMP:
		return &InvalidError{Field: FieldFlag("DESTDMP"),
			Msg: "DESTDMP=Y pour un envoi au patient seul (" + row3 + " : DESTDMP=N)"}
	}
	return nil
}

// validate checks what the domain requires of any report, whatever its edge.
func (r Report) validate() error {
	if r.Action != ActionNew && r.Action != ActionReplace && r.Action != ActionDelete {
		return &InvalidError{Field: FieldAction, Msg: fmt.Sprintf("action inconnue %q", r.Action)}
	}
	parent := false
	for i, d := range r.documents() {
		idField, cdaField := documentFields(i)
		switch {
		case d.ID == "":
			return &InvalidError{Field: idField, Msg: "l'identifiant du document est vide"}
		case len(d.CDA) == 0 && r.Action != ActionDelete:
			return &InvalidError{Field: cdaField, Msg: "le document est vide"}
		case i > 0 && d.ID == r.Document.ID:
			return &InvalidError{Field: idField, Msg: fmt.Sprintf("les deux documents du message ont le même identifiant %s : chaque format a le sien", d.ID)}
		}
		parent = parent || d.ParentID != ""
	}
	if r.Action == ActionReplace && !parent {
		return &InvalidError{Field: FieldDocumentParent, Msg: "un remplacement doit nommer le document qu'il remplace"}
	}
	for i, rc := range r.Recipients {
		switch {
		case rc.Kind != KindProfessional && rc.Kind != KindOrganisation && rc.Kind != KindPatient:
			return &InvalidError{Field: fmt.Sprintf("recipients[%d].kind", i), Msg: fmt.Sprintf("type de destinataire inconnu %q", rc.Kind)}
		case rc.Role == "":
			return &InvalidError{Field: fmt.Sprintf("recipients[%d].role", i), Msg: "le rôle du destinataire est vide"}
		}
	}
	if err := checkText(reflect.ValueOf(r), ""); err != nil {
		return err
	}
	return r.Flags.Validate()
}

// maxTextLen is the longest text of a report this service stores, in bytes,
// but for the email bodies: far more than any HL7 field holds, and short
// enough for the indexes of PostgreSQL (a longer value would fail each time
// the message is sent again).
const maxTextLen = 512

// checkText returns an InvalidError naming the first text of v (a report or
// a part of one, named field) that cannot be stored as is: one holding a
// NUL character, which PostgreSQL refuses in text, or one longer than
// maxTextLen outside the email bodies.
func checkText(v reflect.Value, field string) error {
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		switch {
		case strings.IndexByte(s, 0) >= 0:
			return &InvalidError{Field: field, Msg: fmt.Sprintf("%s contient un caractère NUL", field)}
		case len(s) > maxTextLen && !strings.HasPrefix(field, "body_"):
			return &InvalidError{Field: field, Msg: fmt.Sprintf("%s est trop long (%d octets, au plus %d)", field, len(s), maxTextLen)}
		}
	case reflect.Pointer:
		if !v.IsNil() && v.Elem().Kind() == reflect.Struct && v.Type().Elem().PkgPath() == reflect.TypeFor[Report]().PkgPath() {
			return checkText(v.Elem(), field)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil // document bytes
		}
		for i := range v.Len() {
			if err := checkText(v.Index(i), fmt.Sprintf("%s[%d]", field, i)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Name == "Warnings" {
				continue
			}
			name := snakeCase(f.Name)
			if field != "" {
				name = field + "." + name
			}
			if err := checkText(v.Field(i), name); err != nil {
				return err
			}
		}
	}
	return nil
}

// snakeCase turns a Go field name into the name of the field in an
// InvalidError: OtherFormat → other_format, INSOID → insoid.
func snakeCase(name string) string {
	var b strings.Builder
	for i, c := range name {
		if i > 0 && unicode.IsUpper(c) && !unicode.IsUpper(rune(name[i-1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
