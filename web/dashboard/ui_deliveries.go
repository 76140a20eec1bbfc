package dashboard

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/desk"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

// This file holds the secretaries' screens: the worklists, the search of
// all deliveries, a report's page and the actions on its deliveries.

// worklistPage is a worklist or the search.
type worklistPage struct {
	Name   string
	Filter readmodel.DeliveryFilter
	From   string // the date fields as typed (YYYY-MM-DD)
	To     string
	Rows   []readmodel.DeliveryRow
	// NextURL is the link to the next page, empty on the last.
	NextURL string
	// Statuses are the choices of the status filter.
	Statuses []dispatch.Status
	Error    string
	// Back is this page's path and query, where actions come back to.
	Back string
}

func (u *UI) getWorklist(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if !slices.Contains(readmodel.Worklists, name) {
		u.NotFound(w, r, "Cette liste n'existe pas.")
		return
	}
	q := r.URL.Query()
	user := CurrentUser(r)
	p := worklistPage{Name: name, Statuses: deliveryStatuses, From: q.Get("from"), To: q.Get("to"), Back: r.URL.RequestURI()}
	p.Filter = readmodel.DeliveryFilter{Worklist: name, Patient: q.Get("patient"), Correspondent: q.Get("correspondent"),
		DocumentCode: strings.TrimSpace(q.Get("document_code")), Service: strings.TrimSpace(q.Get("service")),
		Status: dispatch.Status(q.Get("status")), Services: ServicesOf(user), After: q.Get("after")}
	var errs []string
	p.Filter.From, p.Filter.To, errs = DayRange(p.From, p.To)
	status := http.StatusOK
	if len(errs) == 0 {
		page, err := u.cfg.Views.Deliveries(r.Context(), CurrentUser(r).Username, p.Filter)
		switch {
		case errors.Is(err, readmodel.ErrBadFilter):
			errs = append(errs, "filtre invalide")
		case err != nil:
			u.ServerError(w, r, err)
			return
		default:
			p.Rows = page.Rows
			if page.Next != "" {
				next := r.URL.Query()
				next.Set("after", page.Next)
				p.NextURL = r.URL.Path + "?" + next.Encode()
			}
		}
	}
	if len(errs) > 0 {
		status = http.StatusBadRequest
		p.Error = "Recherche impossible: " + strings.Join(errs, ", ") + "."
	}
	u.Render(w, r, status, "worklist", worklistLabels[name], name, p)
}

// deliveryStatuses are the statuses in the search's filter.
var deliveryStatuses = []dispatch.Status{dispatch.StatusReview, dispatch.StatusScheduled, dispatch.StatusQueued,
	dispatch.StatusSent, dispatch.StatusDelivered, dispatch.StatusRead, dispatch.StatusFailed,
	dispatch.StatusPaperPending, dispatch.StatusPaperSent, dispatch.StatusCancelled, dispatch.StatusSuperseded}

// reportPage is a report's page.
type reportPage struct {
	Report readmodel.ReportDetail
	// Edit is the delivery whose recipient is being edited, 0 for none;
	// Query and Results are the directory search of that edit.
	Edit    int64
	Query   string
	Results []correspondents.SearchResult
	CanAct  bool
}

// DayRange reads the days from and to of a form (AAAA-MM-JJ, Paris time,
// either empty): the period from the start of from to the end of to, and
// what is wrong with them, in French.
func DayRange(from, to string) (start, end time.Time, errs []string) {
	if from != "" {
		t, err := time.ParseInLocation(time.DateOnly, from, paris)
		if err != nil {
			errs = append(errs, "date de début invalide (AAAA-MM-JJ)")
		}
		start = t
	}
	if to != "" {
		t, err := time.ParseInLocation(time.DateOnly, to, paris)
		if err != nil {
			errs = append(errs, "date de fin invalide (AAAA-MM-JJ)")
		} else {
			end = t.AddDate(0, 0, 1) // the end day included
		}
	}
	return start, end, errs
}

// reportID reads the route's report {id} and checks that the user may see it (reportFor).
func (u *UI) reportID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, ok := u.PathID(w, r, "Ce compte rendu n'existe pas.")
	return id, ok && u.reportFor(w, r, id)
}

