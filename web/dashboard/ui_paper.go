package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/letters"
	"github.com/mssdispatch/mssdispatch/postal"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

// This file holds the paper screens: the batches of letters to print, their
// PDF, their posting, and a delivery's letter.

// Letters is what the paper screens read and do (a *letters.Desk); the
// worklists' selection prints its letters too (LettersPDF).
type Letters interface {
	LetterPDF(ctx context.Context, viewer string, deliveryID int64) ([]byte, error)
	LettersPDF(ctx context.Context, viewer string, ids []int64) ([]byte, map[int64]error, error)
	Batches(ctx context.Context, limit int) ([]letters.Batch, error)
	BatchService(ctx context.Context, id int64) (string, error)
	Batch(ctx context.Context, viewer string, id int64) (letters.Batch, []letters.BatchLetter, error)
	BatchPDF(ctx context.Context, viewer string, id int64) ([]byte, error)
	MakeBatches(ctx context.Context) error
	MarkBatchPosted(ctx context.Context, batchID int64, user string) (int, error)
}

// paperRoutes mounts the paper screens (r requires a user).
func (u *UI) paperRoutes(r chi.Router) {
	r.Get("/paper/batches", u.getBatches)
	r.Get("/paper/batches/{id}", u.getBatch)
	r.Get("/paper/batches/{id}/lot.pdf", u.getBatchPDF)
	r.Get("/deliveries/{id}/letter.pdf", u.getLetterPDF)
	r.Group(func(r chi.Router) {
		r.Use(auth.Require(auth.PermAct))
		r.Post("/paper/batches", u.postMakeBatches)
		r.Post("/paper/batches/{id}/posted", u.postBatchPosted)
	})
}

// visibleBatches keeps the batches of the user's services.
func visibleBatches(user auth.User, all []letters.Batch) []letters.Batch {
	var out []letters.Batch
	for _, b := range all {
		if user.SeesService(b.Service) {
			out = append(out, b)
		}
	}
	return out
}

func (u *UI) getBatches(w http.ResponseWriter, r *http.Request) {
	batches, err := u.cfg.Letters.Batches(r.Context(), 100)
	if err != nil {
		u.ServerError(w, r, err)
		return
	}
	u.Render(w, r, http.StatusOK, "paper_batches", "Lots de courrier", readmodel.WorklistPaper,
		visibleBatches(CurrentUser(r), batches))
}

// batchPage is a batch's page.
type batchPage struct {
	Batch   letters.Batch
	Letters []letters.BatchLetter
	// Withdrawn counts the letters that left the batch after it was printed.
	Withdrawn int
}

// batchFor returns the route's batch id when the user sees its service,
// answering 404 (also for a batch of a service the user does not see) and
// false otherwise.
func (u *UI) batchFor(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, ok := u.PathID(w, r, "Ce lot n'existe pas.")
	if !ok {
		return 0, false
	}
	service, err := u.cfg.Letters.BatchService(r.Context(), id)
	switch {
	case errors.Is(err, dispatch.ErrNotFound) || (err == nil && !CurrentUser(r).SeesService(service)):
		u.NotFound(w, r, "Ce lot n'existe pas, ou n'est pas d'un de vos services.")
		return 0, false
	case err != nil:
		u.ServerError(w, r, err)
		return 0, false
	}
	return id, true
}

func (u *UI) getBatch(w http.ResponseWriter, r *http.Request) {
	id, ok := u.batchFor(w, r)
	if !ok {
		return
	}
	b, batchLetters, err := u.cfg.Letters.Batch(r.Context(), CurrentUser(r).Username, id)
	if err != nil {
		u.ServerError(w, r, err)
		return
	}
	p := batchPage{Batch: b, Letters: batchLetters}
	for _, l := range batchLetters {
		if l.Withdrawn() {
			p.Withdrawn++
		}
	}
	u.Render(w, r, http.StatusOK, "paper_batch", fmt.Sprintf("Lot n° %d", b.ID), readmodel.WorklistPaper, p)
}

func (u *UI) getBatchPDF(w http.ResponseWriter, r *http.Request) {
	id, ok := u.batchFor(w, r)
	if !ok {
		return
	}
	pdf, err := u.cfg.Letters.BatchPDF(r.Context(), CurrentUser(r).Username, id)
	switch {
	case errors.Is(err, dispatch.ErrNotFound):
		u.NotFound(w, r, "Le PDF de ce lot n'est plus conservé.")
		return
	case err != nil:
		u.ServerError(w, r, err)
		return
	}
	writePDF(w, fmt.Sprintf("lot-%d.pdf", id), pdf)
}

func (u *UI) getLetterPDF(w http.ResponseWriter, r *http.Request) {
	id, _, ok := u.deliveryFor(w, r)
	if !ok {
		return
	}
	pdf, err := u.cfg.Letters.LetterPDF(r.Context(), CurrentUser(r).Username, id)
	switch {
	case errors.Is(err, dispatch.ErrNotFound):
		u.NotFound(w, r, "Cet envoi n'est pas un courrier.")
		return
	case errors.Is(err, postal.ErrNotPostable):
		u.Render(w, r, http.StatusConflict, "error", "Adresse incomplète", "",
			"Ce courrier n'a pas d'adresse postale complète (ville ou ligne d'acheminement): modifiez le destinataire.")
		return
	case errors.Is(err, letters.ErrDocumentPurged):
		u.Render(w, r, http.StatusGone, "error", "Document purgé", "",
			"Le document a été purgé (durée de conservation écoulée): demandez au DPI de le renvoyer.")
		return
	case err != nil:
		u.ServerError(w, r, err)
		return
	}
	writePDF(w, fmt.Sprintf("courrier-%d.pdf", id), pdf)
}

func (u *UI) postMakeBatches(w http.ResponseWriter, r *http.Request) {
	err := u.cfg.Letters.MakeBatches(r.Context())
	u.afterAction(w, r, err, "Préparation des lots demandée: ils apparaissent ici dans quelques instants.", "/paper/batches")
}

func (u *UI) postBatchPosted(w http.ResponseWriter, r *http.Request) {
	id, ok := u.batchFor(w, r)
	if !ok {
		return
	}
	n, err := u.cfg.Letters.MarkBatchPosted(r.Context(), id, CurrentUser(r).Username)
	u.afterAction(w, r, err, fmt.Sprintf("Lot n° %d posté (%d courrier(s)).", id, n), fmt.Sprintf("/paper/batches/%d", id))
}

// writePDF answers a PDF to show in the browser, named name when saved.
func writePDF(w http.ResponseWriter, name string, pdf []byte) {
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`inline; filename="%s"`, name))
	w.Header().Set("Cache-Control", "private, no-store")
	_, _ = w.Write(pdf)
}
