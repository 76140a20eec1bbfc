package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"software.sslmate.com/src/go-pkcs12"
)

// Envelope is the SMTP envelope of a message.
type Envelope struct {
	From string
	To   []string
	// EnvelopeID, when set, asks for delivery status notifications (RFC
	// 3461): MAIL FROM gets RET=HDRS ENVID=EnvelopeID, each RCPT TO
	// NOTIFY=SUCCESS,FAILURE,DELAY and ORCPT=rfc822;<address>, so that the
	// DSNs come back with the envelope id and the original recipient. A
	// server without the DSN extension gets none of them.
	EnvelopeID string
}

// Transport transmits composed messages.
type Transport interface {
	Send(ctx context.Context, env Envelope, msg []byte) error
}

// Prober is a Transport that can tell, sending nothing, whether what refused
// it for now accepts again: the server itself (env without recipients) or
// a recipient's domain (env.From and env.To, as a send would give them).
// A transport that never fails for now (the outbox) has no need of it.
type Prober interface {
	Probe(ctx context.Context, env Envelope) error
}

// PermanentError is a failure that retrying will not fix (an SMTP 5xx reply).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// RecipientError is a refusal of one recipient (at RCPT TO): it says
// something of the recipient's domain, not of the submission server.
type RecipientError struct{ Err error }

func (e *RecipientError) Error() string { return e.Err.Error() }
func (e *RecipientError) Unwrap() error { return e.Err }

// IsRecipientError reports whether err is a refusal of the recipient rather
// than a failure of the submission server or the connection.
func IsRecipientError(err error) bool {
	var re *RecipientError
	return errors.As(err, &re)
}

// IsPermanent reports whether err is a failure that retrying will not fix.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// Outbox writes each message as a .eml file in a directory, for demos and
// for hospitals that hand messages to another mailer.
type Outbox struct {
	dir string
}

// NewOutbox returns an Outbox writing in dir, creating it if needed.
func NewOutbox(dir string) (*Outbox, error) {
	if dir == "" {
		return nil, errors.New("mail: outbox directory is empty")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("mail: create outbox: %w", err)
	}
	return &Outbox{dir: dir}, nil
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Send writes msg durably (fsync, then rename) as <time>-<first recipient>.eml.
// A message written twice with the same Message-ID overwrites the first copy.
func (o *Outbox) Send(_ context.Context, env Envelope, msg []byte) error {
	if len(env.To) == 0 {
		return &PermanentError{Err: errors.New("mail: no recipient")}
	}
	name := unsafeFileChars.ReplaceAllString(messageIDOf(msg)+"-"+env.To[0], "_") + ".eml"
	tmp, err := os.CreateTemp(o.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(msg); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("mail: outbox: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("mail: outbox: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(o.dir, name)); err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	return nil
}

var messageIDHeader = regexp.MustCompile(`(?mi)^Message-Id:\s*<([^>]*)>`)

func messageIDOf(msg []byte) string {
	if m := messageIDHeader.FindSubmatch(msg); m != nil {
		return string(m[1])
	}
	return time.Now().UTC().Format("20060102T150405.000000000")
}

// TLS modes of SMTPConfig.TLS.
const (
	TLSStartTLS = "starttls"
	TLSImplicit = "tls"
	TLSNone     = "none"
)

// SMTPConfig configures submission through the BAL applicative.
type SMTPConfig struct {
	// Addr is the submission server's host:port. Required.
	Addr string
	// TLS is "starttls" (default), "tls" (implicit TLS) or "none".
	TLS string
	// CAFile is a PEM bundle of CAs to trust for the server; the system pool when empty.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and key of the BAL
	// applicative (the IGC-Santé organisation certificate); optional. A
	// CertFile ending in .p12 or .pfx is a PKCS#12 bundle holding both
	// (KeyFile empty), opened with CertPassword.
	CertFile, KeyFile string
	CertPassword      string
	// Username and Password enable SASL PLAIN when Username is set.
	Username, Password string
	// Timeout bounds each connection (dial, commands, data). Defaults to 60 seconds.
	Timeout time.Duration
	// MaxConns is the most connections open at once; a send beyond waits
	// for one (its timeout runs). Defaults to DefaultMaxConns.
	MaxConns int
}

// DefaultMaxConns is the default SMTPConfig.MaxConns.
const DefaultMaxConns = 8

// SMTP submits messages to an SMTP server over at most MaxConns
// connections, reusing those idle for less than 30 seconds.
type SMTP struct {
	cfg   SMTPConfig
	tls   *tls.Config
	slots chan struct{} // one token per connection in use
	mu    sync.Mutex
	idle  []*conn
}

// NewSMTP validates cfg and loads its certificates.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if cfg.Addr == "" {
		return nil, errors.New("mail: SMTP address is empty")
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("mail: SMTP address %q: %w", cfg.Addr, err)
	}
	switch cfg.TLS {
	case "":
		cfg.TLS = TLSStartTLS
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return nil, fmt.Errorf("mail: SMTP TLS mode %q: want starttls, tls or none", cfg.TLS)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mail: read SMTP CA file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mail: no certificate in SMTP CA file %s", cfg.CAFile)
		}
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		cert, err := LoadClientCertificate(cfg.CertFile, cfg.KeyFile, cfg.CertPassword)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return &SMTP{cfg: cfg, tls: tc, slots: make(chan struct{}, cfg.MaxConns)}, nil
}

