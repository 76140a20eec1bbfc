package correspondents

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// This file opens the sources of an import: a local file, or an https:// URL
// downloaded first to a temporary file, so that a zip archive can be read
// with random access and in constant memory.

// MaxDownloadSize is the largest file, in bytes, downloaded from an https:// source: 2 GiB.
const MaxDownloadSize = 2 << 30

// downloadProgressStep is how many bytes are downloaded between two calls of a progress callback.
const downloadProgressStep = 1 << 20

// ErrInsecureSource is wrapped by the error of a source given as an http://
// URL, or redirected to one: only https:// is downloaded.
var ErrInsecureSource = errors.New("http:// source refused, use https://")

// OpenExtractionSource opens the extraction at src, a file path or an
// https:// URL, as OpenExtraction does (text or zip archive); an http:// URL
// is refused with ErrInsecureSource, and so is a redirect to one, before it
// is requested. A URL is downloaded with client (nil: a
// client that waits at most a minute for the response headers and 30
// minutes for the whole download) to a temporary file of at most
// MaxDownloadSize bytes, removed on Close; progress, when not nil, is called
// with the bytes downloaded so far, every MiB and at the end. Cancelling ctx
// stops the download.
func OpenExtractionSource(ctx context.Context, src string, client *http.Client, progress func(bytes int64)) (io.ReadCloser, error) {
	path, cleanup, err := fetchSource(ctx, src, client, MaxDownloadSize, progress)
	if err != nil {
		return nil, fmt.Errorf("open extraction: %w", err)
	}
	rc, err := OpenExtraction(path)
	if err != nil {
		_ = cleanup()
		if isURL(src) {
			return nil, fmt.Errorf("%s: %w", redact(src), err)
		}
		return nil, err
	}
	return &sourceCloser{ReadCloser: rc, cleanup: cleanup}, nil
}

// ReadWhitelistSource reads the trust-space domains of the whitelist at src,
// a file path or an https:// URL, with ParseWhitelist. A URL is downloaded
// as by OpenExtractionSource, with client and progress, up to the size
// ParseWhitelist accepts (64 MiB).
func ReadWhitelistSource(ctx context.Context, src string, client *http.Client, progress func(bytes int64)) ([]string, error) {
	path, cleanup, err := fetchSource(ctx, src, client, maxWhitelistSize, progress)
	if err != nil {
		return nil, fmt.Errorf("read whitelist: %w", err)
	}
	defer func() { _ = cleanup() }()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read whitelist: %w", err)
	}
	defer func() { _ = f.Close() }()
	return ParseWhitelist(f)
}

// sourceCloser removes the downloaded file once the extraction is closed.
type sourceCloser struct {
	io.ReadCloser
	cleanup func() error
}

// Close closes the extraction and removes its temporary file, if any.
func (s *sourceCloser) Close() error {
	return errors.Join(s.ReadCloser.Close(), s.cleanup())
}

// redact returns src with the password of a URL masked, for errors and records.
func redact(src string) string {
	if !isURL(src) {
		return src
	}
	if u, err := url.Parse(src); err == nil && u.User != nil {
		return u.Redacted()
	}
	return src
}

// isURL reports whether src names a URL rather than a file path.
func isURL(src string) bool { return strings.Contains(src, "://") }

// fetchSource returns the path of a local file holding src: src itself for a
// file path, or a temporary file that cleanup removes for a URL.
func fetchSource(ctx context.Context, src string, client *http.Client, limit int64, progress func(int64)) (path string, cleanup func() error, err error) {
	if !isURL(src) {
		return src, func() error { return nil }, nil
	}
	u, err := url.Parse(src)
	if err != nil {
		return "", nil, fmt.Errorf("source: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		return "", nil, fmt.Errorf("%s: %w", u.Redacted(), ErrInsecureSource)
	default:
		return "", nil, fmt.Errorf("%s: unsupported scheme %q, want https", u.Redacted(), u.Scheme)
	}
	f, err := os.CreateTemp("", "mssdispatch-source-*")
	if err != nil {
		return "", nil, fmt.Errorf("download %s: %w", u.Redacted(), err)
	}
	cleanup = func() error { return os.Remove(f.Name()) }
	err = download(ctx, f, u, client, limit, progress)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		_ = cleanup()
		return "", nil, fmt.Errorf("download %s: %w", u.Redacted(), err)
	}
	return f.Name(), cleanup, nil
}

// download writes the body of a GET of u to w, failing beyond limit bytes.
func download(ctx context.Context, w io.Writer, u *url.URL, client *http.Client, limit int64, progress func(int64)) error {
	if client == nil {
		client = defaultClient()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := httpsOnly(client).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("server answered %s", resp.Status)
	}
	if resp.ContentLength > limit {
		return fmt.Errorf("file of %d bytes, larger than the limit of %d", resp.ContentLength, limit)
	}
	cw := &countingWriter{w: w, progress: progress}
	n, err := io.Copy(cw, io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return err
	}
	if n > limit {
		return fmt.Errorf("file larger than the limit of %d bytes", limit)
	}
	cw.report()
	return nil
}

// maxRedirects is how many redirects a download follows, as net/http's default.
const maxRedirects = 10

// httpsOnly returns a copy of client that refuses, before requesting it, a
// redirect to anything but https:// (the file would travel in clear, and a
// forged one could be swapped in), then applies client's own CheckRedirect
// or else the default limit of redirects.
func httpsOnly(client *http.Client) *http.Client {
	c := *client
	next := client.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !strings.EqualFold(req.URL.Scheme, "https") {
			return fmt.Errorf("redirected to %s: %w", req.URL.Redacted(), ErrInsecureSource)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
	return &c
}

// countingWriter calls progress each time another downloadProgressStep bytes are written.
type countingWriter struct {
	w        io.Writer
	n        int64
	reported int64
	progress func(int64)
}

// Write implements io.Writer.
func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.n/downloadProgressStep > c.reported/downloadProgressStep {
		c.report()
	}
	return n, err
}

// report calls progress with the bytes written, unless already reported.
func (c *countingWriter) report() {
	if c.progress != nil && c.n != c.reported {
		c.reported = c.n
		c.progress(c.n)
	}
}

// defaultClient is the client of a download when the caller gives none: a
// minute at most to connect and get the response headers, 30 minutes for
// the whole download (the context may cut it shorter).
func defaultClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: t, Timeout: 30 * time.Minute}
}
