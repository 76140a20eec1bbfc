package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Set is a version of the CME's dispatch rules: the first rule that
// matches a delivery decides it; the last rule matches everything.
type Set struct {
	// Version is 0 for the built-in default, then 1, 2… as the CME changes them.
	Version   int       `json:"version" yaml:"-"`
	Rules     []Rule    `json:"rules" yaml:"rules"`
	Comment   string    `json:"comment,omitempty" yaml:"comment,omitempty"`
	CreatedBy string    `json:"created_by,omitempty" yaml:"-"`
	CreatedAt time.Time `json:"created_at" yaml:"-"`
}

// Rule is one dispatch rule: when Match matches, Action applies.
type Rule struct {
	Name   string `json:"name" yaml:"name"`
	Match  Match  `json:"match" yaml:"match,omitempty"`
	Action Action `json:"action" yaml:"action"`
}

// Match says which deliveries a rule applies to. Each non-empty list must
// contain the delivery's value; an empty Match matches every delivery.
type Match struct {
	// DocumentCodes are LOINC codes of the document (ClinicalDocument/code).
	DocumentCodes []string `json:"document_codes,omitempty" yaml:"document_codes,omitempty"`
	// Services are care units as the DPI names them (PV1-3, ORC/OBR).
	Services []string `json:"services,omitempty" yaml:"services,omitempty"`
	// Authors are RPPS numbers (11 digits) of the document's author.
	Authors []string `json:"authors,omitempty" yaml:"authors,omitempty"`
	// RecipientKinds are professional, organisation or patient.
	RecipientKinds []string `json:"recipient_kinds,omitempty" yaml:"recipient_kinds,omitempty"`
	// Confidentiality are codes of the CDA confidentialityCode (N, R, V).
	Confidentiality []string `json:"confidentiality,omitempty" yaml:"confidentiality,omitempty"`
}

// Send modes of a rule.
const (
	SendAuto   = "auto"   // deliveries go out at once
	SendReview = "review" // a secretary approves each delivery first
	SendDelay  = "delay"  // deliveries go out DelayHours after the report
)

// Patient policies of a rule.
const (
	PatientSend  = "send"  // the patient gets the document when the DPI's flags say so
	PatientNever = "never" // never to the patient, whatever the flags
)

// Paper policies of a rule: the values of correspondents' paper policy,
// which the resolver applies (a test of package dispatch keeps them equal).
const (
	PaperDirectory = "directory" // as the directory says: a copy unless dématérialisation
	PaperAlways    = "always"    // always a paper copy when a postal address is known
	PaperNever     = "never"     // never on paper: recipients without MSSanté wait in review
)

// RecipientKinds are the values of match.recipient_kinds: the kinds of
// recipients of package correspondents (a test of package dispatch keeps
// them equal).
var RecipientKinds = []string{"professional", "organisation", "patient"}

// Fallbacks of a rule, when an MSSanté delivery fails or is not acknowledged in time.
const (
	FallbackPaper    = "paper"    // a paper delivery (review without a postal address)
	FallbackWorklist = "worklist" // the secretaries' worklist of failures
)

// Address mismatch policies of a rule, for a DPI address the directory does
// not know for the recipient (the reason dpi_address_mismatch of package
// correspondents).
const (
	MismatchSend   = "send"   // use the DPI's address (it is in the trust space)
	MismatchReview = "review" // a secretary checks it first
)

// Action is what a rule does to the deliveries it matches.
type Action struct {
	// Send is auto, review or delay. Defaults to auto.
	Send string `json:"send,omitempty" yaml:"send,omitempty"`
	// DelayHours is the delay of Send delay (1 to 720).
	DelayHours int `json:"delay_hours,omitempty" yaml:"delay_hours,omitempty"`
	// Patient is send or never. Defaults to send.
	Patient string `json:"patient,omitempty" yaml:"patient,omitempty"`
	// Paper is directory, always or never. Defaults to directory.
	Paper string `json:"paper,omitempty" yaml:"paper,omitempty"`
	// AddressMismatch is send or review. Defaults to send.
	AddressMismatch string `json:"address_mismatch,omitempty" yaml:"address_mismatch,omitempty"`
	// OnFailure is paper or worklist. Defaults to paper.
	OnFailure string `json:"on_failure,omitempty" yaml:"on_failure,omitempty"`
	// NoDSNHours, when not 0, applies NoDSNAction to an email without a
	// delivery notification that many hours after it was sent.
	NoDSNHours  int    `json:"no_dsn_hours,omitempty" yaml:"no_dsn_hours,omitempty"`
	NoDSNAction string `json:"no_dsn_action,omitempty" yaml:"no_dsn_action,omitempty"`
	// UnreadHours, when not 0, applies UnreadAction to an email without a read
	// notification that many hours after it was sent (when one was asked).
	UnreadHours  int    `json:"unread_hours,omitempty" yaml:"unread_hours,omitempty"`
	UnreadAction string `json:"unread_action,omitempty" yaml:"unread_action,omitempty"`
}

