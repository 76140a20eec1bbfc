package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/ruleset"
	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/rules"
	"github.com/mssdispatch/mssdispatch/web/dashboard"
)

// This file holds the screen of the CME's rules: the rules in force and
// their versions, the editor of their YAML text with its preview, and the
// form of the common rules, which writes into that text (rules.Write).
// Everything is saved the one way: the text, as a new version.

// Rules keeps the CME's dispatch rules and their versions (a *ruleset.Store).
type Rules interface {
	InForce(ctx context.Context) (rules.Set, error)
	Version(ctx context.Context, version int) (rules.Set, []byte, error)
	History(ctx context.Context, limit int) ([]rules.Set, error)
	Set(ctx context.Context, source []byte, actor, comment string) (rules.Set, error)
	DryRun(ctx context.Context, source []byte, reports int) (ruleset.DryRun, error)
}

// rulesPage is the editor of the rules, or one version of them (Old).
type rulesPage struct {
	// InForce is the version in force.
	InForce rules.Set
	// Shown is the version read, when Old.
	Shown rules.Set
	Old   bool
	// Source is the YAML of the text area: the rules in force, or as typed
	// (Proposed).
	Source   string
	Proposed bool
	// Base is the version the text was started from; saving over a newer
	// version is refused.
	Base    int
	Comment string
	// Reports is the number of reports of the dry run.
	Reports    int
	MaxReports int
	// Rules summarise the rules of Source (empty when it does not parse).
	Rules []ruleView
	// Error says why the request cannot be served as it is.
	Error string
	// Mistakes are the mistakes of Source, in its order.
	Mistakes rules.Errors
	// Conflict is set when the rules changed since Base.
	Conflict string
	DryRun   *ruleset.DryRun
	CanEdit  bool
	// Form is the form of the common rules; Written, when not 0, is the
	// line of Source where it has just written its rule.
	Form    ruleForm
	Written int
	// DocumentTypes are the types of document the service received, for the form.
	DocumentTypes []readmodel.DocumentType
}

// ruleView is a rule summarised in French.
type ruleView struct {
	Position int
	Name     string
	When     []string
	Then     []string
	// Implicit is the default rule appended because the last rule written
	// does not match everything.
	Implicit bool
	// Up and Down are the moves the rule can make in the YAML.
	Up, Down bool
	// Form is whether the form of the common rules can edit it.
	Form bool
}

// newRulesPage starts the page of the rules for the request's user.
func (u *UI) newRulesPage(r *http.Request) (*rulesPage, error) {
	rs, err := u.cfg.Rules.InForce(r.Context())
	if err != nil {
		return nil, err
	}
	p := &rulesPage{InForce: rs, Base: rs.Version, Reports: ruleset.DefaultDryRunReports,
		MaxReports: ruleset.MaxDryRunReports, CanEdit: dashboard.CurrentUser(r).Can(auth.PermRules), Form: newRuleForm()}
	if p.CanEdit {
		if p.DocumentTypes, err = u.cfg.Views.DocumentTypes(r.Context()); err != nil {
			return nil, err
		}
	}
	return p, nil
}

const rulesTitle = "Règles d'envoi"

func (u *UI) getRulesPage(w http.ResponseWriter, r *http.Request) {
	p, err := u.newRulesPage(r)
	if err != nil {
		u.ServerError(w, r, err)
		return
	}
	_, source, err := u.cfg.Rules.Version(r.Context(), p.InForce.Version)
	if err != nil {
		u.ServerError(w, r, err)
		return
	}
	p.Source = string(source)
	p.Rules = ruleViews(p.InForce.Rules, source)
	u.Render(w, r, http.StatusOK, "rules", rulesTitle, "rules", p)
}

func (u *UI) getRulesVersionPage(w http.ResponseWriter, r *http.Request) {
	version, err := strconv.Atoi(chi.URLParam(r, "version"))
	if err != nil || version < 0 {
		u.NotFound(w, r, "Cette version des règles n'existe pas.")
		return
	}
	p, err := u.newRulesPage(r)
	if err != nil {
		u.ServerError(w, r, err)
		return
	}
	rs, source, err := u.cfg.Rules.Version(r.Context(), version)
	switch {
	case errors.Is(err, dispatch.ErrNotFound):
		u.NotFound(w, r, "Cette version des règles n'existe pas.")
		return
	case err != nil:
		u.ServerError(w, r, err)
		return
	}
	rs.Version = version
	p.Old, p.Shown, p.Source = true, rs, string(source)
	p.Rules = ruleViews(rs.Rules, source)
	u.Render(w, r, http.StatusOK, "rules", fmt.Sprintf("Règles, version %d", version), "rules", p)
}

