package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// RequireUser lets through the requests with a user (see Middleware). Without
// one, a browser's GET or HEAD (Accept: text/html) is redirected (303) to
// /login?next=<the path and query asked for>, and an htmx request gets an
// HX-Redirect header to it; any other request gets 401 and a JSON
// {"error": "..."}.
func (m *Sessions) RequireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := CurrentUser(r.Context()); !ok {
			unauthenticated(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Require returns middleware letting through the requests whose user may do
// p; the others get 403 (an HTML page "Accès refusé" for a browser, else
// JSON), or RequireUser's answer when there is no user.
func Require(p Permission) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, ok := CurrentUser(r.Context())
			switch {
			case !ok:
				unauthenticated(w, r)
			case !u.Can(p):
				writeError(w, r, http.StatusForbidden, "accès refusé")
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// csrfKey is the context key of the pre-session CSRF token.
type csrfKey struct{}

// CSRFToken returns the CSRF token that the forms of the request whose
// context is ctx must carry (field "csrf_token", or header X-CSRF-Token): the
// session's, or without a session the pre-session token set by CSRF; empty
// when neither middleware ran.
func CSRFToken(ctx context.Context) string {
	if s, ok := ctx.Value(sessionKey{}).(*session); ok {
		return s.csrf
	}
	token, _ := ctx.Value(csrfKey{}).(string)
	return token
}

// CSRF refuses (403 "jeton CSRF manquant ou invalide") every request but GET,
// HEAD and OPTIONS whose header X-CSRF-Token, or else form field csrf_token,
// is not the session's CSRF token. Without a session (the login form), the
// token is a double-submit cookie "mssdispatch_csrf" (random, HttpOnly,
// SameSite=Strict) that CSRF sets on a safe request and that the form field
// must repeat. It must run after Middleware.
func (m *Sessions) CSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
		want := CSRFToken(ctx)
		if want == "" {
			if c, err := r.Cookie(csrfCookieName); err == nil && validToken(c.Value) {
				want = c.Value
			} else if safe {
				token, err := randomToken()
				if err != nil {
					m.cfg.Logger.ErrorContext(ctx, "csrf token", "error", redact.Text(err.Error()))
					writeError(w, r, http.StatusInternalServerError, "erreur interne")
					return
				}
				want = token
				setCookie(w, m.cookie(r, csrfCookieName, token, http.SameSiteStrictMode))
			}
			if want != "" {
				ctx = context.WithValue(ctx, csrfKey{}, want)
				r = r.WithContext(ctx)
			}
		}
		if !safe {
			got := r.Header.Get("X-CSRF-Token")
			if got == "" {
				got = r.PostFormValue("csrf_token")
			}
			if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				writeError(w, r, http.StatusForbidden, "jeton CSRF manquant ou invalide")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// SafeRedirect returns next when it is a path of this site (as the next
// parameter RequireUser gives the login page), else "/": a login handler
// must never redirect elsewhere.
func SafeRedirect(next string) string {
	if p, ok := localPath(next); ok {
		return p
	}
	return "/"
}

// localPath reports whether s is a path of this site, not a URL or a
// protocol-relative //host that a browser would leave it for.
func localPath(s string) (string, bool) {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\x00\r\n\t") {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "", false
	}
	return s, true
}

// unauthenticated answers a request that needs a user and has none.
func unauthenticated(w http.ResponseWriter, r *http.Request) {
	target := loginPath
	if next, ok := localPath(r.URL.RequestURI()); ok && r.URL.Path != loginPath {
		target += "?next=" + url.QueryEscape(next)
	}
	switch {
	case r.Header.Get("HX-Request") == "true":
		w.Header().Set("HX-Redirect", target)
		writeError(w, r, http.StatusUnauthorized, "authentification requise")
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && wantsHTML(r):
		http.Redirect(w, r, target, http.StatusSeeOther)
	default:
		writeError(w, r, http.StatusUnauthorized, "authentification requise")
	}
}

// wantsHTML reports whether r comes from a browser asking for a page.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(strings.Join(r.Header.Values("Accept"), ","), "text/html")
}

// errorPage is the page of an error shown to a browser; %s is the message.
const errorPage = `<!doctype html>
<html lang="fr">
<meta charset="utf-8">
<title>%[1]s</title>
<h1>%[1]s</h1>
<p><a href="/">Retour à l’accueil</a></p>
</html>
`

// writeError answers status with message: an HTML page for a browser (the
// message as its title, capitalised), else JSON {"error": message}.
func writeError(w http.ResponseWriter, r *http.Request, status int, message string) {
	w.Header().Set("Cache-Control", "no-store")
	if wantsHTML(r) && r.Header.Get("HX-Request") != "true" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		title := message
		if first, size := utf8.DecodeRuneInString(title); size > 0 {
			title = string(unicode.ToUpper(first)) + title[size:]
		}
		_, _ = fmt.Fprintf(w, errorPage, html.EscapeString(title))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": message})
}