// LoadClientCertificate reads a TLS client certificate: a PEM certificate
// and key, or a PKCS#12 bundle (.p12, .pfx) and its password with an empty
// keyFile. The IGC-Santé delivers organisation certificates either way.
func LoadClientCertificate(certFile, keyFile, password string) (tls.Certificate, error) {
	ext := strings.ToLower(filepath.Ext(certFile))
	if ext != ".p12" && ext != ".pfx" {
		if certFile == "" || keyFile == "" {
			return tls.Certificate{}, errors.New("mail: a PEM client certificate needs both a certificate and a key file")
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("mail: load client certificate: %w", err)
		}
		return cert, nil
	}
	if keyFile != "" {
		return tls.Certificate{}, fmt.Errorf("mail: %s is a PKCS#12 bundle holding the key: leave the key file empty", certFile)
	}
	data, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("mail: read client certificate: %w", err)
	}
	key, leaf, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("mail: open PKCS#12 bundle %s (wrong password?): %w", certFile, err)
	}
	cert := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert, nil
}

// Send submits msg on a connection of the pool, or a new one once fewer
// than MaxConns are in use. Replies 5xx are returned as *PermanentError;
// everything else (4xx, network, TLS, no connection free in time) is
// temporary. A pooled connection the server closed meanwhile is replaced
// once, transparently.
func (s *SMTP) Send(ctx context.Context, env Envelope, msg []byte) error {
	return s.session(ctx, true, func(c *conn) error { return s.transaction(c, env, msg) })
}

// Probe tells whether the server, or a recipient's domain, accepts again,
// without using up anything of an email's: with no recipient in env, a new
// connection greeted as a send's is (EHLO, STARTTLS or TLS, AUTH as
// configured) and a NOOP; with recipients, on a connection of the pool or
// a new one, MAIL FROM env.From and RCPT TO each, then RSET (no DATA). The
// connection goes back to the pool after a success, for the next send.
// Errors are classified as Send's: a refusal at RCPT TO is a *RecipientError.
func (s *SMTP) Probe(ctx context.Context, env Envelope) error {
	if len(env.To) == 0 {
		return s.session(ctx, false, func(c *conn) error {
			if err := c.Noop(); err != nil {
				return classify("NOOP", err)
			}
			c.used = true // idle in the pool, the next send may find it closed
			return nil
		})
	}
	return s.session(ctx, true, func(c *conn) error {
		if err := s.envelope(c, env); err != nil {
			return err
		}
		if err := c.Reset(); err != nil {
			return classify("RSET", err)
		}
		return nil
	})
}

// session runs do on a connection, within the configured Timeout: a pooled
// one when pooled is true and one is idle, else a new one once fewer than
// MaxConns are in use. A pooled connection the server closed meanwhile
// (do's error wraps errStale) is replaced once.
func (s *SMTP) session(ctx context.Context, pooled bool, do func(*conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		return fmt.Errorf("mail: no connection to %s free: %w", s.cfg.Addr, ctx.Err())
	}
	if pooled {
		if c := s.take(ctx); c != nil {
			err := do(c)
			if !errors.Is(err, errStale) {
				s.release(c, err)
				return err
			}
			c.close()
		}
	}
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	err = do(c)
	if errors.Is(err, errStale) {
		err = classify("MAIL FROM", errors.Unwrap(err))
	}
	s.release(c, err)
	return err
}

// errStale wraps the failure of the first command on a connection: the
// server may have closed it while it was idle.
var errStale = errors.New("mail: connection closed by the server")

// transaction sends one message on c: MAIL FROM, RCPT TO, DATA.
func (s *SMTP) transaction(c *conn, env Envelope, msg []byte) error {
	if err := s.envelope(c, env); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return classify("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		_ = w.Close()
		return classify("DATA", err)
	}
	if err := w.Close(); err != nil {
		return classify("DATA", err)
	}
	return nil
}

