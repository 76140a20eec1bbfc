package web_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
	"github.com/mssdispatch/mssdispatch/web"
)

// setupBehindProxy is setup trusting the test client's address (127.0.0.1)
// as a reverse proxy: X-Forwarded-For names the client.
func setupBehindProxy(t *testing.T) *webtest.Server {
	t.Helper()
	return webtest.Setup(t, func(c *web.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
}

// postLogin submits c's login form from the client at xff (through the
// proxy) and returns the response, its body read.
func postLogin(t *testing.T, c *webtest.Browser, xff, username, password string) *http.Response {
	t.Helper()
	form := url.Values{"username": {username}, "password": {password}, "csrf_token": {c.CSRF(t)}}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, c.URL+"/login", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	req.Header.Set("X-Forwarded-For", xff)
	resp, err := c.Client().Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	return resp
}

// TestLoginBehindProxy is issue #19, item 5, through the dashboard: behind
// the reverse proxy every client had the proxy's address, so an attacker's
// failures kept everyone out. The trusted proxy's X-Forwarded-For now
// names each client, and the throttle is per account and address.
func TestLoginBehindProxy(t *testing.T) {
	t.Parallel()
	b := setupBehindProxy(t)
	for _, name := range []string{"alice", "bob"} {
		_, err := b.Accounts.AddUser(context.Background(), auth.NewUser{Username: name, Password: webtest.Password, Role: auth.RoleSecretary})
		require.NoError(t, err)
	}

	// Five free tries, then the delays: on a loaded machine, a delay of a
	// second or two may elapse between two tries, so count rather than
	// expect each answer.
	attacker := b.Anonymous(t)
	var checked, delayed int
	for i := range 30 {
		resp := postLogin(t, attacker, "203.0.113.66", "alice", "wrong password")
		switch {
		case i < 5:
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, i)
		case resp.StatusCode == http.StatusTooManyRequests:
			require.NotEmpty(t, resp.Header.Get("Retry-After"))
			delayed++
		default:
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, i)
			checked++
		}
	}
	require.Less(t, checked, 5, "the delays double: few passwords are checked")
	require.Greater(t, delayed, 20)
	// The right-most address is the client: a request naming another
	// address first is still the attacker's, delayed. Sent right after a
	// refusal with at least 2 s still to wait, so that a loaded machine
	// cannot let the delay pass in between.
	require.Eventually(t, func() bool {
		resp := postLogin(t, attacker, "203.0.113.66", "alice", "wrong password")
		wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return resp.StatusCode == http.StatusTooManyRequests && wait >= 2
	}, time.Minute, 10*time.Millisecond, "the attacker delayed")
	resp := postLogin(t, attacker, "198.51.100.7, 203.0.113.66", "alice", "wrong password")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "the right-most address is the client")

	// Alice and Bob, behind the same proxy, log in at once.
	for name, xff := range map[string]string{"alice": "198.51.100.7", "bob": "198.51.100.8"} {
		resp := postLogin(t, b.Anonymous(t), xff, name, webtest.Password)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, name)
	}
	var logins []string
	rows, err := b.Pool.Query(context.Background(), "SELECT detail FROM audit_log WHERE action = 'login' ORDER BY id")
	require.NoError(t, err)
	for rows.Next() {
		var d string
		require.NoError(t, rows.Scan(&d))
		logins = append(logins, d)
	}
	require.NoError(t, rows.Err())
	require.ElementsMatch(t, []string{"depuis 198.51.100.7", "depuis 198.51.100.8"}, logins, "the audit log names the clients")
}

// TestLoginIgnoresForwardedFor checks that without trusted proxies a client
// cannot pass for many by writing X-Forwarded-For.
func TestLoginIgnoresForwardedFor(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	_, err := b.Accounts.AddUser(context.Background(), auth.NewUser{Username: "alice", Password: webtest.Password, Role: auth.RoleSecretary})
	require.NoError(t, err)
	c := b.Anonymous(t)
	for i := range 5 {
		resp := postLogin(t, c, "203.0.113."+string(rune('1'+i)), "alice", "wrong password")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, i)
	}
	// The next attempt waits for the pair's delay (1 s, doubling): the
	// forwarded addresses did not make five clients of one. On a loaded
	// machine a check may take longer than the first delay, so the attempt
	// after it is checked again; one of the next few waits. Ten attempts
	// stay under the account's ceiling (20): only the pair throttles them.
	limited := false
	for i := range 10 {
		resp := postLogin(t, c, "198.51.100."+strconv.Itoa(10+i), "alice", "wrong password")
		if resp.StatusCode == http.StatusTooManyRequests {
			require.NotEmpty(t, resp.Header.Get("Retry-After"))
			limited = true
			break
		}
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, i)
	}
	require.True(t, limited, "the forwarded addresses are one client")
}

