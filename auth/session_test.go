package auth_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/auth"
)

// app is a small dashboard behind the package's middleware.
type app struct {
	*testBundle
	sessions *auth.Sessions
	handler  http.Handler
}

func newApp(t *testing.T) *app {
	t.Helper()
	tb := setup(t)
	sessions, err := auth.NewSessions(auth.SessionConfig{Store: tb.store, Logger: quiet})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, auth.CSRFToken(r.Context()))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		u, err := tb.store.Authenticate(r.Context(), r.PostFormValue("username"), r.PostFormValue("password"), auth.ClientIP(r))
		switch {
		case errors.Is(err, auth.ErrBadCredentials) || errors.Is(err, auth.ErrRateLimited):
			http.Error(w, err.Error(), http.StatusUnauthorized)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			if err := sessions.Login(w, r, u); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			http.Redirect(w, r, auth.SafeRedirect(r.PostFormValue("next")), http.StatusSeeOther)
		}
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.Logout(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
	me := func(w http.ResponseWriter, r *http.Request) {
		u, _ := auth.CurrentUser(r.Context())
		_, _ = io.WriteString(w, u.Username+" "+auth.CSRFToken(r.Context()))
	}
	mux.Handle("GET /me", sessions.RequireUser(http.HandlerFunc(me)))
	mux.Handle("POST /act", sessions.RequireUser(auth.Require(auth.PermAct)(http.HandlerFunc(me))))
	mux.Handle("/rules", sessions.RequireUser(auth.Require(auth.PermRules)(http.HandlerFunc(me))))
	mux.HandleFunc("GET /public", me)
	return &app{testBundle: tb, sessions: sessions, handler: sessions.Middleware(sessions.CSRF(mux))}
}

// request is one request to the app.
type request struct {
	method, target string
	cookies        []*http.Cookie
	form           url.Values
	header         map[string]string
}

func (a *app) do(t *testing.T, req request) *http.Response {
	t.Helper()
	var body io.Reader
	if req.form != nil {
		body = strings.NewReader(req.form.Encode())
	}
	r := httptest.NewRequest(req.method, req.target, body)
	if req.form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	for _, c := range req.cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	a.handler.ServeHTTP(w, r)
	return w.Result()
}

