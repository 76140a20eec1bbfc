package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// SecureMode says when the cookies carry the Secure attribute.
type SecureMode int

// The secure modes.
const (
	// SecureAuto sets Secure when the request came over TLS, directly
	// (r.TLS) or through a proxy saying X-Forwarded-Proto: https.
	SecureAuto SecureMode = iota
	// SecureAlways always sets Secure (the dashboard is only served over HTTPS).
	SecureAlways
	// SecureNever never sets it (plain HTTP on a trusted network, tests).
	SecureNever
)

// SessionConfig configures the dashboard's sessions.
type SessionConfig struct {
	// Store keeps the sessions. Required.
	Store *Store
	// CookieName is the session cookie's name. Defaults to "mssdispatch_session".
	CookieName string
	// TTL is a session's absolute lifetime from login. Defaults to 12h.
	TTL time.Duration
	// IdleTimeout ends a session unused for that long. Defaults to 2h.
	IdleTimeout time.Duration
	// Secure says when cookies carry the Secure attribute. Defaults to SecureAuto.
	Secure SecureMode
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Defaults and constants of the sessions.
const (
	defaultCookieName = "mssdispatch_session"
	csrfCookieName    = "mssdispatch_csrf"
	defaultTTL        = 12 * time.Hour
	defaultIdle       = 2 * time.Hour
	// touchEvery is how stale last_seen_at may get before a request updates it.
	touchEvery = time.Minute
	// loginPath is where RequireUser sends a browser without a session.
	loginPath  = "/login"
	tokenBytes = 32
)

// Sessions logs users in and out with a cookie holding a random token (the
// database keeps only its SHA-256), and provides the HTTP middleware that
// finds the user of a request, requires one, checks permissions and CSRF
// tokens.
type Sessions struct {
	cfg SessionConfig
}

// NewSessions validates cfg and returns the sessions.
func NewSessions(cfg SessionConfig) (*Sessions, error) {
	if cfg.Store == nil {
		return nil, errors.New("auth: SessionConfig.Store is required")
	}
	if cfg.CookieName == "" {
		cfg.CookieName = defaultCookieName
	}
	if err := (&http.Cookie{Name: cfg.CookieName, Value: "x"}).Valid(); err != nil || cfg.CookieName == csrfCookieName {
		return nil, fmt.Errorf("auth: SessionConfig.CookieName %q: not a valid cookie name, or %s", cfg.CookieName, csrfCookieName)
	}
	if cfg.TTL == 0 {
		cfg.TTL = defaultTTL
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = defaultIdle
	}
	switch {
	case cfg.TTL < time.Minute:
		return nil, fmt.Errorf("auth: SessionConfig.TTL %s: want at least a minute", cfg.TTL)
	case cfg.IdleTimeout < time.Minute:
		return nil, fmt.Errorf("auth: SessionConfig.IdleTimeout %s: want at least a minute", cfg.IdleTimeout)
	case cfg.Secure < SecureAuto || cfg.Secure > SecureNever:
		return nil, fmt.Errorf("auth: SessionConfig.Secure %d: want SecureAuto, SecureAlways or SecureNever", cfg.Secure)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Sessions{cfg: cfg}, nil
}

// session is the session of a request, in its context.
type session struct {
	user User
	csrf string
}

// sessionKey is the context key of the request's *session.
type sessionKey struct{}

// CurrentUser returns the user of the request whose context is ctx, false
// when it has no session (or Sessions.Middleware did not run).
func CurrentUser(ctx context.Context) (User, bool) {
	if s, ok := ctx.Value(sessionKey{}).(*session); ok {
		return s.user, true
	}
	return User{}, false
}

// Login starts a session for u, however it was authenticated (Authenticate,
// later an OIDC provider): it deletes the sessions of the cookies the browser
// sent (no session fixation) and sets a new cookie with a new random token,
// HttpOnly, SameSite=Lax, Path=/, Secure per the configuration, lasting as
// long as the browser runs (the database ends it after TTL).
func (m *Sessions) Login(w http.ResponseWriter, r *http.Request, u User) error {
	if u.ID == 0 || u.Disabled {
		return fmt.Errorf("auth: login of %q: not an enabled user", u.Username)
	}
	token, err := randomToken()
	if err != nil {
		return err
	}
	csrf, err := randomToken()
	if err != nil {
		return err
	}
	var old [][]byte
	for _, c := range r.CookiesNamed(m.cfg.CookieName) {
		if h, ok := hashToken(c.Value); ok {
			old = append(old, h)
		}
	}
	th, _ := hashToken(token)
	if err := m.cfg.Store.createSession(r.Context(), old, th, u.ID, csrf, m.cfg.TTL, ClientIP(r), r.UserAgent()); err != nil {
		return fmt.Errorf("login of %s: %w", u.Username, err)
	}
	setCookie(w, m.cookie(r, m.cfg.CookieName, token, http.SameSiteLaxMode))
	if len(r.CookiesNamed(csrfCookieName)) > 0 {
		setCookie(w, m.expired(r, csrfCookieName, http.SameSiteStrictMode))
	}
	return nil
}

// Logout ends the session of the request's cookie, expires the cookie and
// writes the audit entry "logout"; a request without a session only gets the
// cookie expired.
func (m *Sessions) Logout(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	for _, c := range r.CookiesNamed(m.cfg.CookieName) {
		th, ok := hashToken(c.Value)
		if !ok {
			continue
		}
		username, found, err := m.cfg.Store.deleteSession(ctx, th)
		if err != nil {
			return fmt.Errorf("logout: %w", err)
		}
		if found {
			err := m.cfg.Store.audit(ctx, nil, audit.Entry{Actor: username, Action: "logout", Object: "user:" + username,
				Detail: ipDetail(ClientIP(r))})
			if err != nil {
				return fmt.Errorf("logout: %w", err)
			}
		}
	}
	setCookie(w, m.expired(r, m.cfg.CookieName, http.SameSiteLaxMode))
	return nil
}

// Middleware finds the session of the request's cookie: when it is live (not
// past its TTL nor idle timeout, of an enabled user), the user is in the
// request's context (CurrentUser); without one the request goes on without a
// user, and a dead cookie is expired. It records the session's use at most
// once a minute.
func (m *Sessions) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		sent := false
		for _, c := range r.CookiesNamed(m.cfg.CookieName) {
			sent = true
			th, ok := hashToken(c.Value)
			if !ok {
				continue
			}
			u, csrf, stale, found, err := m.cfg.Store.loadSession(ctx, th, m.cfg.IdleTimeout, touchEvery)
			if err != nil {
				m.cfg.Logger.ErrorContext(ctx, "load session", "error", redact.Text(err.Error()))
				writeError(w, r, http.StatusInternalServerError, "erreur interne : session illisible")
				return
			}
			if !found {
				continue
			}
			if stale {
				if err := m.cfg.Store.touchSession(ctx, th); err != nil {
					m.cfg.Logger.WarnContext(ctx, "touch session", "user", u.Username, "error", redact.Text(err.Error()))
				}
			}
			ctx = context.WithValue(ctx, sessionKey{}, &session{user: u, csrf: csrf})
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		if sent {
			setCookie(w, m.expired(r, m.cfg.CookieName, http.SameSiteLaxMode))
		}
		next.ServeHTTP(w, r)
	})
}

