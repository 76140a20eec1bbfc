package admin

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/quarantine"
	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/internal/redact"
	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/rules"
	"github.com/mssdispatch/mssdispatch/web/dashboard"
)

// This file holds the frame of the administration screens (UI, their
// routes), and the screens of the CME and of the administrators: the
// summary of the dispatch rules (their screen is ui_rules.go), the directory
// and the local correspondents, the quarantine, the audit log and the users.

// Config configures the administration screens.
type Config struct {
	// Directory, Rules, Views, HL7, Quarantine, Audit and Accounts are
	// the services behind the screens (a *correspondents.Store, a
	// *ruleset.Store, a *readmodel.Reader, an *hl7intake.Handler, a
	// *quarantine.Desk, an *audit.Log, an *auth.Store). Required.
	Directory  Directory
	Rules      Rules
	Views      DocumentTypes
	HL7        Reprocessor
	Quarantine Quarantine
	Audit      AuditLog
	Accounts   *auth.Store
	// Logger logs what cannot be answered (an export cut short). Required.
	Logger *slog.Logger
}

//go:embed templates
var templates embed.FS

// UI serves the administration screens, their pages rendered in the
// dashboard's frame (*dashboard.UI: Render, the error pages).
type UI struct {
	*dashboard.UI
	cfg Config
}

// New returns the administration screens, their pages added to frame's.
func New(frame *dashboard.UI, cfg Config) (*UI, error) {
	if err := frame.AddPages(templates); err != nil {
		return nil, err
	}
	return &UI{UI: frame, cfg: cfg}, nil
}

// Directory searches the national directory and keeps the hospital's local
// directory (a *correspondents.Store).
type Directory interface {
	Search(ctx context.Context, q correspondents.SearchQuery) ([]correspondents.SearchResult, error)
	ListLocal(ctx context.Context, q string, limit int) ([]correspondents.LocalCorrespondent, error)
	Local(ctx context.Context, id int64) (correspondents.LocalCorrespondent, error)
	SaveLocal(ctx context.Context, c correspondents.LocalCorrespondent, actor string) (correspondents.LocalCorrespondent, error)
	DeleteLocal(ctx context.Context, id int64, actor string) error
	ProposeLocal(ctx context.Context, c correspondents.LocalCorrespondent, actor, why string) (correspondents.LocalProposal, error)
	LocalProposals(ctx context.Context, f correspondents.ProposalFilter) ([]correspondents.LocalProposal, error)
	ApplyProposal(ctx context.Context, id int64, actor string) (correspondents.LocalCorrespondent, error)
	RejectProposal(ctx context.Context, id int64, actor, why string) error
	ImportStatuses(ctx context.Context) ([]correspondents.ImportStatus, error)
}

// AuditLog is the audit log, for its journal (an *audit.Log).
type AuditLog interface {
	Read(ctx context.Context, f audit.Filter) ([]audit.Record, error)
	Export(ctx context.Context, actor string, f audit.Filter, w io.Writer) (int, error)
}

// Quarantine lists the messages the intake refused and sets them aside (a
// *quarantine.Desk); the HL7 intake processes them again (Reprocessor).
type Quarantine interface {
	List(ctx context.Context, f quarantine.Filter) ([]quarantine.Message, error)
	Raw(ctx context.Context, viewer string, id int64) ([]byte, error)
	Dismiss(ctx context.Context, id int64, user string, services []string, why string) error
}

// DocumentTypes lists the types of document the service received, for the
// rules screen's form (a *readmodel.Reader).
type DocumentTypes interface {
	DocumentTypes(ctx context.Context) ([]readmodel.DocumentType, error)
}

// Reprocessor runs a quarantined message through the intake again, for the
// quarantine's "Retraiter" (an *hl7intake.Handler).
type Reprocessor interface {
	Reprocess(ctx context.Context, id int64, user string, services []string) (quarantine.Reprocessed, error)
}

// adminPageSize is the length of a page of the quarantine and the audit log.
const adminPageSize = 50