// rulesHistoryPage lists the versions of the rules.
type rulesHistoryPage struct {
	InForce  int
	Versions []rules.Set
}

func (u *UI) getRulesHistoryPage(w http.ResponseWriter, r *http.Request) {
	history, err := u.cfg.Rules.History(r.Context(), 500)
	if err != nil {
		u.ServerError(w, r, err)
		return
	}
	p := rulesHistoryPage{Versions: history}
	if len(history) > 0 {
		p.InForce = history[0].Version
	}
	u.Render(w, r, http.StatusOK, "rules_history", "Historique des règles", "rules", p)
}

// rulesForm reads the editor's form: the page, with the text typed and the
// form of the common rules as filled, and the rules of the text. It answers
// itself (400 with the text's mistakes) when they are not usable.
func (u *UI) rulesForm(w http.ResponseWriter, r *http.Request) (*rulesPage, rules.Set, bool) {
	p, err := u.newRulesPage(r)
	if err != nil {
		u.ServerError(w, r, err)
		return nil, rules.Set{}, false
	}
	// Browsers send the lines of a text area ended by CRLF.
	p.Source, p.Proposed = strings.ReplaceAll(r.PostFormValue("source"), "\r\n", "\n"), true
	p.Comment = strings.TrimSpace(r.PostFormValue("comment"))
	p.Form = readRuleForm(r)
	if v := r.PostFormValue("base"); v != "" {
		if p.Base, err = strconv.Atoi(v); err != nil {
			p.Base = -1
		}
	}
	if v := strings.TrimSpace(r.PostFormValue("reports")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > ruleset.MaxDryRunReports {
			p.Error = fmt.Sprintf("Le nombre de comptes rendus doit être un nombre de 1 à %d.", ruleset.MaxDryRunReports)
			u.Render(w, r, http.StatusBadRequest, "rules", rulesTitle, "rules", p)
			return nil, rules.Set{}, false
		}
		p.Reports = n
	}
	rs, ok := u.parseSource(w, r, p)
	return p, rs, ok
}

// parseSource reads the page's text into its rules, their summary and what
// the rule of the form keeps, or shows the text's mistakes and answers
// 400; it reports whether the text is usable.
func (u *UI) parseSource(w http.ResponseWriter, r *http.Request, p *rulesPage) (rules.Set, bool) {
	rs, err := rules.Parse([]byte(p.Source))
	if err != nil {
		u.ruleFormError(w, r, p, err)
		return rules.Set{}, false
	}
	p.Rules = ruleViews(rs.Rules, []byte(p.Source))
	if p.Form.Old != "" {
		if f, ok := formOf(rs, []byte(p.Source), p.Form.Old); ok {
			p.Form.Kept = f.Kept
		}
	}
	return rs, true
}

// ruleFormError shows the mistakes of err on the editor and answers 400,
// or answers 500 when err is not about the rules.
func (u *UI) ruleFormError(w http.ResponseWriter, r *http.Request, p *rulesPage, err error) {
	mistakes, ok := rules.Mistakes(err)
	if !ok {
		u.ServerError(w, r, err)
		return
	}
	p.Rules, p.Mistakes = nil, mistakes
	u.Render(w, r, http.StatusBadRequest, "rules", rulesTitle, "rules", p)
}

// postRulesDryRun previews what the text's rules would change, saving nothing.
func (u *UI) postRulesDryRun(w http.ResponseWriter, r *http.Request) {
	if p, _, ok := u.rulesForm(w, r); ok {
		u.preview(w, r, p)
	}
}

// preview shows the page with what its text's rules would change.
func (u *UI) preview(w http.ResponseWriter, r *http.Request, p *rulesPage) {
	dr, err := u.cfg.Rules.DryRun(r.Context(), []byte(p.Source), p.Reports)
	if err != nil {
		u.ruleFormError(w, r, p, err)
		return
	}
	p.DryRun = &dr
	u.Render(w, r, http.StatusOK, "rules", rulesTitle, "rules", p)
}

// postRules stores the text's rules as the next version.
func (u *UI) postRules(w http.ResponseWriter, r *http.Request) {
	p, _, ok := u.rulesForm(w, r)
	if !ok {
		return
	}
	if p.Base != p.InForce.Version {
		p.Conflict = fmt.Sprintf("Les règles ont changé pendant votre modification (version %d, par %s): "+
			"vérifiez votre texte puis enregistrez à nouveau.", p.InForce.Version, p.InForce.CreatedBy)
		p.Base = p.InForce.Version
		u.Render(w, r, http.StatusConflict, "rules", rulesTitle, "rules", p)
		return
	}
	user := dashboard.CurrentUser(r)
	rs, err := u.cfg.Rules.Set(r.Context(), []byte(p.Source), user.Username, p.Comment)
	if err != nil {
		u.ruleFormError(w, r, p, err)
		return
	}
	dashboard.SetFlash(w, false, fmt.Sprintf("Règles enregistrées: version %d, appliquée aux comptes rendus reçus dès maintenant.", rs.Version))
	http.Redirect(w, r, "/rules", http.StatusSeeOther)
}