// Purge deletes the sessions past their TTL or idle timeout, the login
// failures too old to count and the login addresses too old to exempt, for a
// periodic job; it returns the number of sessions deleted.
func (m *Sessions) Purge(ctx context.Context) (int64, error) {
	return m.cfg.Store.purgeSessions(ctx, m.cfg.IdleTimeout, pairWindow, knownFor)
}

// cookie returns a cookie for the browser's session (no Expires).
func (m *Sessions) cookie(r *http.Request, name, value string, sameSite http.SameSite) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: sameSite, Secure: m.secure(r)}
}

// setCookie sets c on w's response, replacing a cookie of the same name set
// earlier in the request (Middleware deletes a dead session cookie, then the
// login handler sets the new one): the browser gets one answer per cookie.
func setCookie(w http.ResponseWriter, c *http.Cookie) {
	h := w.Header()
	kept := h.Values("Set-Cookie")[:0:0]
	for _, v := range h.Values("Set-Cookie") {
		if !strings.HasPrefix(v, c.Name+"=") {
			kept = append(kept, v)
		}
	}
	h.Del("Set-Cookie")
	for _, v := range kept {
		h.Add("Set-Cookie", v)
	}
	http.SetCookie(w, c)
}

// expired returns a cookie that deletes name.
func (m *Sessions) expired(r *http.Request, name string, sameSite http.SameSite) *http.Cookie {
	c := m.cookie(r, name, "", sameSite)
	c.MaxAge = -1
	return c
}

// secure reports whether the cookies of r's response carry Secure.
func (m *Sessions) secure(r *http.Request) bool {
	switch m.cfg.Secure {
	case SecureAlways:
		return true
	case SecureNever:
		return false
	}
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// randomToken returns 32 random bytes in unpadded base64url.
func randomToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// validToken reports whether s is a token of randomToken.
func validToken(s string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == tokenBytes
}

// hashToken returns the SHA-256 of a session token, false when s is not one.
func hashToken(s string) ([]byte, bool) {
	if !validToken(s) {
		return nil, false
	}
	h := sha256.Sum256([]byte(s))
	return h[:], true
}