// Routes mounts the rules, directory, quarantine, audit and users screens
// on r, which requires a user.
func (u *UI) Routes(r chi.Router) {
	r.Get("/rules", u.getRulesPage)
	r.Get("/rules/history", u.getRulesHistoryPage)
	r.Get("/rules/{version}", u.getRulesVersionPage)
	r.Get("/directory", u.getDirectoryPage)
	r.Get("/quarantine", u.getQuarantinePage)
	r.Group(func(r chi.Router) {
		r.Use(auth.Require(auth.PermAct))
		r.Post("/quarantine/{id}/reprocess", u.postQuarantineReprocess)
		r.Post("/quarantine/{id}/dismiss", u.postQuarantineDismiss)
		r.Post("/directory/proposals", u.postProposal)
	})
	r.Group(func(r chi.Router) {
		r.Use(auth.Require(auth.PermRules))
		r.Post("/rules", u.postRules)
		r.Post("/rules/dry-run", u.postRulesDryRun)
		r.Post("/rules/move", u.postRulesMove)
		r.Post("/rules/form", u.postRulesForm)
	})
	r.Group(func(r chi.Router) {
		r.Use(auth.Require(auth.PermCorrespondents))
		r.Post("/directory/local", u.postLocal)
		r.Post("/directory/local/{id}/delete", u.postLocalDelete)
		r.Post("/directory/proposals/{id}/{decision}", u.postProposalDecision)
	})
	r.Group(func(r chi.Router) {
		r.Use(auth.Require(auth.PermAdmin))
		r.Get("/quarantine/{id}/raw", u.getQuarantineRaw)
		r.Get("/audit", u.getAuditPage)
		r.Get("/audit.csv", u.getAuditCSV)
		r.Get("/admin/users", u.getUsersPage)
		r.Post("/admin/users", u.postUser)
		r.Post("/admin/users/{username}/{action}", u.postUserAction)
	})
}

// beforeParam reads the keyset cursor ?before= (0 when absent); it answers
// 400 itself when it is not a positive integer.
func (u *UI) beforeParam(w http.ResponseWriter, r *http.Request) (int64, bool) {
	v := r.URL.Query().Get("before")
	if v == "" {
		return 0, true
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		u.BadRequest(w, r, "Le paramètre before doit être un numéro.")
		return 0, false
	}
	return id, true
}

// olderURL is the link to the page after the one ending with the id last.
func olderURL(r *http.Request, last int64) string {
	q := r.URL.Query()
	q.Set("before", strconv.FormatInt(last, 10))
	return r.URL.Path + "?" + q.Encode()
}

// The summary of the rules (ui_rules.go), in French.

var (
	kindLabels = map[string]string{dispatch.KindProfessional: "professionnel", dispatch.KindOrganisation: "établissement",
		dispatch.KindPatient: "patient"}
	confidentialityLabels = map[string]string{"N": "normale (N)", "R": "restreinte (R)", "V": "très restreinte (V)"}
	fallbackLabels        = map[string]string{rules.FallbackPaper: "courrier papier", rules.FallbackWorklist: "liste des échecs"}
)

// matchText says in French which deliveries m matches.
func matchText(m rules.Match) []string {
	var out []string
	add := func(what string, values []string, labels map[string]string) {
		if len(values) == 0 {
			return
		}
		shown := make([]string, len(values))
		for i, v := range values {
			shown[i] = dashboard.Label(labels, v)
		}
		out = append(out, what+": "+strings.Join(shown, ", "))
	}
	add("documents (LOINC)", m.DocumentCodes, nil)
	add("services", m.Services, nil)
	add("auteurs (RPPS)", m.Authors, nil)
	add("destinataires", m.RecipientKinds, kindLabels)
	add("confidentialité", m.Confidentiality, confidentialityLabels)
	if len(out) == 0 {
		return []string{"tous les envois"}
	}
	return out
}

// actionText says in French what a (normalised) action does.
func actionText(a rules.Action) []string {
	var out []string
	switch a.Send {
	case rules.SendReview:
		out = append(out, "vérification par le secrétariat avant envoi")
	case rules.SendDelay:
		out = append(out, fmt.Sprintf("envoi différé de %d h", a.DelayHours))
	default:
		out = append(out, "envoi automatique")
	}
	if a.Patient == rules.PatientNever {
		out = append(out, "jamais au patient")
	} else {
		out = append(out, "au patient si le DPI le demande")
	}
	switch a.Paper {
	case rules.PaperAlways:
		out = append(out, "toujours une copie papier")
	case rules.PaperNever:
		out = append(out, "jamais de papier (sans MSSanté: à vérifier)")
	default:
		out = append(out, "papier selon l'annuaire")
	}
	if a.AddressMismatch == rules.MismatchReview {
		out = append(out, "adresse du DPI inconnue de l'annuaire: à vérifier")
	}
	out = append(out, "en cas d'échec: "+dashboard.Label(fallbackLabels, a.OnFailure))
	if a.NoDSNHours > 0 {
		out = append(out, fmt.Sprintf("sans accusé de distribution après %d h: %s", a.NoDSNHours, dashboard.Label(fallbackLabels, a.NoDSNAction)))
	}
	if a.UnreadHours > 0 {
		out = append(out, fmt.Sprintf("non lu après %d h: %s", a.UnreadHours, dashboard.Label(fallbackLabels, a.UnreadAction)))
	}
	return out
}

// The directory.

