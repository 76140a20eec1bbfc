package web

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/internal/redact"
	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/web/admin"
	"github.com/mssdispatch/mssdispatch/web/dashboard"
)

// HL7Intake handles one raw HL7 message and returns its ACK, as it does for
// a message received over MLLP (an *hl7intake.Handler).
type HL7Intake interface {
	HandleHL7(ctx context.Context, raw []byte) []byte
	// HandleHL7TooLarge answers a message of size bytes, larger than the
	// body limit, of which head is the start.
	HandleHL7TooLarge(ctx context.Context, head []byte, size int64) []byte
	// Reprocessor runs a quarantined message through the intake again, for
	// the quarantine's "Retraiter".
	admin.Reprocessor
}

// Pinger checks the database (a pgxpool.Pool).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config configures the HTTP handler.
type Config struct {
	// APIToken is the bearer token required on /api/. Required.
	APIToken string
	// Intake, HL7, Directory, Resolver and DB are the services behind the
	// routes. Required.
	Intake    ReportIntake
	HL7       HL7Intake
	Directory admin.Directory
	Resolver  Resolver
	DB        Pinger
	// Rules serves /api/v1/rules and the rules screen (the CME's rules, a
	// *ruleset.Store). Required.
	Rules admin.Rules
	// Gatherer is served on /metrics. Required.
	Gatherer prometheus.Gatherer
	// Dashboard, Accounts and Sessions serve the secretaries' dashboard
	// (a *desk.Desk, an *auth.Store, *auth.Sessions). Required.
	Dashboard dashboard.Actions
	Accounts  *auth.Store
	Sessions  *auth.Sessions
	// Letters serves the letters and the paper batches (a *letters.Desk). Required.
	Letters dashboard.Letters
	// Hospital is the name the dashboard shows; may be empty.
	Hospital string
	// HospitalAddresses are the hospital's MSSanté addresses that the
	// adoption campaign's invitation letters give to correspondents.
	HospitalAddresses []string
	// Views is what the dashboard and the REST API read (a
	// *readmodel.Reader). Required.
	Views dashboard.Views
	// Quarantine lists the rejected messages (a *quarantine.Desk). Required.
	Quarantine admin.Quarantine
	// Audit is the journal of the audit log, for admins (an *audit.Log). Required.
	Audit admin.AuditLog
	// JobsUI is River's UI (NewJobsUI), mounted on /admin/jobs/ for admins; nil leaves it out.
	JobsUI http.Handler
	// MaxBodySize bounds the API's request bodies, in bytes. Defaults to
	// 32 MiB. The dashboard's forms have their own, smaller limits (limits.go).
	MaxBodySize int64
	// TrustedProxies are the reverse proxies in front of the service: the
	// client's address of a request from one of them is read from
	// X-Forwarded-For (auth.ClientAddress), for the login throttle, the
	// limit of wrong API tokens and the audit log. Empty (the default):
	// X-Forwarded-For is never read, the client is the TCP peer.
	TrustedProxies []netip.Prefix
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// NewHandler validates cfg and returns the service's HTTP handler.
func NewHandler(cfg Config) (http.Handler, error) {
	switch {
	case cfg.APIToken == "":
		return nil, errors.New("web: Config.APIToken is required")
	case cfg.Intake == nil || cfg.HL7 == nil || cfg.Directory == nil || cfg.Resolver == nil ||
		cfg.Rules == nil || cfg.DB == nil || cfg.Gatherer == nil:
		return nil, errors.New("web: Config.Intake, HL7, Directory, Resolver, Rules, DB and Gatherer are required")
	case cfg.Dashboard == nil || cfg.Letters == nil || cfg.Accounts == nil || cfg.Sessions == nil || cfg.Views == nil ||
		cfg.Quarantine == nil || cfg.Audit == nil:
		return nil, errors.New("web: Config.Dashboard, Letters, Accounts, Sessions, Views, Quarantine and Audit are required")
	}
	if cfg.MaxBodySize == 0 {
		cfg.MaxBodySize = 32 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	dash, err := dashboard.New(dashboard.Config{Actions: cfg.Dashboard, Views: cfg.Views, Letters: cfg.Letters,
		Directory: cfg.Directory, Hospital: cfg.Hospital, HospitalAddresses: cfg.HospitalAddresses, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	adm, err := admin.New(dash, admin.Config{Directory: cfg.Directory, Rules: cfg.Rules, Views: cfg.Views, HL7: cfg.HL7,
		Quarantine: cfg.Quarantine, Audit: cfg.Audit, Accounts: cfg.Accounts, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, tokenLimiter: apiTokenLimiter(), dashboard: dash, admin: adm}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer, auth.ClientAddress(cfg.TrustedProxies), validURL)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	r.Get("/api/v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(s.requireToken)
		r.Post("/hl7", s.postHL7)
		r.Post("/reports", s.postReport)
		r.Get("/reports", s.getReportByDocumentID)
		r.Get("/reports/{id}", s.getReport)
		r.Get("/directory", s.searchDirectory)
		r.Get("/directory/resolve", s.resolveRecipient)
		r.Get("/correspondents", s.listCorrespondents)
		r.Post("/correspondents", s.postCorrespondent)
		r.Get("/correspondents/{id}", s.getCorrespondent)
		r.Put("/correspondents/{id}", s.putCorrespondent)
		r.Delete("/correspondents/{id}", s.deleteCorrespondent)
		r.Get("/rules", s.getRules)
		r.Put("/rules", s.putRules)
		r.Get("/rules/history", s.getRulesHistory)
		r.Post("/rules/dry-run", s.postDryRun)
		r.Get("/rules/{version}", s.getRulesVersion)
	})
	s.screensRoutes(r)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) { writeError(w, http.StatusNotFound, "no such route") })
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed on this route")
	})
	return r, nil
}

