package dashboard

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/desk"
	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// This file holds the frame of the dashboard: the templates, what every page
// shows (the user, the worklists' counts, a flash message), and the routes
// of the secretaries' screens.

// Actions is what the secretaries' screens do (a *desk.Desk); what they
// read is Views.
type Actions interface {
	Approve(ctx context.Context, deliveryID int64, user string) error
	SendTo(ctx context.Context, deliveryID int64, user, address string) error
	Hold(ctx context.Context, deliveryID int64, user, why string) error
	Cancel(ctx context.Context, deliveryID int64, user, why string) error
	Resend(ctx context.Context, deliveryID int64, user string) error
	SwitchToPaper(ctx context.Context, deliveryID int64, user string) (int64, error)
	EditRecipient(ctx context.Context, deliveryID int64, user string, c desk.RecipientChange) error
	AddRecipient(ctx context.Context, reportID int64, user string, rc dispatch.Recipient) (int64, error)
	MarkPaperSent(ctx context.Context, deliveryID int64, user string) error
	PostalReturn(ctx context.Context, deliveryID int64, user, why string) error
}

// Directory searches the national directory, for a report's page (a
// *correspondents.Store).
type Directory interface {
	Search(ctx context.Context, q correspondents.SearchQuery) ([]correspondents.SearchResult, error)
}

// Config configures the dashboard.
type Config struct {
	// Actions, Views, Letters and Directory are the services behind the
	// screens. Required.
	Actions   Actions
	Views     Views
	Letters   Letters
	Directory Directory
	// Hospital is the name the pages show; may be empty.
	Hospital string
	// HospitalAddresses are the hospital's MSSanté addresses that the
	// adoption campaign's invitation letters give to correspondents.
	HospitalAddresses []string
	// Logger logs the errors the pages answer 500 for. Required.
	Logger *slog.Logger
}

//go:embed templates static
var uiFiles embed.FS

// paris is the time zone the dashboard shows.
var paris = dispatch.Zone

// UI serves the dashboard: the secretaries' screens (Routes), and the
// rendering of every screen's page in the dashboard's frame (AddPages,
// Render and the error pages), which package admin's screens share.
type UI struct {
	cfg   Config
	pages map[string]*template.Template
}

// New returns the dashboard with its pages parsed.
func New(cfg Config) (*UI, error) {
	u := &UI{cfg: cfg, pages: map[string]*template.Template{}}
	if err := u.AddPages(uiFiles); err != nil {
		return nil, err
	}
	return u, nil
}

// AddPages parses the pages of fsys (templates/*.html but layout.html, each
// defining "content"), within the dashboard's layout and with its
// functions, for Render; a page's name is its file's, without .html.
func (u *UI) AddPages(fsys fs.FS) error {
	names, err := fs.Glob(fsys, "templates/*.html")
	if err != nil {
		return err
	}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		if _, dup := u.pages[base]; dup {
			return fmt.Errorf("dashboard: template %s: another page has that name", name)
		}
		t, err := template.New(base).Funcs(uiFuncs).ParseFS(uiFiles, "templates/layout.html")
		if err == nil {
			t, err = t.ParseFS(fsys, name)
		}
		if err != nil {
			return fmt.Errorf("dashboard: template %s: %w", name, err)
		}
		u.pages[base] = t
	}
	return nil
}

// Routes mounts the secretaries' screens on r, which requires a user: the
// worklists, the reports, the statistics and the paper.
func (u *UI) Routes(r chi.Router) {
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/worklists/review", http.StatusSeeOther)
	})
	r.Get("/worklists/{name}", u.getWorklist)
	r.Get("/reports/{id}", u.getReportPage)
	r.Get("/reports/{id}/document.pdf", u.getReportPDF)
	u.statsRoutes(r)
	u.paperRoutes(r)
	r.Group(func(r chi.Router) {
		r.Use(auth.Require(auth.PermAct))
		r.Post("/deliveries/{id}/{action}", u.postDeliveryAction)
		r.Post("/worklists/{name}/selection", u.postSelection)
		r.Post("/reports/{id}/recipients", u.postAddRecipient)
	})
}

// Static serves the dashboard's style sheets and scripts under /static/,
// cached an hour.
func Static() http.Handler {
	static, _ := fs.Sub(uiFiles, "static")
	files := http.FileServerFS(static)
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
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

// SetFlash shows text on the next page of this browser.
func SetFlash(w http.ResponseWriter, isError bool, text string) {
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

// Render writes the page name with data, as the status code.
func (u *UI) Render(w http.ResponseWriter, r *http.Request, status int, name, title, nav string, data any) {
	p := page{Title: title, Nav: nav, Hospital: u.cfg.Hospital, CSRF: auth.CSRFToken(r.Context()), Data: data}
	if user, ok := auth.CurrentUser(r.Context()); ok {
		p.User = user
		counts, err := u.cfg.Views.WorklistCounts(r.Context(), ServicesOf(user))
		if err != nil {
			u.ServerError(w, r, err)
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
func (u *UI) execute(w http.ResponseWriter, r *http.Request, status int, name, root string, data any) {
	t, ok := u.pages[name]
	if !ok {
		u.ServerError(w, r, fmt.Errorf("no template %q", name))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, root, data); err != nil {
		u.ServerError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// ServerError logs err (never patient data: errors carry ids) and answers 500.
func (u *UI) ServerError(w http.ResponseWriter, r *http.Request, err error) {
	u.cfg.Logger.ErrorContext(r.Context(), "dashboard", "path", r.URL.Path, "error", redact.Text(err.Error()))
	http.Error(w, "Erreur interne: l'incident est journalisé.", http.StatusInternalServerError)
}

// NotFound answers the dashboard's 404 page.
func (u *UI) NotFound(w http.ResponseWriter, r *http.Request, what string) {
	u.Render(w, r, http.StatusNotFound, "error", "Introuvable", "", what)
}

// BadRequest answers the error page with status 400.
func (u *UI) BadRequest(w http.ResponseWriter, r *http.Request, what string) {
	u.Render(w, r, http.StatusBadRequest, "error", "Requête invalide", "", what)
}

// PathID reads the route's {id}, answering the 404 page saying what when it is not an id.
func (u *UI) PathID(w http.ResponseWriter, r *http.Request, what string) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		u.NotFound(w, r, what)
		return 0, false
	}
	return id, true
}

// ServicesOf is the services a user is limited to, nil for all.
func ServicesOf(u auth.User) []string {
	if len(u.Services) == 0 {
		return nil
	}
	return u.Services
}

// CurrentUser is the signed-in user (the routes behind RequireUser always have one).
func CurrentUser(r *http.Request) auth.User {
	u, _ := auth.CurrentUser(r.Context())
	return u
}