// directoryPage is the search of the national directory and the local correspondents.
type directoryPage struct {
	Query, City string
	Searched    bool
	Results     []correspondents.SearchResult
	Local       []correspondents.LocalCorrespondent
	// Form is the local correspondent being created or edited.
	Form  localForm
	Error string
	// CanEdit is whether the user may change the local directory; CanPropose
	// whether she may propose a change to those who may.
	CanEdit, CanPropose bool
	// Proposals are the changes waiting for approval (for those who may
	// approve them), or the user's own proposals.
	Proposals []correspondents.LocalProposal
	// Imports are the states of the imports, for administrators.
	Imports          []correspondents.ImportStatus
	Preferences      []string
	PreferenceLabels map[string]string
}

// localForm is the form of a local correspondent.
type localForm struct {
	ID                                                 int64
	NationalID, FINESS, Family, Given, Organisation    string
	Address, Lines, PostalCode, PostalCity, Preference string
	Note, UpdatedBy                                    string
	UpdatedAt                                          time.Time
	// Why is the reason of a proposal.
	Why string
}

// preferenceLabels name the preferences of a local correspondent in French.
var preferenceLabels = map[string]string{
	correspondents.PreferenceDirectory:  "Selon l'annuaire (MSSanté, papier sauf dématérialisation)",
	correspondents.PreferenceElectronic: "MSSanté seulement",
	correspondents.PreferencePaper:      "Papier seulement",
	correspondents.PreferenceBoth:       "MSSanté et papier",
}

var preferences = []string{correspondents.PreferenceDirectory, correspondents.PreferenceElectronic,
	correspondents.PreferencePaper, correspondents.PreferenceBoth}

// localFormOf fills the form with c.
func localFormOf(c correspondents.LocalCorrespondent) localForm {
	return localForm{ID: c.ID, NationalID: c.NationalID, FINESS: c.FINESS, Family: c.Family, Given: c.Given,
		Organisation: c.Organisation, Address: c.MSSanteAddress, Lines: strings.Join(c.PostalAddress.Lines, "\n"),
		PostalCode: c.PostalAddress.PostalCode, PostalCity: c.PostalAddress.City, Preference: c.Preference,
		Note: c.Note, UpdatedBy: c.UpdatedBy, UpdatedAt: c.UpdatedAt}
}

// localFormFrom reads the form's fields from v (a query, to prefill it, or a form posted).
func localFormFrom(v url.Values) localForm {
	get := func(name string) string { return strings.TrimSpace(v.Get(name)) }
	f := localForm{NationalID: get("national_id"), FINESS: get("finess"), Family: get("family"), Given: get("given"),
		Organisation: get("organisation"), Address: get("mssante_address"), Lines: get("postal_lines"),
		PostalCode: get("postal_code"), PostalCity: get("postal_city"), Preference: get("preference"), Note: get("note"),
		Why: get("why")}
	f.ID, _ = strconv.ParseInt(get("id"), 10, 64)
	return f
}

// correspondent is the form as a local correspondent: an RPPS (11 digits)
// or ADELI (9) typed without its prefix gets it.
func (f localForm) correspondent() correspondents.LocalCorrespondent {
	id := f.NationalID
	if n, err := correspondents.ParseNationalIDOrNumber(id); err == nil {
		id = n.String() // else LocalCorrespondent's checks say what is wrong
	}
	c := correspondents.LocalCorrespondent{ID: f.ID, NationalID: id, FINESS: f.FINESS, Family: f.Family,
		Given: f.Given, Organisation: f.Organisation, MSSanteAddress: f.Address, Preference: f.Preference, Note: f.Note}
	for l := range strings.SplitSeq(f.Lines, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			c.PostalAddress.Lines = append(c.PostalAddress.Lines, l)
		}
	}
	c.PostalAddress.PostalCode, c.PostalAddress.City = f.PostalCode, f.PostalCity
	if f.PostalCode != "" || f.PostalCity != "" {
		c.PostalAddress.RoutingLine = strings.TrimSpace(f.PostalCode + " " + strings.ToUpper(f.PostalCity))
	}
	return c
}

func (u *UI) getDirectoryPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := &directoryPage{Query: strings.TrimSpace(q.Get("q")), City: strings.TrimSpace(q.Get("city"))}
	if p.Query != "" || p.City != "" {
		results, err := u.cfg.Directory.Search(r.Context(), correspondents.SearchQuery{Text: p.Query, City: p.City, Limit: 50})
		if err != nil {
			u.ServerError(w, r, err)
			return
		}
		p.Searched, p.Results = true, results
	}
	if edit := q.Get("edit"); edit != "" {
		id, err := strconv.ParseInt(edit, 10, 64)
		if err != nil {
			u.NotFound(w, r, "Ce correspondant n'existe pas.")
			return
		}
		c, err := u.cfg.Directory.Local(r.Context(), id)
		switch {
		case errors.Is(err, correspondents.ErrNotFound):
			u.NotFound(w, r, "Ce correspondant n'existe pas (ou plus).")
			return
		case err != nil:
			u.ServerError(w, r, err)
			return
		}
		p.Form = localFormOf(c)
	} else {
		p.Form = localFormFrom(q)
		p.Form.ID = 0
	}
	u.renderDirectory(w, r, http.StatusOK, p)
}

