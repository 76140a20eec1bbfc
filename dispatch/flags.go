package dispatch

import "fmt"

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
}

// DefaultFlags are the flags of a report that carries none.
var DefaultFlags = Flags{ToProfessionals: true}

// SendsToProfessionals reports whether the listed professionals may receive the document.
func (f Flags) SendsToProfessionals() bool { return f.ToProfessionals && !f.MaskedForPros }

// SendsToPatient reports whether the patient's mailbox receives the document.
func (f Flags) SendsToPatient() bool { return f.ToPatient && !f.InvisiblePatient }

// Validate checks the flags against the volet's matrix of MSSanté exchanges
// (règles de gestion MSSanté): the combinations it lists are the only ones
// allowed. It also applies the rule of this service that a document masked
// to professionals is never sent to them.
func (f Flags) Validate() error {
	if !f.Present {
		return nil
	}
	switch {
	case f.SecretConnection:
		return &InvalidError{Field: "flags.CONNEXION_SECRETE", Msg: "a document under a secret connection is never sent by MSSanté"}
	case !f.ToProfessionals && !f.ToPatient:
		return &InvalidError{Field: "flags.DESTMSSANTEPS", Msg: "neither DESTMSSANTEPS nor DESTMSSANTEPAT is Y: nothing to send"}
	case f.ToProfessionals && f.MaskedForPros:
		return &InvalidError{Field: "flags.MASQUE_PS", Msg: "DESTMSSANTEPS=Y with MASQUE_PS=Y: a document masked to professionals is not sent to them"}
	case f.ToProfessionals && f.ToPatient && (f.InvisiblePatient || f.InvisibleGuardians):
		return &InvalidError{Field: "flags.INVISIBLE_PATIENT", Msg: "DESTMSSANTEPAT=Y needs INVISIBLE_PATIENT=N and INVISIBLE_REP_LEGAUX=N when DESTMSSANTEPS=Y"}
	case f.ToProfessionals && !f.ToPatient && f.InvisibleGuardians:
		return &InvalidError{Field: "flags.INVISIBLE_REP_LEGAUX", Msg: "INVISIBLE_REP_LEGAUX=Y is only allowed for a document sent to the patient alone"}
	case !f.ToProfessionals && f.ToPatient && f.InvisiblePatient:
		return &InvalidError{Field: "flags.INVISIBLE_PATIENT", Msg: "DESTMSSANTEPAT=Y with INVISIBLE_PATIENT=Y"}
	case !f.ToProfessionals && f.ToPatient && f.ToDMP:
		return &InvalidError{Field: "flags.DESTDMP", Msg: "DESTDMP=Y is not allowed for a document sent to the patient alone"}
	}
	return nil
}

// validate checks what the domain requires of any report, whatever its edge.
func (r Report) validate() error {
	switch {
	case r.Document.ID == "":
		return &InvalidError{Field: "document.id", Msg: "the document id is empty"}
	case len(r.Document.CDA) == 0 && r.Action != ActionDelete:
		return &InvalidError{Field: "document.cda", Msg: "the document is empty"}
	case r.Action == ActionReplace && r.Document.ParentID == "":
		return &InvalidError{Field: "document.parent_id", Msg: "a replacement must name the document it replaces"}
	case r.Action != ActionNew && r.Action != ActionReplace && r.Action != ActionDelete:
		return &InvalidError{Field: "action", Msg: fmt.Sprintf("unknown action %q", r.Action)}
	}
	for i, rc := range r.Recipients {
		switch {
		case rc.Kind != KindProfessional && rc.Kind != KindOrganisation && rc.Kind != KindPatient:
			return &InvalidError{Field: fmt.Sprintf("recipients[%d].kind", i), Msg: fmt.Sprintf("unknown recipient kind %q", rc.Kind)}
		case rc.Role == "":
			return &InvalidError{Field: fmt.Sprintf("recipients[%d].role", i), Msg: "the recipient's role is empty"}
		}
	}
	if err := r.Flags.Validate(); err != nil {
		return err
	}
	if r.Flags.SendsToPatient() && !r.Patient.INSQualified {
		return &InvalidError{Field: "patient.ins", Msg: "DESTMSSANTEPAT=Y needs a qualified INS (identity status VALI)"}
	}
	return nil
}
