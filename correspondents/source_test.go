package correspondents

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// sourceServers serves body at /file (with a Content-Length), at /chunked
// (without), a redirect to a plain HTTP server at /to-http, and 404 elsewhere.
func sourceServers(t *testing.T, body []byte) (tlsServer, plainServer *httptest.Server) {
	t.Helper()
	plainServer = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(body)
	}))
	t.Cleanup(plainServer.Close)
	tlsServer = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/file":
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body)
		case "/chunked":
			for chunk := range slices.Chunk(body, 4096) {
				_, _ = w.Write(chunk)
				w.(http.Flusher).Flush()
			}
		case "/to-http":
			http.Redirect(w, r, plainServer.URL+"/file", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(tlsServer.Close)
	return tlsServer, plainServer
}

func TestFetchSource(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("0123456789abcdef"), 3<<16+1) // 3 MiB and 16 bytes
	tlsServer, plainServer := sourceServers(t, body)
	local := filepath.Join(t.TempDir(), "local.txt")
	require.NoError(t, os.WriteFile(local, []byte("local"), 0o644))

	tests := []struct {
		name    string
		src     string
		limit   int64
		want    []byte
		calls   int // Progress calls, at least.
		wantErr string
	}{
		{name: "file path", src: local, want: []byte("local")},
		{name: "https", src: tlsServer.URL + "/file", want: body, calls: 3},
		{name: "https without length", src: tlsServer.URL + "/chunked", want: body, calls: 3},
		{name: "announced too large", src: tlsServer.URL + "/file", limit: 1000,
			wantErr: "file of 3145744 bytes, larger than the limit of 1000"},
		{name: "too large", src: tlsServer.URL + "/chunked", limit: 1000,
			wantErr: "file larger than the limit of 1000 bytes"},
		{name: "exactly the limit", src: tlsServer.URL + "/chunked", limit: int64(len(body)), want: body, calls: 3},
		{name: "not found", src: tlsServer.URL + "/missing", wantErr: "server answered 404 Not Found"},
		{name: "http", src: plainServer.URL + "/file", wantErr: "http:// source refused, use https://"},
		{name: "HTTP upper case", src: strings.Replace(plainServer.URL, "http", "HTTP", 1) + "/file",
			wantErr: "http:// source refused, use https://"},
		{name: "redirect to http", src: tlsServer.URL + "/to-http", wantErr: "redirected to http://"},
		{name: "ftp", src: "ftp://example.org/x.zip", wantErr: `unsupported scheme "ftp", want https`},
		{name: "password not shown", src: "ftp://user:secret@example.org/x.zip", wantErr: "ftp://user:xxxxx@example.org/x.zip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			limit := tt.limit
			if limit == 0 {
				limit = MaxDownloadSize
			}
			var progress []int64
			path, cleanup, err := fetchSource(context.Background(), tt.src, tlsServer.Client(), limit,
				func(n int64) { progress = append(progress, n) })
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), "secret")
				return
			}
			require.NoError(t, err)
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.GreaterOrEqual(t, len(progress), tt.calls, "about one call per MiB")
			require.IsIncreasing(t, progress)
			if tt.calls > 0 {
				require.Equal(t, int64(len(body)), progress[len(progress)-1], "the last call gives the size")
			}
			require.NoError(t, cleanup())
			if path != tt.src {
				require.NoFileExists(t, path, "cleanup removes the download")
			} else {
				require.FileExists(t, path, "a local file stays")
			}
		})
	}
}