// renderDirectory completes p with the local correspondents (and the
// imports, for an administrator) and renders it.
func (u *UI) renderDirectory(w http.ResponseWriter, r *http.Request, status int, p *directoryPage) {
	ctx, user := r.Context(), dashboard.CurrentUser(r)
	p.CanEdit, p.Preferences, p.PreferenceLabels = user.Can(auth.PermCorrespondents), preferences, preferenceLabels
	p.CanPropose = !p.CanEdit && user.Can(auth.PermAct)
	if p.Form.Preference == "" {
		p.Form.Preference = correspondents.PreferenceDirectory
	}
	local, err := u.cfg.Directory.ListLocal(ctx, p.Query, 200)
	if err != nil {
		u.ServerError(w, r, err)
		return
	}
	p.Local = local
	f := correspondents.ProposalFilter{Status: correspondents.ProposalPending}
	if !p.CanEdit {
		f = correspondents.ProposalFilter{ProposedBy: user.Username, Limit: 20}
	}
	if p.CanEdit || p.CanPropose {
		if p.Proposals, err = u.cfg.Directory.LocalProposals(ctx, f); err != nil {
			u.ServerError(w, r, err)
			return
		}
	}
	if user.Can(auth.PermAdmin) {
		if p.Imports, err = u.cfg.Directory.ImportStatuses(ctx); err != nil {
			u.ServerError(w, r, err)
			return
		}
	}
	u.Render(w, r, status, "directory", "Annuaire", "directory", p)
}

// localFields names the fields of a local correspondent in French.
var localFields = map[string]string{
	"national_id": "identifiant national", "finess": "FINESS", "family": "nom", "given": "prénom",
	"organisation": "structure", "mssante_address": "adresse MSSanté", "postal_address": "adresse postale",
	"preference": "préférence", "note": "note",
}

// postLocal creates or replaces a local correspondent.
func (u *UI) postLocal(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		u.BadRequest(w, r, "Formulaire illisible.")
		return
	}
	p := &directoryPage{Form: localFormFrom(r.PostForm)}
	saved, err := u.cfg.Directory.SaveLocal(r.Context(), p.Form.correspondent(), dashboard.CurrentUser(r).Username)
	if !u.localSaved(w, r, p, err) {
		return
	}
	dashboard.SetFlash(w, false, "Fiche locale de "+saved.Name()+" enregistrée: elle prime sur l'annuaire national.")
	http.Redirect(w, r, fmt.Sprintf("/directory?edit=%d", saved.ID), http.StatusSeeOther)
}

// localSaved answers the error of saving or proposing the form of p, and
// reports whether there was none.
func (u *UI) localSaved(w http.ResponseWriter, r *http.Request, p *directoryPage, err error) bool {
	var ve *correspondents.ValidationError
	switch {
	case errors.As(err, &ve):
		p.Error = fmt.Sprintf("Fiche refusée: %s: %s.", dashboard.Label(localFields, ve.Field), ve.Msg)
		u.renderDirectory(w, r, http.StatusBadRequest, p)
	case errors.Is(err, correspondents.ErrConflict):
		p.Error = "Une fiche locale existe déjà pour cet identifiant national ou ce FINESS: modifiez-la plutôt."
		u.renderDirectory(w, r, http.StatusConflict, p)
	case errors.Is(err, correspondents.ErrNotFound):
		u.NotFound(w, r, "Ce correspondant n'existe pas (ou plus).")
	case err != nil:
		u.ServerError(w, r, err)
	}
	return err == nil
}

// postProposal records a proposal of the local directory's change, for
// those who may change it to apply.
func (u *UI) postProposal(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		u.BadRequest(w, r, "Formulaire illisible.")
		return
	}
	p := &directoryPage{Form: localFormFrom(r.PostForm)}
	proposal, err := u.cfg.Directory.ProposeLocal(r.Context(), p.Form.correspondent(), dashboard.CurrentUser(r).Username, p.Form.Why)
	if !u.localSaved(w, r, p, err) {
		return
	}
	dashboard.SetFlash(w, false, fmt.Sprintf("Proposition n° %d enregistrée : elle s'appliquera quand un administrateur l'aura approuvée.", proposal.ID))
	http.Redirect(w, r, "/directory#proposals", http.StatusSeeOther)
}