// get requests target with cookies and returns the status and body.
func (a *app) get(t *testing.T, target string, cookies ...*http.Cookie) (int, string) {
	t.Helper()
	resp := a.do(t, request{method: http.MethodGet, target: target, cookies: cookies})
	return resp.StatusCode, readBody(t, resp)
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// cookie returns the cookie name set by resp, nil if none.
func cookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// login logs username in through the login form, sending cookies, and
// returns the session cookie.
func (a *app) login(t *testing.T, username string, cookies ...*http.Cookie) *http.Cookie {
	t.Helper()
	resp := a.do(t, request{method: http.MethodGet, target: "/login", cookies: cookies})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	// The form's token: the pre-session cookie's, or the session's when
	// the browser has one.
	token := readBody(t, resp)
	if csrf := cookie(resp, "mssdispatch_csrf"); csrf != nil {
		require.Equal(t, csrf.Value, token)
		cookies = append(cookies, csrf)
	}
	resp = a.do(t, request{method: http.MethodPost, target: "/login", cookies: cookies,
		form: url.Values{"username": {username}, "password": {password}, "csrf_token": {token}}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, readBody(t, resp))
	var set []*http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "mssdispatch_session" {
			set = append(set, c)
		}
	}
	require.Len(t, set, 1, "one answer for the session cookie")
	require.Len(t, set[0].Value, 43)
	return set[0]
}

// csrfOf returns the session's CSRF token, as /me shows it.
func (a *app) csrfOf(t *testing.T, session *http.Cookie) string {
	t.Helper()
	status, body := a.get(t, "/me", session)
	require.Equal(t, http.StatusOK, status, body)
	_, token, _ := strings.Cut(body, " ")
	require.NotEmpty(t, token)
	return token
}

func TestSessionLogin(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.addUser(t, "alice", auth.RoleSecretary)

	// The login form gets a pre-session CSRF cookie.
	resp := a.do(t, request{method: http.MethodGet, target: "/login"})
	csrf := cookie(resp, "mssdispatch_csrf")
	require.NotNil(t, csrf)
	require.True(t, csrf.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, csrf.SameSite)
	require.Equal(t, "/", csrf.Path)
	require.Len(t, csrf.Value, 43)
	require.Equal(t, csrf.Value, readBody(t, resp))
	// A second visit keeps it.
	resp = a.do(t, request{method: http.MethodGet, target: "/login", cookies: []*http.Cookie{csrf}})
	require.Nil(t, cookie(resp, "mssdispatch_csrf"))
	require.Equal(t, csrf.Value, readBody(t, resp))

	form := url.Values{"username": {"alice"}, "password": {password}, "next": {"/me?tab=1"}}
	// Without the token, or with another one, the login is refused before the password is checked.
	resp = a.do(t, request{method: http.MethodPost, target: "/login", cookies: []*http.Cookie{csrf}, form: form})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.JSONEq(t, `{"error": "jeton CSRF manquant ou invalide"}`, readBody(t, resp))
	form.Set("csrf_token", strings.Repeat("A", 43))
	resp = a.do(t, request{method: http.MethodPost, target: "/login", cookies: []*http.Cookie{csrf}, form: form})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	form.Set("csrf_token", csrf.Value)
	resp = a.do(t, request{method: http.MethodPost, target: "/login", form: form})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "the field without the cookie")

	resp = a.do(t, request{method: http.MethodPost, target: "/login", cookies: []*http.Cookie{csrf}, form: form,
		header: map[string]string{"User-Agent": "Firefox/140.0"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, readBody(t, resp))
	require.Equal(t, "/me?tab=1", resp.Header.Get("Location"))
	session := cookie(resp, "mssdispatch_session")
	require.NotNil(t, session)
	require.True(t, session.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, session.SameSite)
	require.Equal(t, "/", session.Path)
	require.False(t, session.Secure, "plain HTTP, SecureAuto")
	require.Zero(t, session.MaxAge, "a cookie of the browser's session")
	require.Len(t, session.Value, 43)
	gone := cookie(resp, "mssdispatch_csrf")
	require.NotNil(t, gone, "the pre-session cookie is deleted")
	require.Negative(t, gone.MaxAge)

	// The database has the token's hash, never the token.
	var n int
	var ip, ua string
	sum := sha256.Sum256([]byte(session.Value))
	require.NoError(t, a.pool.QueryRow(a.ctx, `SELECT count(*) OVER (), client_ip, user_agent FROM sessions
		WHERE token_hash = $1 AND expires_at BETWEEN now() + interval '11 hours 59 minutes' AND now() + interval '12 hours'`,
		sum[:]).Scan(&n, &ip, &ua))
	require.Equal(t, 1, n)
	require.Equal(t, "192.0.2.1", ip)
	require.Equal(t, "Firefox/140.0", ua)
	require.NoError(t, a.pool.QueryRow(a.ctx, `SELECT count(*) FROM sessions
		WHERE position(convert_to($1, 'UTF8') IN token_hash) > 0 OR csrf_token = $1`, session.Value).Scan(&n))
	require.Zero(t, n)

	// The session finds the user; its CSRF token is not the pre-session one.
	status, body := a.get(t, "/me", session)
	require.Equal(t, http.StatusOK, status)
	require.True(t, strings.HasPrefix(body, "alice "), body)
	require.NotEqual(t, "alice "+csrf.Value, body)

	// A wrong password gets no session.
	form.Set("password", "mot de passe erroné")
	resp = a.do(t, request{method: http.MethodPost, target: "/login", cookies: []*http.Cookie{csrf}, form: form})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Nil(t, cookie(resp, "mssdispatch_session"))
}

func TestSessionFixation(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.addUser(t, "alice", auth.RoleSecretary)
	a.addUser(t, "bob", auth.RoleAdmin)

	first := a.login(t, "alice")
	// Logging in again from the same browser replaces the session.
	second := a.login(t, "bob", first)
	require.NotEqual(t, first.Value, second.Value)
	status, _ := a.get(t, "/me", first)
	require.Equal(t, http.StatusUnauthorized, status, "the old cookie is dead")
	status, body := a.get(t, "/me", second)
	require.Equal(t, http.StatusOK, status)
	require.True(t, strings.HasPrefix(body, "bob "))

	// A token planted in a browser before login (never issued, or issued to
	// someone else) does not survive the login.
	planted := &http.Cookie{Name: "mssdispatch_session", Value: strings.Repeat("A", 43)}
	third := a.login(t, "alice", planted)
	require.NotEqual(t, planted.Value, third.Value)
	var n int
	require.NoError(t, a.pool.QueryRow(a.ctx, "SELECT count(*) FROM sessions").Scan(&n))
	require.Equal(t, 2, n, "bob's and alice's new session")

	// Login refuses a user that is not enabled.
	w := httptest.NewRecorder()
	require.Error(t, a.sessions.Login(w, httptest.NewRequest(http.MethodPost, "/login", nil), auth.User{ID: 1, Disabled: true}))
	require.Error(t, a.sessions.Login(w, httptest.NewRequest(http.MethodPost, "/login", nil), auth.User{}))
}

func TestSessionEnds(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	alice := a.addUser(t, "alice", auth.RoleSecretary)
	meAs := func(c *http.Cookie) (int, *http.Cookie) {
		resp := a.do(t, request{method: http.MethodGet, target: "/me", cookies: []*http.Cookie{c},
			header: map[string]string{"Accept": "application/json"}})
		return resp.StatusCode, cookie(resp, "mssdispatch_session")
	}
	for _, tt := range []struct {
		name, sql string
	}{
		{"expired", "UPDATE sessions SET expires_at = now() - interval '1 second'"},
		{"idle", "UPDATE sessions SET last_seen_at = now() - interval '2 hours 1 second'"},
		{"user disabled", "UPDATE users SET disabled = true"},
		{"user deleted", "DELETE FROM users"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.pool.Exec(a.ctx, "UPDATE users SET disabled = false")
			require.NoError(t, err)
			c := a.login(t, "alice")
			status, _ := meAs(c)
			require.Equal(t, http.StatusOK, status)
			_, err = a.pool.Exec(a.ctx, tt.sql)
			require.NoError(t, err)
			status, set := meAs(c)
			require.Equal(t, http.StatusUnauthorized, status)
			require.NotNil(t, set, "the dead cookie is deleted")
			require.Negative(t, set.MaxAge)
			// A page that does not require a user goes on without one.
			status, body := a.get(t, "/public", c)
			require.Equal(t, http.StatusOK, status)
			require.False(t, strings.HasPrefix(body, "alice"))
		})
		if tt.name == "user disabled" {
			// Disabling through the store ends the sessions at once.
			_, err := a.pool.Exec(a.ctx, "UPDATE users SET disabled = false")
			require.NoError(t, err)
			c := a.login(t, "alice")
			require.NoError(t, a.store.SetDisabled(a.ctx, alice.Username, true))
			status, _ := meAs(c)
			require.Equal(t, http.StatusUnauthorized, status)
			var n int
			require.NoError(t, a.pool.QueryRow(a.ctx, "SELECT count(*) FROM sessions").Scan(&n))
			require.Zero(t, n)
			require.NoError(t, a.store.SetDisabled(a.ctx, alice.Username, false))
		}
	}

	// Changing the password ends the sessions too.
	a.addUser(t, "bob", auth.RoleCME)
	c := a.login(t, "bob")
	require.NoError(t, a.store.SetPassword(a.ctx, "bob", "another long passphrase"))
	status, _ := meAs(c)
	require.Equal(t, http.StatusUnauthorized, status)
}

func TestSessionTouch(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.addUser(t, "alice", auth.RoleSecretary)
	c := a.login(t, "alice")
	lastSeen := func() time.Duration {
		var d float64
		require.NoError(t, a.pool.QueryRow(a.ctx, "SELECT extract(epoch FROM now() - last_seen_at) FROM sessions").Scan(&d))
		return time.Duration(d * float64(time.Second))
	}
	// Seen 30 seconds ago: not written again.
	_, err := a.pool.Exec(a.ctx, "UPDATE sessions SET last_seen_at = now() - interval '30 seconds'")
	require.NoError(t, err)
	status, _ := a.get(t, "/me", c)
	require.Equal(t, http.StatusOK, status)
	require.Greater(t, lastSeen(), 29*time.Second)
	// Seen 90 minutes ago: alive (idle timeout 2h), and touched.
	_, err = a.pool.Exec(a.ctx, "UPDATE sessions SET last_seen_at = now() - interval '90 minutes'")
	require.NoError(t, err)
	status, _ = a.get(t, "/me", c)
	require.Equal(t, http.StatusOK, status)
	require.Less(t, lastSeen(), 10*time.Second)
}

func TestSessionLogout(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.addUser(t, "alice", auth.RoleSecretary)
	c := a.login(t, "alice")
	token := a.csrfOf(t, c)

	resp := a.do(t, request{method: http.MethodPost, target: "/logout", cookies: []*http.Cookie{c}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "logout needs the CSRF token too")

	resp = a.do(t, request{method: http.MethodPost, target: "/logout", cookies: []*http.Cookie{c},
		header: map[string]string{"X-CSRF-Token": token}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	gone := cookie(resp, "mssdispatch_session")
	require.NotNil(t, gone)
	require.Negative(t, gone.MaxAge)
	var n int
	require.NoError(t, a.pool.QueryRow(a.ctx, "SELECT count(*) FROM sessions").Scan(&n))
	require.Zero(t, n)
	status, _ := a.get(t, "/me", c)
	require.Equal(t, http.StatusUnauthorized, status)

	records, err := audit.NewLog(a.pool).Read(a.ctx, audit.Filter{Action: "logout"})
	require.NoError(t, err)
	require.Len(t, records, 1)
	require.Equal(t, audit.Entry{Actor: "alice", Action: "logout", Object: "user:alice", Detail: "depuis 192.0.2.1"}, records[0].Entry)

	// Without a session, logout only deletes the cookie.
	w := httptest.NewRecorder()
	require.NoError(t, a.sessions.Logout(w, httptest.NewRequest(http.MethodPost, "/logout", nil)))
	require.Contains(t, w.Header().Get("Set-Cookie"), "mssdispatch_session=;")
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.addUser(t, "alice", auth.RoleSecretary)
	c := a.login(t, "alice")
	token := a.csrfOf(t, c)
	cookies := []*http.Cookie{c}

	for _, tt := range []struct {
		name   string
		form   url.Values
		header map[string]string
		want   int
	}{
		{"no token", url.Values{"x": {"1"}}, nil, http.StatusForbidden},
		{"wrong field", url.Values{"csrf_token": {flipLast(token)}}, nil, http.StatusForbidden},
		{"wrong header", nil, map[string]string{"X-CSRF-Token": "nope"}, http.StatusForbidden},
		{"header wins over field", url.Values{"csrf_token": {token}}, map[string]string{"X-CSRF-Token": "nope"}, http.StatusForbidden},
		{"token in the query only", nil, nil, http.StatusForbidden},
		{"right field", url.Values{"csrf_token": {token}}, nil, http.StatusOK},
		{"right header", nil, map[string]string{"X-CSRF-Token": token}, http.StatusOK},
	} {
		target := "/act"
		if tt.name == "token in the query only" {
			target += "?csrf_token=" + url.QueryEscape(token)
		}
		resp := a.do(t, request{method: http.MethodPost, target: target, cookies: cookies, form: tt.form, header: tt.header})
		body := readBody(t, resp)
		require.Equal(t, tt.want, resp.StatusCode, "%s: %s", tt.name, body)
		if tt.want == http.StatusForbidden {
			require.JSONEq(t, `{"error": "jeton CSRF manquant ou invalide"}`, body, tt.name)
		}
	}
	for _, method := range []string{http.MethodPut, http.MethodPatch, http.MethodDelete} {
		resp := a.do(t, request{method: method, target: "/rules", cookies: cookies})
		require.Equal(t, http.StatusForbidden, resp.StatusCode, method)
		require.Contains(t, readBody(t, resp), "jeton CSRF", method)
	}

	// A browser gets a page.
	resp := a.do(t, request{method: http.MethodPost, target: "/act", cookies: cookies, form: url.Values{},
		header: map[string]string{"Accept": "text/html,application/xhtml+xml"}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, readBody(t, resp), "<h1>Jeton CSRF manquant ou invalide</h1>")

	// Another session's token does not do.
	other := a.login(t, "alice")
	resp = a.do(t, request{method: http.MethodPost, target: "/act", cookies: []*http.Cookie{other},
		header: map[string]string{"X-CSRF-Token": token}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp = a.do(t, request{method: http.MethodPost, target: "/act", cookies: []*http.Cookie{other},
		header: map[string]string{"X-CSRF-Token": a.csrfOf(t, other)}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// flipLast returns token with another last character.
func flipLast(token string) string {
	if strings.HasSuffix(token, "A") {
		return token[:len(token)-1] + "B"
	}
	return token[:len(token)-1] + "A"
}

func TestRequireUser(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	html := map[string]string{"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
	for _, tt := range []struct {
		method, target string
		header         map[string]string
		status         int
		location       string
	}{
		{http.MethodGet, "/me?tab=%C3%A9checs&page=2", html, http.StatusSeeOther, "/login?next=%2Fme%3Ftab%3D%25C3%25A9checs%26page%3D2"},
		{http.MethodHead, "/me", html, http.StatusSeeOther, "/login?next=%2Fme"},
		{http.MethodGet, "/me", map[string]string{"Accept": "application/json"}, http.StatusUnauthorized, ""},
		{http.MethodGet, "/me", nil, http.StatusUnauthorized, ""},
		{http.MethodGet, "/me", map[string]string{"Accept": "text/html", "HX-Request": "true"}, http.StatusUnauthorized, ""},
		{http.MethodPut, "/rules", map[string]string{"Accept": "text/html"}, http.StatusForbidden, ""}, // CSRF first
	} {
		resp := a.do(t, request{method: tt.method, target: tt.target, header: tt.header})
		body := readBody(t, resp)
		require.Equal(t, tt.status, resp.StatusCode, "%s %s", tt.method, tt.target)
		require.Equal(t, tt.location, resp.Header.Get("Location"), "%s %s", tt.method, tt.target)
		if tt.status == http.StatusUnauthorized {
			var e map[string]string
			require.NoError(t, json.Unmarshal([]byte(body), &e), body)
			require.Equal(t, "authentification requise", e["error"])
		}
	}
	resp := a.do(t, request{method: http.MethodGet, target: "/me", header: map[string]string{"HX-Request": "true"}})
	require.Equal(t, "/login?next=%2Fme", resp.Header.Get("HX-Redirect"))

	// Only a local path goes into next (ServeMux would clean this one first).
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "//evil.example/me", nil)
	r.Header.Set("Accept", "text/html")
	a.sessions.RequireUser(http.NotFoundHandler()).ServeHTTP(w, r)
	require.Equal(t, http.StatusSeeOther, w.Code)
	require.Equal(t, "/login", w.Header().Get("Location"))
	// Nor is the login page its own next.
	w = httptest.NewRecorder()
	r = httptest.NewRequest(http.MethodGet, "/login?next=%2Fme", nil)
	r.Header.Set("Accept", "text/html")
	a.sessions.RequireUser(http.NotFoundHandler()).ServeHTTP(w, r)
	require.Equal(t, "/login", w.Header().Get("Location"))

	// With a pre-session CSRF token, a POST without a session is refused
	// for want of a user.
	resp = a.do(t, request{method: http.MethodGet, target: "/login"})
	csrf := cookie(resp, "mssdispatch_csrf")
	resp = a.do(t, request{method: http.MethodPost, target: "/act", cookies: []*http.Cookie{csrf},
		form: url.Values{"csrf_token": {csrf.Value}}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestSessionRequirePermission(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.addUser(t, "alice", auth.RoleSecretary)
	a.addUser(t, "dr-cme", auth.RoleCME)
	secretary := a.login(t, "alice")
	cme := a.login(t, "dr-cme")

	put := func(c *http.Cookie, header map[string]string) (int, string) {
		h := map[string]string{"X-CSRF-Token": a.csrfOf(t, c)}
		for k, v := range header {
			h[k] = v
		}
		resp := a.do(t, request{method: http.MethodPut, target: "/rules", cookies: []*http.Cookie{c}, header: h})
		return resp.StatusCode, readBody(t, resp)
	}
	status, body := put(secretary, nil)
	require.Equal(t, http.StatusForbidden, status)
	require.JSONEq(t, `{"error": "accès refusé"}`, body)
	status, body = put(secretary, map[string]string{"Accept": "text/html"})
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, body, "Accès refusé")
	status, body = put(cme, nil)
	require.Equal(t, http.StatusOK, status)
	require.True(t, strings.HasPrefix(body, "dr-cme "))

	// The CME may not act on deliveries; the secretary may.
	resp := a.do(t, request{method: http.MethodPost, target: "/act", cookies: []*http.Cookie{cme},
		header: map[string]string{"X-CSRF-Token": a.csrfOf(t, cme)}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp = a.do(t, request{method: http.MethodPost, target: "/act", cookies: []*http.Cookie{secretary},
		header: map[string]string{"X-CSRF-Token": a.csrfOf(t, secretary)}})
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// Without a user, Require answers as RequireUser.
	w := httptest.NewRecorder()
	auth.Require(auth.PermView)(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
	require.Equal(t, http.StatusUnauthorized, w.Code)
}

func TestSessionPurge(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.addUser(t, "alice", auth.RoleSecretary)
	for range 3 {
		a.login(t, "alice")
	}
	live := a.login(t, "alice")
	_, err := a.store.Authenticate(a.ctx, "alice", "mot de passe erroné", "")
	require.ErrorIs(t, err, auth.ErrBadCredentials)
	sum := sha256.Sum256([]byte(live.Value))
	_, err = a.pool.Exec(a.ctx, `UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE token_hash <> $1`, sum[:])
	require.NoError(t, err)
	_, err = a.pool.Exec(a.ctx, `INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at, last_seen_at)
		SELECT sha256('idle'), id, 'x', now() + interval '1 hour', now() - interval '3 hours' FROM users`)
	require.NoError(t, err)
	_, err = a.pool.Exec(a.ctx, `INSERT INTO login_failures (key, at) VALUES ('pair:old|192.0.2.1', now() - interval '25 hours')`)
	require.NoError(t, err)
	_, err = a.pool.Exec(a.ctx, `INSERT INTO login_known_addresses (user_id, address, last_login_at)
		SELECT id, '192.0.2.200', now() - interval '91 days' FROM users`)
	require.NoError(t, err)

	n, err := a.sessions.Purge(a.ctx)
	require.NoError(t, err)
	require.EqualValues(t, 4, n, "three expired, one idle")
	status, _ := a.get(t, "/me", live)
	require.Equal(t, http.StatusOK, status)
	var keys []string
	rows, err := a.pool.Query(a.ctx, "SELECT key FROM login_failures")
	require.NoError(t, err)
	for rows.Next() {
		var k string
		require.NoError(t, rows.Scan(&k))
		keys = append(keys, k)
	}
	require.NoError(t, rows.Err())
	require.ElementsMatch(t, []string{"pair:alice|", "user:alice"}, keys, "the recent failure stays")
	var addresses []string
	rows, err = a.pool.Query(a.ctx, "SELECT address FROM login_known_addresses ORDER BY address")
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		addresses = append(addresses, s)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"192.0.2.1"}, addresses, "the logins of over 90 days ago purged, the recent ones kept")

	// The periodic job does the same.
	_, err = a.pool.Exec(a.ctx, `UPDATE sessions SET expires_at = now() - interval '1 minute'`)
	require.NoError(t, err)
	require.NoError(t, auth.RunPurgeJob(a.ctx, a.sessions))
	status, _ = a.get(t, "/me", live)
	require.Equal(t, http.StatusUnauthorized, status, "the purge job deleted the last session")
}

func TestSessionSecureCookies(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	u := tb.addUser(t, "alice", auth.RoleSecretary)
	for _, tt := range []struct {
		mode   auth.SecureMode
		tls    bool
		header string
		want   bool
	}{
		{auth.SecureAuto, false, "", false},
		{auth.SecureAuto, true, "", true},
		{auth.SecureAuto, false, "HTTPS", true},
		{auth.SecureAuto, false, "http", false},
		{auth.SecureAlways, false, "", true},
		{auth.SecureNever, true, "https", false},
	} {
		sessions, err := auth.NewSessions(auth.SessionConfig{Store: tb.store, Secure: tt.mode, CookieName: "dash", Logger: quiet})
		require.NoError(t, err)
		r := httptest.NewRequest(http.MethodPost, "/login", nil)
		if tt.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if tt.header != "" {
			r.Header.Set("X-Forwarded-Proto", tt.header)
		}
		w := httptest.NewRecorder()
		require.NoError(t, sessions.Login(w, r, u))
		c := cookie(w.Result(), "dash")
		require.NotNil(t, c)
		require.Equal(t, tt.want, c.Secure, "%+v", tt)
	}
}

func TestNewSessions(t *testing.T) {
	t.Parallel()
	store := auth.NewStore(nil)
	for _, tt := range []struct {
		cfg     auth.SessionConfig
		wantErr string
	}{
		{auth.SessionConfig{}, "Store is required"},
		{auth.SessionConfig{Store: store, CookieName: "a b"}, "CookieName"},
		{auth.SessionConfig{Store: store, CookieName: "mssdispatch_csrf"}, "CookieName"},
		{auth.SessionConfig{Store: store, TTL: time.Second}, "TTL"},
		{auth.SessionConfig{Store: store, IdleTimeout: -time.Hour}, "IdleTimeout"},
		{auth.SessionConfig{Store: store, Secure: 7}, "Secure"},
	} {
		_, err := auth.NewSessions(tt.cfg)
		require.ErrorContains(t, err, tt.wantErr)
	}
	_, err := auth.NewSessions(auth.SessionConfig{Store: store})
	require.NoError(t, err)
}

func TestSessionSafeRedirect(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/deliveries?status=failed": "/deliveries?status=failed",
		"/":                         "/",
		"":                          "/",
		"deliveries":                "/",
		"//evil.example/x":          "/",
		"/\\evil.example":           "/",
		"https://evil.example/":     "/",
		"javascript:alert(1)":       "/",
		"/a\r\nSet-Cookie: x=y":     "/",
		"/%2F%2Fevil.example":       "/%2F%2Fevil.example",
	} {
		require.Equal(t, want, auth.SafeRedirect(in), in)
	}
}