//go:embed openapi.json
var openAPI []byte

type server struct {
	cfg Config
	// tokenLimiter slows the addresses that send wrong bearer tokens.
	tokenLimiter *auth.AddressLimiter
	// dashboard and admin are the screens (screens.go); the login page is
	// rendered in the dashboard's frame.
	dashboard *dashboard.UI
	admin     *admin.UI
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.DB.Ping(ctx); err != nil {
		s.cfg.Logger.WarnContext(ctx, "not ready", "error", redact.Text(err.Error()))
		writeError(w, http.StatusServiceUnavailable, "database unreachable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// requireToken lets through the requests carrying the bearer token. A
// client address that keeps sending wrong ones waits (429 with
// Retry-After, the token not even compared): ten free failures, then 1 s,
// 2 s… up to a minute (apiTokenLimiter). A request without an
// Authorization header guesses nothing: it gets 401 and does not count.
func (s *server) requireToken(next http.Handler) http.Handler {
	want := []byte("Bearer " + s.cfg.APIToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if len(got) > 0 {
			ip := auth.ClientIP(r)
			if wait := s.tokenLimiter.Attempt(ip); wait > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
				writeError(w, http.StatusTooManyRequests, "too many wrong bearer tokens from this address: retry later")
				return
			}
			if subtle.ConstantTimeCompare(got, want) == 1 {
				s.tokenLimiter.Succeeded(ip)
				next.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="mssdispatch"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
	})
}

// postHL7 takes one raw HL7 message and answers its ACK, whatever the ACK
// code, the very ACK MLLP would (an empty or oversize message included):
// the HTTP status only says whether the body could be read.
func (s *server) postHL7(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodySize+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "cannot read the body")
		return
	}
	var ack []byte
	if int64(len(body)) > s.cfg.MaxBodySize {
		rest, _ := io.Copy(io.Discard, r.Body)
		ack = s.cfg.HL7.HandleHL7TooLarge(r.Context(), body, int64(len(body))+rest)
	} else {
		ack = s.cfg.HL7.HandleHL7(r.Context(), body)
	}
	w.Header().Set("Content-Type", "x-application/hl7-v2+er7; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(ack)
}

func (s *server) getReport(w http.ResponseWriter, r *http.Request) {
	id, ok := idParam(w, r)
	if !ok {
		return
	}
	v, err := s.cfg.Views.Report(r.Context(), audit.ActorAPI, id)
	s.writeReport(w, r, v, err)
}

func (s *server) getReportByDocumentID(w http.ResponseWriter, r *http.Request) {
	docID := r.URL.Query().Get("document_id")
	if docID == "" {
		writeError(w, http.StatusBadRequest, "the document_id query parameter is required")
		return
	}
	v, err := s.cfg.Views.ReportByDocumentID(r.Context(), audit.ActorAPI, docID)
	s.writeReport(w, r, v, err)
}

func (s *server) writeReport(w http.ResponseWriter, r *http.Request, v readmodel.ReportView, err error) {
	switch {
	case errors.Is(err, dispatch.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such report")
	case err != nil:
		s.cfg.Logger.ErrorContext(r.Context(), "load report", "error", redact.Text(err.Error()))
		writeError(w, http.StatusInternalServerError, "cannot load the report")
	default:
		if v.Deliveries == nil {
			v.Deliveries = []readmodel.DeliveryView{}
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, reason string) {
	writeJSON(w, status, map[string]string{"error": reason})
}