// postProposalDecision applies or rejects a proposal.
func (u *UI) postProposalDecision(w http.ResponseWriter, r *http.Request) {
	id, ok := u.PathID(w, r, "Cette proposition n'existe pas.")
	if !ok {
		return
	}
	ctx, user := r.Context(), dashboard.CurrentUser(r).Username
	var err error
	var done string
	switch chi.URLParam(r, "decision") {
	case "apply":
		var saved correspondents.LocalCorrespondent
		saved, err = u.cfg.Directory.ApplyProposal(ctx, id, user)
		done = "Proposition appliquée : fiche locale de " + saved.Name() + " enregistrée."
	case "reject":
		err = u.cfg.Directory.RejectProposal(ctx, id, user, r.PostFormValue("why"))
		done = "Proposition refusée."
	default:
		u.NotFound(w, r, "Décision inconnue.")
		return
	}
	switch {
	case errors.Is(err, correspondents.ErrDecided):
		dashboard.SetFlash(w, true, "Cette proposition a déjà été traitée.")
	case errors.Is(err, correspondents.ErrConflict):
		dashboard.SetFlash(w, true, "Une autre fiche locale a déjà cet identifiant national ou ce FINESS : la proposition ne peut pas s'appliquer.")
	case errors.Is(err, correspondents.ErrNotFound):
		dashboard.SetFlash(w, true, "Cette proposition, ou la fiche qu'elle modifie, n'existe plus.")
	case err != nil:
		u.ServerError(w, r, err)
		return
	default:
		dashboard.SetFlash(w, false, done)
	}
	http.Redirect(w, r, "/directory#proposals", http.StatusSeeOther)
}

// postLocalDelete deletes a local correspondent.
func (u *UI) postLocalDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := u.PathID(w, r, "Ce correspondant n'existe pas.")
	if !ok {
		return
	}
	ctx := r.Context()
	c, err := u.cfg.Directory.Local(ctx, id)
	if err == nil {
		err = u.cfg.Directory.DeleteLocal(ctx, id, dashboard.CurrentUser(r).Username)
	}
	switch {
	case errors.Is(err, correspondents.ErrNotFound):
		dashboard.SetFlash(w, true, "Ce correspondant n'existe plus.")
	case err != nil:
		u.ServerError(w, r, err)
		return
	default:
		dashboard.SetFlash(w, false, "Fiche locale de "+c.Name()+" supprimée: l'annuaire national s'applique de nouveau.")
	}
	http.Redirect(w, r, "/directory", http.StatusSeeOther)
}

// The quarantine.

// quarantinePage is a page of the quarantine.
type quarantinePage struct {
	Messages []quarantineRow
	// NextURL is the link to older messages, empty on the last page.
	NextURL string
	// All is whether the messages accepted or set aside are listed too,
	// not only those to deal with.
	All bool
	// CanRaw is whether the user may read the messages' bytes.
	CanRaw bool
	// CanAct is whether the user may process messages again or set them
	// aside (those of her services).
	CanAct bool
}

// quarantineRow is a refused message and what the page says of it.
type quarantineRow struct {
	quarantine.Message
	// Error names the refusal's error code in French; Remedy says what to do.
	Error, Remedy string
}

// refusalErrors name in French the HL7 table 0357 codes of refusals (ERR-3).
var refusalErrors = map[int]string{
	hl7.CodeSegmentSequence:         "segment absent ou mal placé",
	hl7.CodeRequiredField:           "information obligatoire absente",
	hl7.CodeDataType:                "valeur incorrecte",
	hl7.CodeTableValue:              "valeur non reconnue",
	hl7.CodeValueTooLong:            "valeur trop longue",
	hl7.CodeUnsupportedMessageType:  "type de message non pris en charge",
	hl7.CodeUnsupportedEvent:        "événement non pris en charge",
	hl7.CodeUnsupportedProcessingID: "mode de traitement non pris en charge",
	hl7.CodeUnsupportedVersion:      "version HL7 non prise en charge",
	hl7.CodeUnknownKey:              "identifiant inconnu",
	hl7.CodeDuplicateKey:            "identifiant de message déjà utilisé",
	hl7.CodeRecordLocked:            "enregistrement verrouillé",
	hl7.CodeInternal:                "message impossible à enregistrer",
}

// remedies say in French what to do about a refused message.
var remedies = map[quarantine.Remedy]string{
	quarantine.RemedyContent:   "À corriger dans le DPI : contactez l'équipe d'interface du DPI.",
	quarantine.RemedyInterface: "Paramétrage de l'interface : contactez l'équipe d'interface du DPI.",
	quarantine.RemedyCaller:    "Le logiciel qui a appelé l'API a reçu ce refus : il doit renvoyer la demande corrigée (contactez son éditeur).",
}