// postRulesMove moves a rule of the text up or down (form field move:
// "up:<name>" or "down:<name>") and shows the text, saving nothing.
func (u *UI) postRulesMove(w http.ResponseWriter, r *http.Request) {
	p, _, ok := u.rulesForm(w, r)
	if !ok {
		return
	}
	dir, name, _ := strings.Cut(r.PostFormValue("move"), ":")
	delta := map[string]int{"up": -1, "down": 1}[dir]
	if delta == 0 {
		u.BadRequest(w, r, "Déplacement inconnu.")
		return
	}
	moved, err := rules.Move([]byte(p.Source), name, delta)
	if err != nil {
		u.ruleFormError(w, r, p, &rules.Error{Msg: err.Error()})
		return
	}
	p.Source = string(moved)
	if _, ok := u.parseSource(w, r, p); ok {
		u.Render(w, r, http.StatusOK, "rules", rulesTitle, "rules", p)
	}
}

// postRulesForm serves the form of the common rules, saving nothing. Its
// field form says what to do: "edit:<name>" fills it with that rule of the
// text, "new" empties it, "write" writes it into the text (see rules.Write)
// and previews the text as "Prévisualiser" does.
func (u *UI) postRulesForm(w http.ResponseWriter, r *http.Request) {
	p, rs, ok := u.rulesForm(w, r)
	if !ok {
		return
	}
	switch action := r.PostFormValue("form"); {
	case action == "new":
		p.Form = newRuleForm()
	case strings.HasPrefix(action, "edit:"):
		f, ok := formOf(rs, []byte(p.Source), strings.TrimPrefix(action, "edit:"))
		if !ok {
			u.BadRequest(w, r, "Cette règle ne se modifie pas avec le formulaire: modifiez-la dans le texte.")
			return
		}
		p.Form = f
	case action == "write":
		if p.Form.Error = p.Form.check(rs, []byte(p.Source)); p.Form.Error != "" {
			u.Render(w, r, http.StatusBadRequest, "rules", rulesTitle, "rules", p)
			return
		}
		source, line, err := rules.Write([]byte(p.Source), p.Form.Old, p.Form.simple(), rs)
		if err != nil {
			u.ServerError(w, r, err)
			return
		}
		p.Source, p.Written, p.Form.Old = string(source), line, p.Form.Name
		rs, ok := u.parseSource(w, r, p)
		if !ok {
			return
		}
		if f, ok := formOf(rs, source, p.Form.Name); ok { // the form as the text now says
			p.Form = f
		}
		u.preview(w, r, p)
		return
	default:
		u.BadRequest(w, r, "Action du formulaire inconnue.")
		return
	}
	u.Render(w, r, http.StatusOK, "rules", rulesTitle, "rules", p)
}

// ruleViews summarises rules, parsed from source: the rules after those
// written there are implicit (the appended default rule).
func ruleViews(list []rules.Rule, source []byte) []ruleView {
	rs := rules.Set{Rules: list}
	editable, written := rules.Editable(rs, source)
	out := make([]ruleView, 0, len(list))
	for i, rule := range list {
		out = append(out, ruleView{Position: i + 1, Name: rule.Name, When: matchText(rule.Match),
			Then: actionText(rule.Action), Implicit: i >= written, Up: i > 0 && i < written, Down: i < written-1,
			Form: editable[i]})
	}
	return out
}

// The form of the common rules.

// ruleForm is the form of the common rules: a type of document and what to
// do with it (send at once, after review or after a delay; a copy to the
// patient or not; paper), which the form writes into the text as a rule.
type ruleForm struct {
	// Old is the name of the rule edited, empty for a new rule.
	Old  string
	Name string
	// Code is the LOINC code of the type of document.
	Code string
	Send string
	// Delay is the delay of Send delay, in hours, as typed.
	Delay          string
	Patient, Paper string
	// Kept says what the rule edited holds besides, which the form keeps.
	Kept []string
	// Error says what to correct in the form.
	Error string
}

// simple is the rule f writes (f checked: its delay is a number).
func (f ruleForm) simple() rules.Simple {
	hours, _ := strconv.Atoi(f.Delay)
	return rules.Simple{Name: f.Name, Code: f.Code, Send: f.Send, DelayHours: hours, Patient: f.Patient, Paper: f.Paper}
}