// Default is the rule in force when the CME set none, and the last rule
// of every rule set: send automatically, follow the directory for paper,
// fall back to paper when an email fails.
var Default = Rule{Name: "défaut", Action: Action{Send: SendAuto, Patient: PatientSend,
	Paper: PaperDirectory, AddressMismatch: MismatchSend, OnFailure: FallbackPaper,
	NoDSNAction: FallbackWorklist, UnreadAction: FallbackWorklist}}

// DefaultSet is the rule set in force before the CME writes one.
var DefaultSet = Set{Rules: []Rule{Default}}

// Error is a mistake in a rule set, with the rule and field at fault.
type Error struct {
	Rule  int    // 1-based position of the rule, 0 for the whole set
	Field string // e.g. action.delay_hours
	Msg   string // in French
	// Line is the line of the YAML source at fault, 0 when unknown.
	Line int
	// Name is the name of the rule, when the source gives it.
	Name string
}

// Error says the mistake in French, as the rules' authors read it: "règle
// 3 (ligne 14): action.delay_hours: 900: un délai va de 1 à 720 heures
// (règle « Biologie »)".
func (e *Error) Error() string {
	s := "règles"
	if e.Rule != 0 {
		s = fmt.Sprintf("règle %d", e.Rule)
	}
	if e.Line > 0 {
		s += fmt.Sprintf(" (ligne %d)", e.Line)
	}
	if e.Field != "" {
		s += ": " + e.Field
	}
	s += ": " + e.Msg
	if e.Name != "" {
		s += fmt.Sprintf(" (règle « %s »)", e.Name)
	}
	return s
}

// Errors are all the mistakes of a rule set, in the order of its
// source; errors.As finds the first as an *Error.
type Errors []*Error

// Error says each mistake on a line of its own.
func (errs Errors) Error() string {
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the mistakes, for errors.As and errors.Is.
func (errs Errors) Unwrap() []error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return out
}

// Mistakes returns the mistakes err is about, and whether it is about
// rules (Errors, or a single *Error): the API and the rules screen show
// them all.
func Mistakes(err error) (Errors, bool) {
	var errs Errors
	if errors.As(err, &errs) && len(errs) > 0 {
		return errs, true
	}
	var re *Error
	if errors.As(err, &re) {
		return Errors{re}, true
	}
	return nil, false
}

// Normalise fills the defaults of rs and checks it: known values, a name per
// rule, delays and deadlines in range, and a last rule matching everything
// (Default is appended when there is none). It returns every mistake as
// Errors.
func (rs *Set) Normalise() error {
	if errs := rs.normalise(); len(errs) > 0 {
		return errs
	}
	return nil
}