// newQuarantineRow says m in French.
func newQuarantineRow(m quarantine.Message) quarantineRow {
	row := quarantineRow{Message: m, Remedy: remedies[m.Remedy()], Error: refusalErrors[m.ErrorCode]}
	switch {
	case m.Kind == "json":
		row.Error = "requête refusée"
	case row.Error == "":
		row.Error = fmt.Sprintf("erreur %d", m.ErrorCode)
	}
	return row
}

// quarantineScope is the services whose messages user sees whole: all for
// admins (nil), else hers.
func quarantineScope(user auth.User) []string {
	if user.Can(auth.PermAdmin) {
		return nil
	}
	return dashboard.ServicesOf(user) // the others' patient data never leaves the database
}

func (u *UI) getQuarantinePage(w http.ResponseWriter, r *http.Request) {
	before, ok := u.beforeParam(w, r)
	if !ok {
		return
	}
	user := dashboard.CurrentUser(r)
	p := quarantinePage{All: r.URL.Query().Get("all") == "1", CanRaw: user.Can(auth.PermAdmin), CanAct: user.Can(auth.PermAct)}
	f := quarantine.Filter{BeforeID: before, Limit: adminPageSize + 1, Services: quarantineScope(user)}
	if !p.All {
		f.Status = quarantine.Open
	}
	msgs, err := u.cfg.Quarantine.List(r.Context(), f)
	if err != nil {
		u.ServerError(w, r, err)
		return
	}
	if len(msgs) > adminPageSize {
		msgs = msgs[:adminPageSize]
		p.NextURL = olderURL(r, msgs[adminPageSize-1].ID)
	}
	for _, m := range msgs {
		p.Messages = append(p.Messages, newQuarantineRow(m))
	}
	u.Render(w, r, http.StatusOK, "quarantine", "Messages en quarantaine", "quarantine", p)
}