// deliveryFor reads the route's delivery {id} and returns it with its
// report, checking that the user may see it (reportFor).
func (u *UI) deliveryFor(w http.ResponseWriter, r *http.Request) (id, reportID int64, ok bool) {
	if id, ok = u.PathID(w, r, "Cet envoi n'existe pas."); !ok {
		return 0, 0, false
	}
	reportID, err := u.cfg.Views.DeliveryReport(r.Context(), id)
	switch {
	case errors.Is(err, dispatch.ErrNotFound):
		u.NotFound(w, r, "Cet envoi n'existe pas.")
		return 0, 0, false
	case err != nil:
		u.ServerError(w, r, err)
		return 0, 0, false
	}
	return id, reportID, u.reportFor(w, r, reportID)
}

// reportFor loads the report id for user, answering 404 (also for a report
// of a service the user does not see) and false when it cannot be shown.
func (u *UI) reportFor(w http.ResponseWriter, r *http.Request, id int64) bool {
	ok, err := u.sees(r, id)
	switch {
	case err != nil:
		u.ServerError(w, r, err)
		return false
	case !ok:
		u.NotFound(w, r, "Ce compte rendu n'existe pas, ou n'est pas d'un de vos services.")
	}
	return ok
}

// sees reports whether the report id exists and is of a service the
// request's user sees.
func (u *UI) sees(r *http.Request, reportID int64) (bool, error) {
	service, err := u.cfg.Views.ReportService(r.Context(), reportID)
	if errors.Is(err, dispatch.ErrNotFound) {
		return false, nil
	}
	return err == nil && CurrentUser(r).SeesService(service), err
}

func (u *UI) getReportPage(w http.ResponseWriter, r *http.Request) {
	id, ok := u.reportID(w, r)
	if !ok {
		return
	}
	report, err := u.cfg.Views.ReportDetail(r.Context(), CurrentUser(r).Username, id)
	if err != nil {
		u.ServerError(w, r, err)
		return
	}
	p := reportPage{Report: report, CanAct: CurrentUser(r).Can(auth.PermAct)}
	q := r.URL.Query()
	p.Edit, _ = strconv.ParseInt(q.Get("edit"), 10, 64)
	if p.Query = strings.TrimSpace(q.Get("q")); p.Query != "" {
		if p.Results, err = u.cfg.Directory.Search(r.Context(), correspondents.SearchQuery{Text: p.Query, Limit: 10}); err != nil {
			u.ServerError(w, r, err)
			return
		}
	}
	title := "Compte rendu " + strconv.FormatInt(report.ID, 10)
	u.Render(w, r, http.StatusOK, "report", title, "", p)
}

func (u *UI) getReportPDF(w http.ResponseWriter, r *http.Request) {
	id, ok := u.reportID(w, r)
	if !ok {
		return
	}
	pdf, err := u.cfg.Views.DocumentPDF(r.Context(), CurrentUser(r).Username, id)
	switch {
	case errors.Is(err, dispatch.ErrNotFound):
		u.NotFound(w, r, "Ce compte rendu n'a pas de PDF (ou il a été purgé).")
		return
	case err != nil:
		u.ServerError(w, r, err)
		return
	}
	writePDF(w, fmt.Sprintf("compte-rendu-%d.pdf", id), pdf)
}

// postDeliveryAction runs one action of a secretary on a delivery and comes
// back to the report (or the worklist of the form's back field).
func (u *UI) postDeliveryAction(w http.ResponseWriter, r *http.Request) {
	id, reportID, ok := u.deliveryFor(w, r)
	if !ok {
		return
	}
	ctx, user := r.Context(), CurrentUser(r).Username
	why := strings.TrimSpace(r.PostFormValue("why"))
	back := fmt.Sprintf("/reports/%d#delivery-%d", reportID, id)
	if b := r.PostFormValue("back"); b != "" {
		back = auth.SafeRedirect(b)
	}
	var done string
	var err error
	switch action := chi.URLParam(r, "action"); action {
	case readmodel.ActionApprove:
		err, done = u.cfg.Actions.Approve(ctx, id, user), "Envoi approuvé."
	case readmodel.ActionSendTo:
		address := strings.TrimSpace(r.PostFormValue("address"))
		err, done = u.cfg.Actions.SendTo(ctx, id, user, address), "Envoi à "+address+" approuvé."
	case readmodel.ActionSendNow:
		err, done = u.cfg.Actions.Approve(ctx, id, user), "Envoyé sans attendre la fin du délai de la règle."
	case readmodel.ActionHold:
		err, done = u.cfg.Actions.Hold(ctx, id, user, why), "Envoi remis en vérification."
	case readmodel.ActionCancel:
		err, done = u.cfg.Actions.Cancel(ctx, id, user, why), "Envoi annulé."
	case readmodel.ActionResend:
		err, done = u.cfg.Actions.Resend(ctx, id, user), "Envoi relancé."
	case readmodel.ActionPaper:
		var paperID int64
		paperID, err = u.cfg.Actions.SwitchToPaper(ctx, id, user)
		done = fmt.Sprintf("Envoi papier créé (n° %d).", paperID)
	case readmodel.ActionPosted:
		err, done = u.cfg.Actions.MarkPaperSent(ctx, id, user), "Courrier marqué posté."
	case readmodel.ActionReturn:
		err, done = u.cfg.Actions.PostalReturn(ctx, id, user, cmp.Or(why, "retour NPAI")), "Retour postal enregistré: envoi à vérifier."
	case readmodel.ActionEdit:
		c := desk.RecipientChange{Address: r.PostFormValue("address"), Name: r.PostFormValue("name"),
			PostalAddress: postalFromForm(r)}
		err, done = u.cfg.Actions.EditRecipient(ctx, id, user, c), "Destinataire modifié."
		if err != nil {
			back = fmt.Sprintf("/reports/%d?edit=%d#delivery-%d", reportID, id, id)
		}
	default:
		u.NotFound(w, r, "Action inconnue.")
		return
	}
	u.afterAction(w, r, err, done, back)
}

