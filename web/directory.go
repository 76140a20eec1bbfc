package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// Resolver previews the routes of a recipient (a *correspondents.Resolver).
type Resolver interface {
	Resolve(ctx context.Context, rc correspondents.Recipient) ([]correspondents.Route, error)
}

// searchDirectory answers GET /api/v1/directory?q=&city=&profession=&limit=.
func (s *server) searchDirectory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	entries, err := s.cfg.Directory.Search(r.Context(), correspondents.SearchQuery{
		Text: q.Get("q"), City: q.Get("city"), Profession: q.Get("profession"), Limit: limit})
	if err != nil {
		s.internalError(w, r, "search the directory", err)
		return
	}
	if entries == nil {
		entries = []correspondents.SearchResult{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}

// getSuggest answers the type-ahead of the dashboard's directory search
// (GET /suggest?q=, for a signed-in user): JSON mailboxes.
func (s *server) getSuggest(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len([]rune(q)) < 2 {
		writeJSON(w, http.StatusOK, []correspondents.SearchResult{})
		return
	}
	results, err := s.cfg.Directory.Search(r.Context(), correspondents.SearchQuery{Text: q, Limit: 10})
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "directory suggest", "error", redact.Text(err.Error()))
		writeError(w, http.StatusInternalServerError, "directory search failed")
		return
	}
	if results == nil {
		results = []correspondents.SearchResult{}
	}
	writeJSON(w, http.StatusOK, results)
}

// resolveRecipient answers GET /api/v1/directory/resolve?rpps=|adeli=|finess=&address=&name=:
// the routes a report to that recipient would take now.
func (s *server) resolveRecipient(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rr := recipientRequest{RPPS: q.Get("rpps"), ADELI: q.Get("adeli"), FINESS: q.Get("finess"),
		Family: q.Get("name"), Address: q.Get("address")}
	rc, err := rr.recipient("", "")
	var fe *fieldError
	if errors.As(err, &fe) {
		writeFieldError(w, fe)
		return
	}
	if rc.Kind == "" {
		writeError(w, http.StatusBadRequest, "give rpps, adeli, finess or address")
		return
	}
	routes, err := s.cfg.Resolver.Resolve(r.Context(), correspondents.Recipient{Kind: rc.Kind, NationalID: rc.NationalID,
		FINESS: rc.FINESS, Name: rc.Name(), Address: rc.Address})
	if err != nil {
		s.internalError(w, r, "resolve", err)
		return
	}
	type route struct {
		Channel       correspondents.Channel       `json:"channel"`
		Address       string                       `json:"address,omitempty"`
		Name          string                       `json:"name,omitempty"`
		PostalAddress correspondents.PostalAddress `json:"postal_address,omitzero"`
		Review        bool                         `json:"review"`
		Reason        correspondents.Reason        `json:"reason"`
		ReasonText    string                       `json:"reason_text"`
	}
	out := make([]route, 0, len(routes))
	for _, rt := range routes {
		out = append(out, route{rt.Channel, rt.Address, rt.Name, rt.PostalAddress, rt.Review, rt.Reason, rt.Text})
	}
	writeJSON(w, http.StatusOK, map[string]any{"routes": out})
}

// correspondentRequest is the body of POST and PUT /api/v1/correspondents.
type correspondentRequest struct {
	RPPS           string                       `json:"rpps"`
	ADELI          string                       `json:"adeli"`
	FINESS         string                       `json:"finess"`
	Family         string                       `json:"family"`
	Given          string                       `json:"given"`
	Organisation   string                       `json:"organisation"`
	MSSanteAddress string                       `json:"mssante_address"`
	PostalAddress  correspondents.PostalAddress `json:"postal_address"`
	Preference     string                       `json:"preference"`
	Note           string                       `json:"note"`
}

func (s *server) listCorrespondents(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	if limit == 0 {
		limit = 50
	}
	list, err := s.cfg.Directory.ListLocal(r.Context(), r.URL.Query().Get("q"), min(limit, 500))
	if err != nil {
		s.internalError(w, r, "list correspondents", err)
		return
	}
	if list == nil {
		list = []correspondents.LocalCorrespondent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"correspondents": list})
}

func (s *server) getCorrespondent(w http.ResponseWriter, r *http.Request) {
	id, ok := idParam(w, r)
	if !ok {
		return
	}
	c, err := s.cfg.Directory.Local(r.Context(), id)
	s.writeCorrespondent(w, r, http.StatusOK, c, err)
}

func (s *server) postCorrespondent(w http.ResponseWriter, r *http.Request) {
	s.saveCorrespondent(w, r, 0, http.StatusCreated)
}

func (s *server) putCorrespondent(w http.ResponseWriter, r *http.Request) {
	if id, ok := idParam(w, r); ok {
		s.saveCorrespondent(w, r, id, http.StatusOK)
	}
}

func (s *server) saveCorrespondent(w http.ResponseWriter, r *http.Request, id int64, status int) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var req correspondentRequest
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("the body is not a valid correspondent: %v", err))
		return
	}
	who, err := recipientRequest{RPPS: req.RPPS, ADELI: req.ADELI}.recipient("", "")
	var fe *fieldError
	if errors.As(err, &fe) {
		writeFieldError(w, fe)
		return
	}
	c := correspondents.LocalCorrespondent{ID: id, NationalID: who.NationalID, FINESS: req.FINESS, Family: req.Family,
		Given: req.Given, Organisation: req.Organisation, MSSanteAddress: req.MSSanteAddress,
		PostalAddress: req.PostalAddress, Preference: req.Preference, Note: req.Note}
	saved, err := s.cfg.Directory.SaveLocal(r.Context(), c, audit.ActorAPI)
	s.writeCorrespondent(w, r, status, saved, err)
}

func (s *server) deleteCorrespondent(w http.ResponseWriter, r *http.Request) {
	id, ok := idParam(w, r)
	if !ok {
		return
	}
	err := s.cfg.Directory.DeleteLocal(r.Context(), id, audit.ActorAPI)
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.writeCorrespondent(w, r, 0, correspondents.LocalCorrespondent{}, err)
}

// writeCorrespondent writes c with status, or the error of the operation.
func (s *server) writeCorrespondent(w http.ResponseWriter, r *http.Request, status int, c correspondents.LocalCorrespondent, err error) {
	var ve *correspondents.ValidationError
	switch {
	case err == nil:
		writeJSON(w, status, c)
	case errors.As(err, &ve):
		writeFieldError(w, &fieldError{ve.Field, ve.Msg})
	case errors.Is(err, correspondents.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such correspondent")
	case errors.Is(err, correspondents.ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	default:
		s.internalError(w, r, "local correspondent", err)
	}
}

// decodeStrict decodes one JSON value, refusing unknown fields.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func writeFieldError(w http.ResponseWriter, fe *fieldError) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": fe.msg, "field": fe.field})
}

func (s *server) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.cfg.Logger.ErrorContext(r.Context(), what, "error", redact.Text(err.Error()))
	writeError(w, http.StatusInternalServerError, "internal error: "+what)
}

// idParam reads the {id} of the route, answering 400 itself when it is not a positive integer.
func idParam(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "the id must be a positive integer")
		return 0, false
	}
	return id, true
}

// limitParam reads the optional limit query parameter (0 when absent).
func limitParam(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		writeError(w, http.StatusBadRequest, "limit must be a positive integer")
		return 0, false
	}
	return n, true
}