// newRuleForm is the empty form: a rule as the default one.
func newRuleForm() ruleForm {
	return ruleForm{Send: rules.SendAuto, Patient: rules.PatientSend, Paper: rules.PaperDirectory}
}

// readRuleForm reads the form of the common rules from the request.
func readRuleForm(r *http.Request) ruleForm {
	f := newRuleForm()
	f.Old = strings.TrimSpace(r.PostFormValue("rule_old"))
	f.Name = strings.TrimSpace(r.PostFormValue("rule_name"))
	f.Code = strings.TrimSpace(r.PostFormValue("rule_code"))
	f.Delay = strings.TrimSpace(r.PostFormValue("rule_delay"))
	for field, v := range map[string]*string{"rule_send": &f.Send, "rule_patient": &f.Patient, "rule_paper": &f.Paper} {
		if s := r.PostFormValue(field); s != "" {
			*v = s
		}
	}
	return f
}

// loincCode is the syntax of a LOINC code: digits, a dash, a check digit.
var loincCode = regexp.MustCompile(`^[0-9]{1,7}-[0-9]$`)

// check returns what to correct in f, in French, before it is written into
// source, whose rules are rs; "" when it can be written.
func (f ruleForm) check(rs rules.Set, source []byte) string {
	hours, err := strconv.Atoi(f.Delay)
	switch {
	case f.Name == "":
		return "Donnez un nom à la règle."
	case !loincCode.MatchString(f.Code):
		return "Le type de document est un code LOINC: des chiffres, un tiret et un chiffre (par exemple 11502-2)."
	case !slices.Contains([]string{rules.SendAuto, rules.SendReview, rules.SendDelay}, f.Send),
		!slices.Contains([]string{rules.PatientSend, rules.PatientNever}, f.Patient),
		!slices.Contains([]string{rules.PaperDirectory, rules.PaperAlways, rules.PaperNever}, f.Paper):
		return "Choisissez l'envoi, la copie au patient et le courrier papier parmi ceux proposés."
	case f.Send == rules.SendDelay && (err != nil || hours < 1 || hours > 720):
		return "Le délai est un nombre d'heures de 1 à 720."
	}
	for _, rule := range rs.Rules {
		switch {
		case rule.Name == f.Name && f.Name != f.Old:
			return fmt.Sprintf("Une règle s'appelle déjà « %s »: choisissez un autre nom.", f.Name)
		case f.Old == "" && len(rule.Match.DocumentCodes) == 1 && strings.EqualFold(strings.TrimSpace(rule.Match.DocumentCodes[0]), f.Code) && onlyCodes(rule.Match):
			return fmt.Sprintf("La règle « %s » décide déjà de ce type de document: modifiez-la plutôt (bouton « Modifier » de la liste).", rule.Name)
		}
	}
	if _, ok := formOf(rs, source, f.Old); f.Old != "" && !ok {
		return fmt.Sprintf("La règle « %s » a changé dans le texte: modifiez-la dans le texte, ou écrivez une nouvelle règle.", f.Old)
	}
	return ""
}

// onlyCodes reports whether m has no condition but document types.
func onlyCodes(m rules.Match) bool {
	m.DocumentCodes = nil
	return m.Empty()
}

// formOf fills the form with the rule called name of rs, read from source,
// when the form can edit it.
func formOf(rs rules.Set, source []byte, name string) (ruleForm, bool) {
	i := slices.IndexFunc(rs.Rules, func(r rules.Rule) bool { return r.Name == name })
	if i < 0 {
		return ruleForm{}, false
	}
	if editable, _ := rules.Editable(rs, source); !editable[i] {
		return ruleForm{}, false
	}
	rule := rs.Rules[i]
	a := rule.Action
	f := ruleForm{Old: name, Name: name, Code: strings.TrimSpace(rule.Match.DocumentCodes[0]), Send: a.Send,
		Patient: a.Patient, Paper: a.Paper}
	if a.Send == rules.SendDelay {
		f.Delay = strconv.Itoa(a.DelayHours)
	}
	// What the rule says besides what the form sets, in the words of the list.
	if !onlyCodes(rule.Match) {
		m := rule.Match
		m.DocumentCodes = nil
		f.Kept = matchText(m)
	}
	set := rules.Default.Action
	set.Send, set.DelayHours, set.Patient, set.Paper = a.Send, a.DelayHours, a.Patient, a.Paper
	formOnly := actionText(set)
	for _, s := range actionText(a) {
		if !slices.Contains(formOnly, s) {
			f.Kept = append(f.Kept, s)
		}
	}
	return f, true
}