// envelope opens a transaction on c: MAIL FROM, RCPT TO each recipient.
func (s *SMTP) envelope(c *conn, env Envelope) error {
	var mailOpts *smtp.MailOptions
	if env.EnvelopeID != "" {
		mailOpts = &smtp.MailOptions{Return: smtp.DSNReturnHeaders, EnvelopeID: env.EnvelopeID}
	}
	if err := c.Mail(env.From, mailOpts); err != nil {
		// A reused connection the server closed while idle fails at once,
		// or answers 421 (go-smtp's and Postfix's idle timeout) and closes.
		var se *smtp.SMTPError
		if c.used && (!errors.As(err, &se) || se.Code == 421) {
			return fmt.Errorf("%w: %w", errStale, err)
		}
		return classify("MAIL FROM", err)
	}
	c.used = true
	for _, to := range env.To {
		var rcptOpts *smtp.RcptOptions
		if env.EnvelopeID != "" {
			rcptOpts = &smtp.RcptOptions{Notify: []smtp.DSNNotify{smtp.DSNNotifySuccess, smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed},
				OriginalRecipientType: smtp.DSNAddressTypeRFC822, OriginalRecipient: to}
		}
		if err := c.Rcpt(to, rcptOpts); err != nil {
			return &RecipientError{Err: classify("RCPT TO", err)}
		}
	}
	return nil
}

// maxIdleDuration is how long a connection stays open unused.
const maxIdleDuration = 30 * time.Second

// conn is a connection to the submission server.
type conn struct {
	*smtp.Client
	bounded *boundedConn
	idleAt  time.Time
	// used is true once the server answered a MAIL FROM, or a probe's
	// NOOP, on it: a MAIL FROM failing afterwards may mean that the server
	// closed it while idle.
	used bool
}

func (c *conn) close() { _ = c.Close() }

// take returns an idle connection bounded by ctx's deadline, or nil.
func (s *SMTP) take(ctx context.Context) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.idle) > 0 {
		c := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if time.Since(c.idleAt) > maxIdleDuration {
			go c.Quit() //nolint:errcheck // an old idle connection is dropped politely
			continue
		}
		c.bounded.setLimit(ctx)
		return c
	}
	return nil
}

// release puts c back in the pool after a successful send; after a failure
// the session's state is unknown, so it is closed.
func (s *SMTP) release(c *conn, err error) {
	if err != nil {
		c.close()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.idleAt = time.Now()
	s.idle = append(s.idle, c)
}

// Close quits the idle connections.
func (s *SMTP) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, c := range idle {
		_ = c.Quit()
	}
	return nil
}

func (s *SMTP) dial(ctx context.Context) (*conn, error) {
	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("mail: dial %s: %w", s.cfg.Addr, err)
	}
	// go-smtp sets its own deadline before each command; bound them all by
	// the deadline of the send under way.
	bc := &boundedConn{Conn: raw}
	bc.setLimit(ctx)
	c, err := s.handshake(ctx, bc)
	if err != nil {
		return nil, err
	}
	if s.cfg.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.cfg.Username, s.cfg.Password)); err != nil {
			_ = c.Close()
			return nil, classify("authenticate", err)
		}
	}
	return &conn{Client: c, bounded: bc}, nil
}

// handshake greets the server on bc, with TLS as configured.
func (s *SMTP) handshake(ctx context.Context, bc *boundedConn) (*smtp.Client, error) {
	_ = bc.SetDeadline(time.Time{})
	switch s.cfg.TLS {
	case TLSImplicit:
		tlsConn := tls.Client(bc, s.tls)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			_ = bc.Close()
			return nil, fmt.Errorf("mail: TLS handshake with %s: %w", s.cfg.Addr, err)
		}
		return smtp.NewClient(tlsConn), nil
	case TLSStartTLS:
		c, err := smtp.NewClientStartTLS(bc, s.tls)
		if err != nil {
			_ = bc.Close()
			return nil, classify("STARTTLS", err)
		}
		return c, nil
	default:
		return smtp.NewClient(bc), nil
	}
}

// boundedConn never lets a deadline go past the deadline of the send under way.
type boundedConn struct {
	net.Conn
	mu    sync.Mutex
	limit time.Time
}

// setLimit bounds the connection by ctx's deadline, for the send about to start.
func (c *boundedConn) setLimit(ctx context.Context) {
	limit, _ := ctx.Deadline()
	c.mu.Lock()
	c.limit = limit
	c.mu.Unlock()
	_ = c.Conn.SetDeadline(limit)
}

func (c *boundedConn) bound(t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.IsZero() || t.After(c.limit) {
		return c.limit
	}
	return t
}

func (c *boundedConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.bound(t)) }
func (c *boundedConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.bound(t)) }
func (c *boundedConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.bound(t)) }

func classify(step string, err error) error {
	err = fmt.Errorf("mail: %s: %w", step, err)
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 && se.Code < 600 {
		return &PermanentError{Err: err}
	}
	return err
}