// normalise is Normalise, returning the mistakes without their lines.
func (rs *Set) normalise() Errors {
	if len(rs.Rules) == 0 {
		return Errors{{Msg: "aucune règle"}}
	}
	var errs Errors
	names := map[string]int{}
	for i := range rs.Rules {
		r := &rs.Rules[i]
		bad := func(field, format string, args ...any) {
			errs = append(errs, &Error{Rule: i + 1, Field: field, Msg: fmt.Sprintf(format, args...)})
		}
		r.Name = strings.TrimSpace(r.Name)
		switch j, dup := names[r.Name]; {
		case r.Name == "":
			bad("name", "chaque règle a besoin d'un nom")
		case dup:
			bad("name", "%q est déjà le nom de la règle %d", r.Name, j)
		default:
			names[r.Name] = i + 1
		}
		for _, k := range r.Match.RecipientKinds {
			if !slices.Contains(RecipientKinds, k) {
				bad("match.recipient_kinds", "%q: valeurs possibles professional, organisation, patient", k)
			}
		}
		for _, a := range r.Match.Authors {
			if !rppsSyntax(a) {
				bad("match.authors", "%q n'est pas un RPPS à 11 chiffres", a)
			}
		}
		a := &r.Action
		for _, c := range []struct {
			field string
			value *string
			def   string
			allow []string
		}{
			{"action.send", &a.Send, SendAuto, []string{SendAuto, SendReview, SendDelay}},
			{"action.patient", &a.Patient, PatientSend, []string{PatientSend, PatientNever}},
			{"action.paper", &a.Paper, PaperDirectory, []string{PaperDirectory, PaperAlways, PaperNever}},
			{"action.address_mismatch", &a.AddressMismatch, MismatchSend, []string{MismatchSend, MismatchReview}},
			{"action.on_failure", &a.OnFailure, FallbackPaper, []string{FallbackPaper, FallbackWorklist}},
			{"action.no_dsn_action", &a.NoDSNAction, FallbackWorklist, []string{FallbackPaper, FallbackWorklist}},
			{"action.unread_action", &a.UnreadAction, FallbackWorklist, []string{FallbackPaper, FallbackWorklist}},
		} {
			if *c.value == "" {
				*c.value = c.def
			}
			if !slices.Contains(c.allow, *c.value) {
				bad(c.field, "%q: valeurs possibles %s", *c.value, strings.Join(c.allow, ", "))
			}
		}
		switch {
		case a.Send == SendDelay && (a.DelayHours < 1 || a.DelayHours > 720):
			bad("action.delay_hours", "%d: un délai va de 1 à 720 heures", a.DelayHours)
		case a.Send != SendDelay && a.DelayHours != 0:
			bad("action.delay_hours", "seulement avec send: delay")
		}
		if a.NoDSNHours < 0 || a.NoDSNHours > 720 {
			bad("action.no_dsn_hours", "%d: de 0 (désactivé) à 720 heures", a.NoDSNHours)
		}
		if a.UnreadHours < 0 || a.UnreadHours > 2160 {
			bad("action.unread_hours", "%d: de 0 (désactivé) à 2160 heures", a.UnreadHours)
		}
	}
	if last := rs.Rules[len(rs.Rules)-1]; !last.Match.Empty() {
		if taken, ok := names[Default.Name]; ok {
			errs = append(errs, &Error{Rule: taken, Field: "name",
				Msg: fmt.Sprintf("%q est le nom de la règle par défaut, ajoutée parce que la dernière règle ne vaut pas pour tous les envois", Default.Name)})
		} else if len(errs) == 0 {
			rs.Rules = append(rs.Rules, Default)
		}
	}
	return errs
}

// rppsSyntax reports whether s is written as an RPPS number: 11 digits
// (the rules have no database, hence not correspondents.NationalID, whose
// RPPS form is "8" + these 11 digits).
func rppsSyntax(s string) bool {
	return len(s) == 11 && strings.Trim(s, "0123456789") == ""
}

// Empty reports whether m matches every delivery.
func (m Match) Empty() bool {
	return len(m.DocumentCodes)+len(m.Services)+len(m.Authors)+len(m.RecipientKinds)+len(m.Confidentiality) == 0
}

// Facts are what a rule matches on, for one recipient of a report.
type Facts struct {
	DocumentCode    string
	Service         string
	AuthorRPPS      string
	RecipientKind   string
	Confidentiality string
}

// matches reports whether m matches f.
func (m Match) matches(f Facts) bool {
	in := func(list []string, v string) bool {
		return len(list) == 0 || slices.ContainsFunc(list, func(s string) bool { return strings.EqualFold(strings.TrimSpace(s), v) })
	}
	return in(m.DocumentCodes, f.DocumentCode) && in(m.Services, f.Service) && in(m.Authors, f.AuthorRPPS) &&
		in(m.RecipientKinds, f.RecipientKind) && in(m.Confidentiality, f.Confidentiality)
}

// Decide returns the first rule of rs that matches f; a normalised rule set
// always has one.
func (rs Set) Decide(f Facts) Rule {
	for _, r := range rs.Rules {
		if r.Match.matches(f) {
			return r
		}
	}
	return Default
}
