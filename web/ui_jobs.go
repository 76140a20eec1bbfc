package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"
)

// This file holds River's UI (riverqueue.com/riverui): the jobs and queues,
// for administrators.

// jobsPrefix is where the dashboard mounts River's UI.
const jobsPrefix = "/admin/jobs"

// NewJobsUI returns River's UI on client's database, to be served on
// /admin/jobs/ (Config.JobsUI). Its background services (caches of counts)
// run until ctx is done. logger defaults to slog.Default().
func NewJobsUI(ctx context.Context, client *river.Client[pgx.Tx], logger *slog.Logger) (http.Handler, error) {
	if client == nil {
		return nil, errors.New("web: NewJobsUI: the River client is required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(client, nil),
		// A job's arguments hold ids only, but hiding them keeps the list short.
		JobListHideArgsByDefault: true,
		Logger:                   logger,
		Prefix:                   jobsPrefix,
	})
	if err != nil {
		return nil, fmt.Errorf("web: River UI: %w", err)
	}
	if err := h.Start(ctx); err != nil {
		return nil, fmt.Errorf("web: start River UI: %w", err)
	}
	return h, nil
}

// jobsRoutes mounts Config.JobsUI, when set, on /admin/jobs/; r requires
// PermAdmin. River's UI sends its changes (cancel, retry, pause…)
// as JSON without the dashboard's CSRF token: it refuses them itself when
// they come from another origin (Sec-Fetch-Site, Origin), so that it can be
// mounted outside auth.Sessions.CSRF.
func (s *server) jobsRoutes(r chi.Router) {
	if s.cfg.JobsUI == nil {
		return
	}
	h := http.NewCrossOriginProtection().Handler(jobsHeaders(s.cfg.JobsUI))
	r.Handle(jobsPrefix, h)
	r.Handle(jobsPrefix+"/*", h)
}

// jobsCSP is the Content-Security-Policy of River's UI: the dashboard's,
// with the inline styles its single-page application sets.
const jobsCSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
	"object-src 'none'; frame-ancestors 'self'; form-action 'self'"

// jobsHeaders replaces the dashboard's security headers by those River's UI needs.
func jobsHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", jobsCSP)
		next.ServeHTTP(w, r)
	})
}