// postAddRecipient adds a recipient to a report.
func (u *UI) postAddRecipient(w http.ResponseWriter, r *http.Request) {
	id, ok := u.reportID(w, r)
	if !ok {
		return
	}
	rc := dispatch.Recipient{Family: strings.TrimSpace(r.PostFormValue("family")),
		Given: strings.TrimSpace(r.PostFormValue("given")), NationalID: strings.TrimSpace(r.PostFormValue("national_id")),
		Address: strings.TrimSpace(r.PostFormValue("address")), PostalAddress: postalFromForm(r)}
	rc.RPPS, _ = correspondents.NationalID(rc.NationalID).RPPS()
	newID, err := u.cfg.Actions.AddRecipient(r.Context(), id, CurrentUser(r).Username, rc)
	u.afterAction(w, r, err, fmt.Sprintf("Destinataire ajouté (envoi n° %d, à approuver).", newID),
		fmt.Sprintf("/reports/%d#recipients", id))
}

// afterAction redirects to back with the outcome of an action as a flash:
// done, or why the action could not be done.
func (u *UI) afterAction(w http.ResponseWriter, r *http.Request, err error, done, back string) {
	switch problem := actionProblem(err); {
	case err == nil:
		SetFlash(w, false, done)
	case problem != "":
		SetFlash(w, true, problem)
	default:
		u.ServerError(w, r, err)
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// actionProblem says in French why an action on a delivery failed, "" for
// an error that is not the user's to fix (or none).
func actionProblem(err error) string {
	var bad *desk.RecipientError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, dispatch.ErrTransition):
		return "Action impossible dans l'état actuel de l'envoi (il a peut-être changé entre-temps)."
	case errors.Is(err, dispatch.ErrStale):
		return "L'envoi est en cours de transmission: action impossible."
	case errors.Is(err, dispatch.ErrNoAddress):
		return "Pas d'adresse où envoyer: modifiez d'abord le destinataire."
	case errors.As(err, &bad):
		return "Destinataire refusé: " + recipientProblems[bad.Problem]
	case errors.Is(err, dispatch.ErrNotFound):
		return "Introuvable."
	}
	return ""
}

// recipientProblems says in French why a recipient was refused.
var recipientProblems = map[string]string{
	desk.ProblemNotAnAddress: "ce n'est pas une adresse de messagerie.",
	desk.ProblemUntrusted:    "adresse hors de l'espace de confiance MSSanté.",
	desk.ProblemNoPostal:     "adresse postale incomplète (ville ou ligne d'acheminement).",
	desk.ProblemNoAddress:    "adresse MSSanté ou adresse postale requise.",
	desk.ProblemNoName:       "le nom est obligatoire.",
}

// postalFromForm reads the postal address fields of a form.
func postalFromForm(r *http.Request) dispatch.PostalAddress {
	var a dispatch.PostalAddress
	for _, l := range strings.Split(r.PostFormValue("postal_lines"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			a.Lines = append(a.Lines, l)
		}
	}
	a.PostalCode = strings.TrimSpace(r.PostFormValue("postal_code"))
	a.City = strings.TrimSpace(r.PostFormValue("city"))
	if a.PostalCode != "" || a.City != "" {
		a.RoutingLine = strings.TrimSpace(a.PostalCode + " " + strings.ToUpper(a.City))
	}
	return a
}
