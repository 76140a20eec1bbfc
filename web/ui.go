package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// This file holds the frame of the dashboard: its routes, the templates and
// what every page shows (the user, the worklists' counts, a flash message).

// Dashboard is what the secretaries' screens do (a *dispatch.Service); what
// they read is Views.
type Dashboard interface {
	Approve(ctx context.Context, deliveryID int64, user string) error
	SendTo(ctx context.Context, deliveryID int64, user, address string) error
	Hold(ctx context.Context, deliveryID int64, user, why string) error
	Cancel(ctx context.Context, deliveryID int64, user, why string) error
	Resend(ctx context.Context, deliveryID int64, user string) error
	SwitchToPaper(ctx context.Context, deliveryID int64, user string) (int64, error)
	EditRecipient(ctx context.Context, deliveryID int64, user string, c dispatch.RecipientChange) error
	AddRecipient(ctx context.Context, reportID int64, user string, rc dispatch.Recipient) (int64, error)
	MarkPaperSent(ctx context.Context, deliveryID int64, user string) error
	PostalReturn(ctx context.Context, deliveryID int64, user, why string) error
}

//go:embed templates static
var uiFiles embed.FS

// paris is the time zone the dashboard shows.
var paris = dispatch.Zone

// ui serves the dashboard.
type ui struct {
	cfg   Config
	pages map[string]*template.Template
}