// TestFetchSourceRedirectToHTTP is issue #19, item 7: a redirect from
// https:// to http:// was refused only once the plain request was made. It
// is now refused before; a redirect to https:// is followed, and a client's
// own CheckRedirect still applies.
func TestFetchSourceRedirectToHTTP(t *testing.T) {
	t.Parallel()
	var plainRequests atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainRequests.Add(1)
		_, _ = w.Write([]byte("in clear"))
	}))
	t.Cleanup(plain.Close)
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-http":
			http.Redirect(w, r, plain.URL+"/file?token=x", http.StatusFound)
		case "/to-https":
			http.Redirect(w, r, "/file", http.StatusMovedPermanently)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		default:
			_, _ = w.Write([]byte("encrypted"))
		}
	}))
	t.Cleanup(server.Close)
	ctx := context.Background()

	_, _, err := fetchSource(ctx, server.URL+"/to-http", server.Client(), MaxDownloadSize, nil)
	require.ErrorIs(t, err, ErrInsecureSource)
	require.ErrorContains(t, err, "redirected to "+plain.URL+"/file")
	require.Zero(t, plainRequests.Load(), "the plain-HTTP request is never made")

	path, cleanup, err := fetchSource(ctx, server.URL+"/to-https", server.Client(), MaxDownloadSize, nil)
	require.NoError(t, err)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "encrypted", string(got))
	require.NoError(t, cleanup())

	_, _, err = fetchSource(ctx, server.URL+"/loop", server.Client(), MaxDownloadSize, nil)
	require.ErrorContains(t, err, "stopped after 10 redirects")

	client := server.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return errors.New("no redirect, thanks") }
	_, _, err = fetchSource(ctx, server.URL+"/to-https", client, MaxDownloadSize, nil)
	require.ErrorContains(t, err, "no redirect, thanks")
	require.NotNil(t, client.CheckRedirect, "the caller's client is not changed")
	_, _, err = fetchSource(ctx, server.URL+"/to-http", client, MaxDownloadSize, nil)
	require.ErrorIs(t, err, ErrInsecureSource, "refused first")
	require.Zero(t, plainRequests.Load())
}

func TestFetchSourceCancelled(t *testing.T) {
	t.Parallel()
	started, block := make(chan struct{}, 1), make(chan struct{})
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("start"))
		w.(http.Flusher).Flush()
		started <- struct{}{}
		<-block
	}))
	t.Cleanup(func() { close(block); server.Close() })

	// Cancelled during the download, then before it.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	_, _, err := fetchSource(ctx, server.URL, server.Client(), MaxDownloadSize, nil)
	require.ErrorIs(t, err, context.Canceled)
	_, _, err = fetchSource(ctx, server.URL, server.Client(), MaxDownloadSize, nil)
	require.ErrorIs(t, err, context.Canceled)
}

// TestSourceTemporaryFiles checks that no download is left behind, whether
// the source is read or refused. It sets TMPDIR, so it cannot run in parallel.
func TestSourceTemporaryFiles(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	text := strings.Join(ExtractionHeader(), "|") + "\n"
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	w, err := zw.Create("Extraction.txt")
	require.NoError(t, err)
	_, err = io.WriteString(w, text)
	require.NoError(t, err)
	require.NoError(t, zw.Close())

	files := map[string][]byte{"/x.zip": zipped.Bytes(), "/bad.zip": []byte("PK\x03\x04 not a zip"),
		"/w.xml": []byte(`<ListeBlancheMSSante><Domaine><Nom>a.mssante.fr</Nom></Domaine></ListeBlancheMSSante>`)}
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if data, ok := files[r.URL.Path]; ok {
			_, _ = w.Write(data)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(server.Close)
	ctx, client := context.Background(), server.Client()

	rc, err := OpenExtractionSource(ctx, server.URL+"/x.zip", client, nil)
	require.NoError(t, err)
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Len(t, entries, 1, "the download, while it is read")
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, text, string(got))
	require.NoError(t, rc.Close())

	_, err = OpenExtractionSource(ctx, server.URL+"/bad.zip", client, nil)
	require.ErrorContains(t, err, server.URL+"/bad.zip: open extraction")
	_, err = OpenExtractionSource(ctx, server.URL+"/missing.zip", client, nil)
	require.ErrorContains(t, err, "404")
	domains, err := ReadWhitelistSource(ctx, server.URL+"/w.xml", client, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"a.mssante.fr"}, domains)

	entries, err = os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, entries, "every download removed")
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for src, want := range map[string]string{
		"/data/Extraction.zip":                  "/data/Extraction.zip",
		"https://user:secret@example.org/x?a=b": "https://user:xxxxx@example.org/x?a=b",
		"https://example.org/x.zip":             "https://example.org/x.zip",
		"https://EXAMPLE.org/a%20b.zip":         "https://EXAMPLE.org/a%20b.zip",
	} {
		require.Equal(t, want, redact(src), src)
	}
}