// postQuarantineReprocess runs a refused message through the intake again
// (its cause fixed) and comes back to it: accepted, among the messages
// dealt with, with its report; refused, with the new reason.
func (u *UI) postQuarantineReprocess(w http.ResponseWriter, r *http.Request) {
	id, ok := u.PathID(w, r, "Ce message n'existe pas.")
	if !ok {
		return
	}
	user := dashboard.CurrentUser(r)
	got, err := u.cfg.HL7.Reprocess(r.Context(), id, user.Username, quarantineScope(user))
	back := fmt.Sprintf("/quarantine#q-%d", id)
	switch {
	case err != nil:
		u.afterQuarantineAction(w, r, err, "", back)
		return
	case got.ReportID != 0:
		dashboard.SetFlash(w, false, fmt.Sprintf("Message accepté : compte rendu n° %d.", got.ReportID))
		back = fmt.Sprintf("/quarantine?all=1#q-%d", id)
	default:
		dashboard.SetFlash(w, true, "Toujours refusé : le motif affiché est celui d'aujourd'hui.")
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// postQuarantineDismiss sets a refused message aside, for the reason typed.
func (u *UI) postQuarantineDismiss(w http.ResponseWriter, r *http.Request) {
	id, ok := u.PathID(w, r, "Ce message n'existe pas.")
	if !ok {
		return
	}
	user := dashboard.CurrentUser(r)
	err := u.cfg.Quarantine.Dismiss(r.Context(), id, user.Username, quarantineScope(user), r.PostFormValue("why"))
	u.afterQuarantineAction(w, r, err, "Message écarté.", fmt.Sprintf("/quarantine#q-%d", id))
}

// afterQuarantineAction says how an action on a refused message went (done
// when err is nil) and goes back; a message the user does not see is not
// found.
func (u *UI) afterQuarantineAction(w http.ResponseWriter, r *http.Request, err error, done, back string) {
	var invalid *dispatch.InvalidError
	switch {
	case err == nil:
		dashboard.SetFlash(w, false, done)
	case errors.Is(err, dispatch.ErrNotFound):
		u.NotFound(w, r, "Ce message n'existe pas, ou n'est pas d'un de vos services.")
		return
	case errors.Is(err, quarantine.ErrHandled):
		dashboard.SetFlash(w, true, "Ce message a déjà été retraité ou écarté entre-temps.")
	case errors.Is(err, quarantine.ErrNotReprocessable):
		dashboard.SetFlash(w, true, "Ce message ne peut pas être retraité (requête de l'API, ou contenu purgé ou incomplet).")
	case errors.As(err, &invalid):
		dashboard.SetFlash(w, true, "Message non écarté : "+invalid.Msg+".")
	default:
		u.ServerError(w, r, err)
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// getQuarantineRaw downloads the bytes of a quarantined message (the
// reading is in the audit log).
func (u *UI) getQuarantineRaw(w http.ResponseWriter, r *http.Request) {
	id, ok := u.PathID(w, r, "Ce message n'existe pas.")
	if !ok {
		return
	}
	raw, err := u.cfg.Quarantine.Raw(r.Context(), dashboard.CurrentUser(r).Username, id)
	switch {
	case errors.Is(err, dispatch.ErrNotFound):
		u.NotFound(w, r, "Ce message n'existe pas.")
		return
	case err != nil:
		u.ServerError(w, r, err)
		return
	case len(raw) == 0:
		u.Render(w, r, http.StatusGone, "error", "Message purgé", "quarantine",
			"Le contenu de ce message a été purgé (durée de conservation écoulée); son motif reste dans la liste.")
		return
	}
	ct := "text/plain"
	if utf8.Valid(raw) {
		ct += "; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="quarantaine-%d.txt"`, id))
	w.Header().Set("Cache-Control", "private, no-store")
	_, _ = w.Write(raw)
}

// The audit log.

// auditPage is a page of the audit log.
type auditPage struct {
	// The filter's fields, as typed.
	Actor, Action, Patient, Report, From, To string
	Records                                  []audit.Record
	NextURL                                  string
	// ExportURL downloads the entries of the filter as CSV.
	ExportURL string
	// Actions are the known actions, for the filter.
	Actions []string
	Error   string
}

// auditFilter reads the journal's filter from the query of r: the page's
// fields as typed, the filter, and what is wrong with them.
func auditFilter(r *http.Request) (auditPage, audit.Filter, []string) {
	q := r.URL.Query()
	get := func(name string) string { return strings.TrimSpace(q.Get(name)) }
	p := auditPage{Actor: get("actor"), Action: get("action"), Patient: get("patient"), Report: get("report"),
		From: get("from"), To: get("to"), Actions: audit.Actions}
	f := audit.Filter{Actor: p.Actor, Action: p.Action, Patient: p.Patient}
	var errs []string
	f.From, f.To, errs = dashboard.DayRange(p.From, p.To)
	if p.Report != "" {
		id, err := strconv.ParseInt(p.Report, 10, 64)
		if err != nil || id <= 0 {
			errs = append(errs, "numéro de compte rendu invalide")
		}
		f.ReportID = id
	}
	return p, f, errs
}

func (u *UI) getAuditPage(w http.ResponseWriter, r *http.Request) {
	before, ok := u.beforeParam(w, r)
	if !ok {
		return
	}
	p, f, errs := auditFilter(r)
	if len(errs) > 0 {
		p.Error = "Filtre refusé : " + strings.Join(errs, ", ") + "."
		u.Render(w, r, http.StatusBadRequest, "audit", "Journal d'audit", "audit", p)
		return
	}
	f.BeforeID, f.Limit = before, adminPageSize+1
	records, err := u.cfg.Audit.Read(r.Context(), f)
	if err != nil {
		u.ServerError(w, r, err)
		return
	}
	p.Records = records
	if len(records) > adminPageSize {
		p.Records = records[:adminPageSize]
		p.NextURL = olderURL(r, p.Records[adminPageSize-1].ID)
	}
	export := r.URL.Query()
	export.Del("before")
	p.ExportURL = "/audit.csv?" + export.Encode()
	u.Render(w, r, http.StatusOK, "audit", "Journal d'audit", "audit", p)
}

// getAuditCSV streams the entries of the journal's filter as CSV; the
// export is itself in the journal.
func (u *UI) getAuditCSV(w http.ResponseWriter, r *http.Request) {
	_, f, errs := auditFilter(r)
	if len(errs) > 0 {
		u.BadRequest(w, r, "Filtre refusé : "+strings.Join(errs, ", ")+".")
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="journal-%s.csv"`, time.Now().In(dispatch.Zone).Format("20060102-150405")))
	w.Header().Set("Cache-Control", "private, no-store")
	if _, err := u.cfg.Audit.Export(r.Context(), dashboard.CurrentUser(r).Username, f, w); err != nil {
		// The CSV is cut short; the export's entry is in the journal.
		u.cfg.Logger.ErrorContext(r.Context(), "export the audit log", "error", redact.Text(err.Error()))
	}
}

// The users.

// usersPage lists the accounts, with the form of a new one.
type usersPage struct {
	Users []auth.User
	Form  userForm
	Error string
	Roles []auth.Role
	// Me is the administrator's username: they cannot disable themselves.
	Me string
}

// userForm is the form of a new account.
type userForm struct {
	Username, DisplayName, Role, Services string
}

func (u *UI) getUsersPage(w http.ResponseWriter, r *http.Request) {
	u.renderUsers(w, r, http.StatusOK, &usersPage{Form: userForm{Role: string(auth.RoleSecretary)}})
}

func (u *UI) renderUsers(w http.ResponseWriter, r *http.Request, status int, p *usersPage) {
	users, err := u.cfg.Accounts.Users(r.Context())
	if err != nil {
		u.ServerError(w, r, err)
		return
	}
	p.Users, p.Me = users, dashboard.CurrentUser(r).Username
	p.Roles = []auth.Role{auth.RoleSecretary, auth.RoleCME, auth.RoleAdmin}
	u.Render(w, r, status, "users", "Comptes", "users", p)
}

// splitServices reads a comma-separated list of services.
func splitServices(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// userError says in French why an account or password was refused.
func userError(err error) string {
	var invalid *auth.InvalidError
	switch {
	case errors.Is(err, auth.ErrUserExists):
		return "Cet identifiant est déjà pris."
	case !errors.As(err, &invalid):
		return "Compte refusé."
	}
	switch invalid.Field {
	case "username":
		return "Identifiant invalide: de 2 à 64 caractères parmi a-z, 0-9, « . », « _ » et « - »."
	case "password":
		return "Mot de passe refusé: au moins 12 caractères, sur une ligne."
	case "role":
		return "Rôle inconnu."
	case "display_name":
		return "Nom invalide: 200 caractères au plus."
	case "service":
		return "Service invalide."
	}
	return "Compte refusé."
}

// postUser creates an account (the store writes the audit entry user_added).
func (u *UI) postUser(w http.ResponseWriter, r *http.Request) {
	p := &usersPage{Form: userForm{Username: strings.TrimSpace(r.PostFormValue("username")),
		DisplayName: strings.TrimSpace(r.PostFormValue("display_name")), Role: r.PostFormValue("role"),
		Services: r.PostFormValue("services")}}
	created, err := u.cfg.Accounts.AddUser(r.Context(), auth.NewUser{Username: p.Form.Username,
		DisplayName: p.Form.DisplayName, Password: r.PostFormValue("password"), Role: auth.Role(p.Form.Role),
		Services: splitServices(p.Form.Services)})
	switch {
	case errors.Is(err, auth.ErrUserExists) || errors.Is(err, auth.ErrInvalid):
		p.Error = userError(err)
		u.renderUsers(w, r, http.StatusBadRequest, p)
		return
	case err != nil:
		u.ServerError(w, r, err)
		return
	}
	dashboard.SetFlash(w, false, fmt.Sprintf("Compte « %s » créé (%s).", created.Username, dashboard.RoleLabel(created.Role)))
	http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
}

// postUserAction disables or enables an account, or sets its password (the
// store writes the audit entries user_disabled, user_enabled, password_changed).
func (u *UI) postUserAction(w http.ResponseWriter, r *http.Request) {
	ctx, name := r.Context(), chi.URLParam(r, "username")
	var err error
	var done string
	switch chi.URLParam(r, "action") {
	case "disable":
		if name == dashboard.CurrentUser(r).Username {
			dashboard.SetFlash(w, true, "Vous ne pouvez pas désactiver votre propre compte.")
			http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
			return
		}
		err, done = u.cfg.Accounts.SetDisabled(ctx, name, true), "Compte « "+name+" » désactivé: ses sessions sont closes."
	case "enable":
		err, done = u.cfg.Accounts.SetDisabled(ctx, name, false), "Compte « "+name+" » réactivé."
	case "password":
		err, done = u.cfg.Accounts.SetPassword(ctx, name, r.PostFormValue("password")),
			"Mot de passe de « "+name+" » changé: ses sessions sont closes."
	case "grant-correspondents", "revoke-correspondents":
		on := strings.HasPrefix(chi.URLParam(r, "action"), "grant")
		err = u.cfg.Accounts.SetGrant(ctx, name, auth.GrantCorrespondents, on)
		done = "« " + name + " » peut désormais modifier l'annuaire local."
		if !on {
			done = "« " + name + " » ne peut plus modifier l'annuaire local : ses changements seront des propositions."
		}
	default:
		u.NotFound(w, r, "Action inconnue.")
		return
	}
	switch {
	case errors.Is(err, auth.ErrNotFound):
		dashboard.SetFlash(w, true, "Ce compte n'existe pas.")
	case errors.Is(err, auth.ErrInvalid):
		dashboard.SetFlash(w, true, userError(err))
	case err != nil:
		u.ServerError(w, r, err)
		return
	default:
		dashboard.SetFlash(w, false, done)
	}
	http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
}