func newUI(cfg Config) (*ui, error) {
	u := &ui{cfg: cfg, pages: map[string]*template.Template{}}
	names, err := fs.Glob(uiFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(uiFuncs).ParseFS(uiFiles, "templates/layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		u.pages[base] = t
	}
	return u, nil
}

// routes mounts the dashboard on r: the login, then the screens behind it.
func (u *ui) routes(r chi.Router) {
	static, _ := fs.Sub(uiFiles, "static")
	r.Handle("/static/*", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	// River's UI checks the origin of its changes itself (ui_jobs.go): it
	// does not know the dashboard's CSRF token; the profiler only reads.
	r.Group(func(r chi.Router) {
		r.Use(limitForms, u.cfg.Sessions.Middleware, securityHeaders, u.cfg.Sessions.RequireUser, auth.Require(auth.PermAdmin))
		u.jobsRoutes(r)
		u.pprofRoutes(r)
	})
	r.Group(func(r chi.Router) {
		r.Use(limitForms, u.cfg.Sessions.Middleware, u.cfg.Sessions.CSRF, securityHeaders)
		r.Get("/login", u.getLogin)
		r.Post("/login", u.postLogin)
		r.Group(func(r chi.Router) {
			r.Use(u.cfg.Sessions.RequireUser)
			r.Post("/logout", u.postLogout)
			r.Get("/", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/worklists/review", http.StatusSeeOther)
			})
			r.Get("/worklists/{name}", u.getWorklist)
			r.Get("/reports/{id}", u.getReportPage)
			r.Get("/reports/{id}/document.pdf", u.getReportPDF)
			r.Get("/suggest", u.getSuggest)
			u.statsRoutes(r)
			u.paperRoutes(r)
			u.adminRoutes(r)
			r.Group(func(r chi.Router) {
				r.Use(auth.Require(auth.PermAct))
				r.Post("/deliveries/{id}/{action}", u.postDeliveryAction)
				r.Post("/worklists/{name}/selection", u.postSelection)
				r.Post("/reports/{id}/recipients", u.postAddRecipient)
			})
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

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// page is what every template gets.
type page struct {
	Title    string
	Nav      string // the active entry of the menu
	Hospital string
	User     auth.User
	CSRF     string
	Counts   map[string]int64
	Flash    *flash
	// Data is the screen's own.
	Data any
}

// flash is a message shown once, after a redirect.
type flash struct {
	Error bool
	Text  string
}

const flashCookie = "mssdispatch_flash"

// setFlash shows text on the next page of this browser.
func setFlash(w http.ResponseWriter, isError bool, text string) {
	kind := "ok"
	if isError {
		kind = "err"
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(kind + "|" + text), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 60})
}

// takeFlash reads and clears the flash message.
func takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/", MaxAge: -1})
	v, err := url.QueryUnescape(c.Value)
	kind, text, ok := strings.Cut(v, "|")
	if err != nil || !ok || text == "" {
		return nil
	}
	return &flash{Error: kind == "err", Text: text}
}

// render writes the page name with data, as the status code.
func (u *ui) render(w http.ResponseWriter, r *http.Request, status int, name, title, nav string, data any) {
	p := page{Title: title, Nav: nav, Hospital: u.cfg.Hospital, CSRF: auth.CSRFToken(r.Context()), Data: data}
	if user, ok := auth.CurrentUser(r.Context()); ok {
		p.User = user
		counts, err := u.cfg.Views.WorklistCounts(r.Context(), servicesOf(user))
		if err != nil {
			u.serverError(w, r, err)
			return
		}
		p.Counts = counts
	}
	p.Flash = takeFlash(w, r)
	u.execute(w, r, status, name, "layout", p)
}

// execute writes the template root of the page name with data as the
// status code, or answers 500 when it fails (nothing is written before it
// succeeded).
func (u *ui) execute(w http.ResponseWriter, r *http.Request, status int, name, root string, data any) {
	t, ok := u.pages[name]
	if !ok {
		u.serverError(w, r, fmt.Errorf("no template %q", name))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, root, data); err != nil {
		u.serverError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// serverError logs err (never patient data: errors carry ids) and answers 500.
func (u *ui) serverError(w http.ResponseWriter, r *http.Request, err error) {
	u.cfg.Logger.ErrorContext(r.Context(), "dashboard", "path", r.URL.Path, "error", redact.Text(err.Error()))
	http.Error(w, "Erreur interne: l'incident est journalisé.", http.StatusInternalServerError)
}

// notFound answers the dashboard's 404 page.
func (u *ui) notFound(w http.ResponseWriter, r *http.Request, what string) {
	u.render(w, r, http.StatusNotFound, "error", "Introuvable", "", what)
}

// pathID reads the route's {id}, answering the 404 page saying what when it is not an id.
func (u *ui) pathID(w http.ResponseWriter, r *http.Request, what string) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		u.notFound(w, r, what)
		return 0, false
	}
	return id, true
}

// servicesOf is the services a user is limited to, nil for all.
func servicesOf(u auth.User) []string {
	if len(u.Services) == 0 {
		return nil
	}
	return u.Services
}

// currentUser is the signed-in user (the routes behind RequireUser always have one).
func currentUser(r *http.Request) auth.User {
	u, _ := auth.CurrentUser(r.Context())
	return u
}

func (u *ui) getLogin(w http.ResponseWriter, r *http.Request) {
	if _, ok := auth.CurrentUser(r.Context()); ok {
		http.Redirect(w, r, auth.SafeRedirect(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	u.render(w, r, http.StatusOK, "login", "Connexion", "", loginForm{Next: r.URL.Query().Get("next")})
}

// loginForm is the login page.
type loginForm struct {
	Next, Username, Error string
}

func (u *ui) postLogin(w http.ResponseWriter, r *http.Request) {
	form := loginForm{Next: r.PostFormValue("next"), Username: strings.TrimSpace(r.PostFormValue("username"))}
	user, err := u.cfg.Accounts.Authenticate(r.Context(), form.Username, r.PostFormValue("password"), auth.ClientIP(r))
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
		u.render(w, r, http.StatusTooManyRequests, "login", "Connexion", "", form)
		return
	case errors.Is(err, auth.ErrBadCredentials):
		form.Error = "Identifiant ou mot de passe incorrect."
		u.render(w, r, http.StatusUnauthorized, "login", "Connexion", "", form)
		return
	case err != nil:
		u.serverError(w, r, err)
		return
	}
	if err := u.cfg.Sessions.Login(w, r, user); err != nil {
		u.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, auth.SafeRedirect(form.Next), http.StatusSeeOther)
}

func (u *ui) postLogout(w http.ResponseWriter, r *http.Request) {
	if err := u.cfg.Sessions.Logout(w, r); err != nil {
		u.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
