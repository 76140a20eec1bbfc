// Package webtest runs the service's HTTP side for tests: Setup serves
// web's real handler over the real service and a fresh database (its jobs
// worked after Work), with what the tests of web and of its screens
// (packages dashboard and admin) do to it (reports posted, users signed in,
// browser scenarios run); Browser is a dashboard user's browser: it keeps
// its cookies, does not follow redirects, and submits forms with the CSRF
// token of the last page it read, as the dashboard's real forms do.
package webtest

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Browser browses the dashboard at URL (e.g. http://127.0.0.1:8080).
type Browser struct {
	URL  string
	http *http.Client
	csrf string
}

// New is a browser that has not signed in.
func New(t testing.TB, baseURL string) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &Browser{URL: baseURL, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Login signs in through the login form and fails t unless it is accepted.
func (b *Browser) Login(t testing.TB, username, password string) {
	t.Helper()
	status, body := b.Post(t, "/login", url.Values{"username": {username}, "password": {password}})
	require.Equal(t, http.StatusSeeOther, status, body)
}

// CSRF is the CSRF token of the last page read (fetching the login page
// first when none was).
func (b *Browser) CSRF(t testing.TB) string {
	t.Helper()
	if b.csrf == "" {
		b.Get(t, "/login")
	}
	return b.csrf
}

// Client is the browser's HTTP client, with its cookies, for a request the
// methods above do not make.
func (b *Browser) Client() *http.Client { return b.http }

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// Get fetches path and returns the status and body (the Location of a
// redirection), and remembers the page's CSRF token.
func (b *Browser) Get(t testing.TB, path string) (int, string) {
	t.Helper()
	return b.Send(t, http.MethodGet, path, nil)
}

// Post submits form to path with the last page's CSRF token, unless form has one.
func (b *Browser) Post(t testing.TB, path string, form url.Values) (int, string) {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if !form.Has("csrf_token") {
		form.Set("csrf_token", b.CSRF(t))
	}
	return b.Send(t, http.MethodPost, path, form)
}

// Send sends a request with form (nil: none) and returns the status and
// body, or the Location of a redirection.
func (b *Browser) Send(t testing.TB, method, path string, form url.Values) (int, string) {
	t.Helper()
	resp, body := b.Do(t, method, path, form) //nolint:bodyclose // false positive: Do read and closed the body
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode/100 == 3 {
		return resp.StatusCode, loc
	}
	return resp.StatusCode, body
}

// Do sends the request and returns the response with its body read (and
// remembers the page's CSRF token).
func (b *Browser) Do(t testing.TB, method, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(context.Background(), method, b.URL+path, body)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if m := csrfField.FindSubmatch(data); m != nil {
		b.csrf = string(m[1])
	}
	return resp, string(data)
}
