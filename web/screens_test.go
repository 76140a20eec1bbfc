package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
	"github.com/mssdispatch/mssdispatch/web"
)

// The tests of screens.go (the login, the screens behind it), River's UI
// and the profiler; the screens' own are in packages dashboard and admin.

var quiet = slog.New(slog.DiscardHandler)

func TestDashboardLoggedOut(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	c := b.Anonymous(t)
	for _, path := range []string{"/", "/worklists/review", "/reports/1", "/reports/1/document.pdf", "/suggest?q=mar"} {
		status, loc := c.Get(t, path)
		require.Equal(t, http.StatusSeeOther, status, path)
		if path != "/" {
			require.Equal(t, "/login?next="+url.QueryEscape(path), loc, path)
		}
	}
	// A logged-out form post is refused (no session, no CSRF pair).
	status, _ := c.Send(t, http.MethodPost, "/deliveries/1/approve", url.Values{"csrf_token": {"forged"}})
	require.Equal(t, http.StatusForbidden, status)
	// With a valid pre-session CSRF pair, still no user: 401.
	c.Get(t, "/login")
	status, _ = c.Post(t, "/deliveries/1/approve", nil)
	require.Equal(t, http.StatusUnauthorized, status)
}

func TestDashboardLogin(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.Login(t, "alice", auth.RoleSecretary)
	c := b.Anonymous(t)
	status, body := c.Post(t, "/login", url.Values{"username": {"alice"}, "password": {"wrong password!"}})
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, body, "Identifiant ou mot de passe incorrect")
	status, body = c.Post(t, "/login", url.Values{"username": {"alice"}, "password": {webtest.Password},
		"next": {"https://evil.example/"}})
	require.Equal(t, http.StatusSeeOther, status)
	require.Equal(t, "/", body, "an outside next is not followed")
	status, body = c.Get(t, "/worklists/review")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "ALICE")
	// The login form without its CSRF token is refused.
	status, _ = b.Anonymous(t).Send(t, http.MethodPost, "/login", url.Values{"username": {"alice"}, "password": {webtest.Password}})
	require.Equal(t, http.StatusForbidden, status)
	// Logout ends the session.
	status, _ = c.Post(t, "/logout", nil)
	require.Equal(t, http.StatusSeeOther, status)
	status, _ = c.Get(t, "/worklists/review")
	require.Equal(t, http.StatusSeeOther, status)
}

func TestDashboardJobsUI(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	status, _ := b.Login(t, "alice", auth.RoleSecretary).Get(t, "/admin/jobs/")
	require.Equal(t, http.StatusForbidden, status)
	admin := b.Login(t, "root", auth.RoleAdmin)
	status, body := admin.Get(t, "/admin/jobs/")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "<html")
	status, body = admin.Get(t, "/admin/jobs/api/jobs?state=completed&limit=5")
	require.Equal(t, http.StatusOK, status, body)
	status, _ = b.Anonymous(t).Get(t, "/admin/jobs/")
	require.Equal(t, http.StatusSeeOther, status)
}

func TestDashboardProfiler(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	status, _ := b.Login(t, "alice", auth.RoleSecretary).Get(t, "/admin/debug/pprof/heap")
	require.Equal(t, http.StatusForbidden, status)
	admin := b.Login(t, "root", auth.RoleAdmin)
	status, body := admin.Get(t, "/admin/debug/pprof/")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "goroutine")
	status, body = admin.Get(t, "/admin/debug/pprof/goroutine?debug=1")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "goroutine profile:")
}

func TestJobsUI(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	_, err := web.NewJobsUI(ctx, nil, quiet)
	require.Error(t, err)
	h, err := web.NewJobsUI(ctx, b.Client, quiet)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/admin/jobs/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	// A report makes a job to list.
	code, _, ack := b.Call(t, "POST", "/api/v1/hl7", webtest.SampleORU(t))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, ack, "MSA|AA")

	get := func(path, accept string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(data)
	}
	require.Eventually(t, func() bool {
		status, body := get("/admin/jobs/api/jobs?state=available&limit=10", "application/json")
		require.Equal(t, http.StatusOK, status, body)
		return strings.Contains(body, `"kind":"resolve_report"`)
	}, 10*time.Second, 100*time.Millisecond)
	status, body := get("/admin/jobs/api/queues", "application/json")
	require.Equal(t, http.StatusOK, status, body)
	status, body = get("/admin/jobs/", "text/html")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "/admin/jobs/api")
}
