package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/web/dashboard"
)

// This file mounts the screens (packages dashboard and admin) behind the
// login, with the headers of their pages, and serves the login itself.

// screensRoutes mounts the dashboard on r: the login, then the screens
// behind it, the secretaries' (package dashboard) and the administration's
// (package admin).
func (s *server) screensRoutes(r chi.Router) {
	r.Handle("/static/*", dashboard.Static())
	// River's UI checks the origin of its changes itself (ui_jobs.go): it
	// does not know the dashboard's CSRF token; the profiler only reads.
	r.Group(func(r chi.Router) {
		r.Use(limitForms, s.cfg.Sessions.Middleware, securityHeaders, s.cfg.Sessions.RequireUser, auth.Require(auth.PermAdmin))
		s.jobsRoutes(r)
		pprofRoutes(r)
	})
	r.Group(func(r chi.Router) {
		r.Use(limitForms, s.cfg.Sessions.Middleware, s.cfg.Sessions.CSRF, securityHeaders)
		r.Get("/login", s.getLogin)
		r.Post("/login", s.postLogin)
		r.Group(func(r chi.Router) {
			r.Use(s.cfg.Sessions.RequireUser)
			r.Post("/logout", s.postLogout)
			r.Get("/suggest", s.getSuggest)
			s.dashboard.Routes(r)
			s.admin.Routes(r)
		})
	})
}

// securityHeaders keeps the dashboard's pages out of frames and caches.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'self'; frame-src 'self'; frame-ancestors 'self'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func (s *server) getLogin(w http.ResponseWriter, r *http.Request) {
	if _, ok := auth.CurrentUser(r.Context()); ok {
		http.Redirect(w, r, auth.SafeRedirect(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.dashboard.Render(w, r, http.StatusOK, "login", "Connexion", "", loginForm{Next: r.URL.Query().Get("next")})
}

// loginForm is the login page.
type loginForm struct {
	Next, Username, Error string
}

func (s *server) postLogin(w http.ResponseWriter, r *http.Request) {
	form := loginForm{Next: r.PostFormValue("next"), Username: strings.TrimSpace(r.PostFormValue("username"))}
	user, err := s.cfg.Accounts.Authenticate(r.Context(), form.Username, r.PostFormValue("password"), auth.ClientIP(r))
	var limited *auth.RateLimitError
	switch {
	case errors.As(err, &limited):
		secs := retryAfterSeconds(limited.RetryAfter)
		if secs < 60 {
			form.Error = fmt.Sprintf("Trop de tentatives : réessayez dans %d secondes.", secs)
		} else {
			form.Error = fmt.Sprintf("Trop de tentatives : réessayez dans %d minutes.", (secs+59)/60)
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.dashboard.Render(w, r, http.StatusTooManyRequests, "login", "Connexion", "", form)
		return
	case errors.Is(err, auth.ErrBadCredentials):
		form.Error = "Identifiant ou mot de passe incorrect."
		s.dashboard.Render(w, r, http.StatusUnauthorized, "login", "Connexion", "", form)
		return
	case err != nil:
		s.dashboard.ServerError(w, r, err)
		return
	}
	if err := s.cfg.Sessions.Login(w, r, user); err != nil {
		s.dashboard.ServerError(w, r, err)
		return
	}
	http.Redirect(w, r, auth.SafeRedirect(form.Next), http.StatusSeeOther)
}

func (s *server) postLogout(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Sessions.Logout(w, r); err != nil {
		s.dashboard.ServerError(w, r, err)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