// TestAPITokenRateLimit is issue #19, item 7: wrong bearer tokens were
// answered as fast as they came. An address that keeps guessing now waits
// (429, Retry-After), without its token compared, while the right token
// works from another address.
func TestAPITokenRateLimit(t *testing.T) {
	t.Parallel()
	b := setupBehindProxy(t)
	for i := range 10 {
		code, _, _ := b.Do(t, "GET", "/api/v1/rules", "Bearer guess-"+strings.Repeat("x", i), "", "X-Forwarded-For", "203.0.113.5")
		require.Equal(t, http.StatusUnauthorized, code, i)
	}
	code, h, body := b.Do(t, "GET", "/api/v1/rules", "Bearer guess", "", "X-Forwarded-For", "203.0.113.5")
	require.Equal(t, http.StatusTooManyRequests, code)
	require.Equal(t, "1", h.Get("Retry-After"))
	require.Contains(t, body, `"error"`)
	code, _, _ = b.Do(t, "GET", "/api/v1/rules", "Bearer "+webtest.Token, "", "X-Forwarded-For", "203.0.113.5")
	require.Equal(t, http.StatusTooManyRequests, code, "the right token is not even compared: no oracle")
	code, _, _ = b.Do(t, "GET", "/api/v1/rules", "", "", "X-Forwarded-For", "203.0.113.5")
	require.Equal(t, http.StatusUnauthorized, code, "no token, no guess")

	code, _, body = b.Do(t, "GET", "/api/v1/rules", "Bearer "+webtest.Token, "", "X-Forwarded-For", "198.51.100.9")
	require.Equal(t, http.StatusOK, code, body)

	// Without trusted proxies, X-Forwarded-For does not make new clients.
	plain := webtest.Setup(t)
	for i := range 10 {
		code, _, _ := plain.Do(t, "GET", "/api/v1/rules", "Bearer guess", "", "X-Forwarded-For", "203.0.113."+string(rune('0'+i)))
		require.Equal(t, http.StatusUnauthorized, code, i)
	}
	code, _, _ = plain.Do(t, "GET", "/api/v1/rules", "Bearer guess", "", "X-Forwarded-For", "198.51.100.10")
	require.Equal(t, http.StatusTooManyRequests, code)
}

// TestFormBodyLimits is issue #19, item 6: the forms read bodies of any size
// before the CSRF check, and a multipart POST to /login left its files in
// the temporary directory. It sets TMPDIR, so it cannot run in parallel.
func TestFormBodyLimits(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	b := webtest.Setup(t)
	c := b.Anonymous(t)
	c.Get(t, "/login")

	// A login form of a mebibyte: 413, whether announced or not.
	big := url.Values{"username": {"alice"}, "password": {strings.Repeat("p", 1<<20)}, "csrf_token": {c.CSRF(t)}}
	status, body := c.Send(t, http.MethodPost, "/login", big)
	require.Equal(t, http.StatusRequestEntityTooLarge, status, body)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, b.URL+"/login",
		io.MultiReader(strings.NewReader(big.Encode()))) // no Content-Length: chunked
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)

	// A multipart login of 40 MiB: refused, nothing left on disk.
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	require.NoError(t, mw.WriteField("csrf_token", c.CSRF(t)))
	require.NoError(t, mw.WriteField("username", "alice"))
	fw, err := mw.CreateFormFile("password", "big.bin")
	require.NoError(t, err)
	_, err = fw.Write(bytes.Repeat([]byte("0123456789abcdef"), 40<<16))
	require.NoError(t, err)
	require.NoError(t, mw.Close())
	for _, announced := range []bool{true, false} {
		var r io.Reader = bytes.NewReader(form.Bytes())
		if !announced {
			r = io.MultiReader(r)
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, b.URL+"/login", r)
		require.NoError(t, err)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := c.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		entries, err := os.ReadDir(tmp)
		require.NoError(t, err)
		require.Empty(t, entries, "no temporary file left behind")
		want := http.StatusUnsupportedMediaType
		if announced {
			want = http.StatusRequestEntityTooLarge // refused on its Content-Length
		}
		require.Equal(t, want, resp.StatusCode, announced)
	}

	// The rules' forms carry a YAML of up to a mebibyte, percent-encoded.
	cme := b.Login(t, "dr-cme", auth.RoleCME)
	source := webtest.RulesYAML + "\n# " + strings.Repeat("é", 450_000) + "\n"
	status, body = cme.Post(t, "/rules/dry-run", url.Values{"source": {source}, "base": {"0"}})
	require.Equal(t, http.StatusOK, status, "%.300s", body)
	require.Contains(t, body, "Prévisualisation")
	status, _ = cme.Post(t, "/rules/dry-run", url.Values{"source": {source + strings.Repeat("é", 700_000)}, "base": {"0"}})
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	// Every other form is small.
	status, _ = cme.Post(t, "/logout", url.Values{"pad": {strings.Repeat("é", 50_000)}})
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
}

// TestURLControlCharacters is issue #19, item 6: a NUL byte or invalid UTF-8
// in a query parameter reached PostgreSQL, which refused it: 500. It is
// now a 400, from the dashboard and from the API alike; so is a form value.
func TestURLControlCharacters(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	admin := b.Login(t, "admin", auth.RoleAdmin)
	for _, path := range []string{"/worklists/all?service=%00", "/worklists/all?service=%ff", "/audit?actor=%00",
		"/directory?q=%00", "/directory?q=%ff", "/worklists/all?q=a%01b", "/worklists/all?%00=x", "/reports/1%00"} {
		status, body := admin.Get(t, path)
		require.Equal(t, http.StatusBadRequest, status, "%s: %.200s", path, body)
	}
	for _, path := range []string{"/api/v1/reports?document_id=%00", "/api/v1/reports?document_id=%ff", "/api/v1/correspondents?q=%00"} {
		code, h, body := b.Call(t, "GET", path, "")
		require.Equal(t, http.StatusBadRequest, code, path)
		require.Equal(t, "application/json", h.Get("Content-Type"))
		require.Contains(t, body, "control character")
	}
	status, body := admin.Post(t, "/directory/local", url.Values{"name": {"MARTIN\x00"}, "address": {"a@b.mssante.fr"}})
	require.Equal(t, http.StatusBadRequest, status, "%.200s", body)

	// Tabs and line breaks are text.
	status, _ = admin.Get(t, "/worklists/all?q=Jean%09Martin%0D%0A")
	require.Equal(t, http.StatusOK, status)
}
