package dashboard

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/letters"
	"github.com/mssdispatch/mssdispatch/postal"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

// This file holds the worklists' selection: one action on the rows a
// secretary ticked, with a summary of what was done and what was not.

// Actions on a selection.
const (
	selectionApprove = "approve"
	selectionCancel  = "cancel"
	selectionPrint   = "print"
)

// maxSelection bounds a selection: two pages of a worklist.
const maxSelection = 200

// postSelection runs the action of the form on the deliveries it selects
// (ids), each as the secretary would one by one: only those of her
// services, each in its own transaction, and comes back to the worklist
// saying how many it did and, for the others, why not. Printing answers the
// letters' PDF, or nothing printed and why when one of them cannot be.
func (u *UI) postSelection(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if !slices.Contains(readmodel.Worklists, name) {
		u.NotFound(w, r, "Cette liste n'existe pas.")
		return
	}
	back := auth.SafeRedirect(cmp.Or(r.PostFormValue("back"), "/worklists/"+name))
	done := func(failed bool, msg string) {
		SetFlash(w, failed, msg)
		http.Redirect(w, r, back, http.StatusSeeOther)
	}
	var ids []int64
	for _, v := range r.PostForm["ids"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			u.BadRequest(w, r, "Sélection illisible.")
			return
		}
		ids = append(ids, id)
	}
	action, why := r.PostFormValue("action"), strings.TrimSpace(r.PostFormValue("why"))
	switch {
	case len(ids) == 0:
		done(true, "Aucun envoi sélectionné : cochez les lignes à traiter.")
		return
	case len(ids) > maxSelection:
		done(true, fmt.Sprintf("Sélection trop grande : %d envois au plus à la fois.", maxSelection))
		return
	case action == selectionCancel && why == "":
		done(true, "Donnez le motif de l'annulation.")
		return
	}
	ctx, user := r.Context(), CurrentUser(r).Username
	var problems []string
	fail := func(id int64, msg string) {
		problems = append(problems, fmt.Sprintf("n° %d : %s", id, strings.TrimSuffix(msg, ".")))
	}
	var visible []int64
	for _, id := range ids {
		reportID, err := u.cfg.Views.DeliveryReport(ctx, id)
		ok := err == nil
		if ok {
			ok, err = u.sees(r, reportID)
		}
		switch {
		case errors.Is(err, dispatch.ErrNotFound) || (err == nil && !ok):
			fail(id, "introuvable, ou d'un service qui n'est pas le vôtre")
		case err != nil:
			u.ServerError(w, r, err)
			return
		default:
			visible = append(visible, id)
		}
	}
	var n int
	var verb string
	switch action {
	case selectionPrint:
		if len(problems) > 0 {
			done(true, "Rien n'est imprimé. "+strings.Join(problems, " ; ")+".")
			return
		}
		pdf, refused, err := u.cfg.Letters.LettersPDF(ctx, user, visible)
		if err != nil {
			u.ServerError(w, r, err)
			return
		}
		for _, id := range visible {
			if err, ok := refused[id]; ok {
				fail(id, letterProblem(err))
			}
		}
		if len(problems) > 0 {
			done(true, "Rien n'est imprimé : retirez ces envois de la sélection ou corrigez-les. "+strings.Join(problems, " ; ")+".")
			return
		}
		writePDF(w, fmt.Sprintf("courriers-%d.pdf", len(visible)), pdf)
		return
	case selectionApprove, selectionCancel:
		act := func(id int64) error { return u.cfg.Actions.Approve(ctx, id, user) }
		verb = "approuvé(s)"
		if action == selectionCancel {
			act = func(id int64) error { return u.cfg.Actions.Cancel(ctx, id, user, why) }
			verb = "annulé(s)"
		}
		for _, id := range visible {
			err := act(id)
			switch problem := actionProblem(err); {
			case err == nil:
				n++
			case problem == "":
				u.ServerError(w, r, err)
				return
			default:
				fail(id, problem)
			}
		}
	default:
		u.BadRequest(w, r, "Action inconnue.")
		return
	}
	msg := fmt.Sprintf("%d envoi(s) %s.", n, verb)
	if len(problems) > 0 {
		msg += fmt.Sprintf(" %d non traité(s) : %s.", len(problems), strings.Join(problems, " ; "))
	}
	done(len(problems) > 0, msg)
}

// letterProblem says in French why a letter cannot be printed.
func letterProblem(err error) string {
	switch {
	case errors.Is(err, postal.ErrNotPostable):
		return "adresse postale incomplète (ville ou ligne d'acheminement)"
	case errors.Is(err, letters.ErrDocumentPurged):
		return "document purgé (durée de conservation écoulée)"
	}
	return "ce n'est pas un courrier"
}
