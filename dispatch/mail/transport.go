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
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Envelope is the SMTP envelope of a message.
type Envelope struct {
	From string
	To   []string
}

// Transport transmits composed messages.
type Transport interface {
	Send(ctx context.Context, env Envelope, msg []byte) error
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
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(msg); err != nil {
		tmp.Close()
		return fmt.Errorf("mail: outbox: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
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
	// applicative (the IGC-Santé organisation certificate); optional.
	CertFile, KeyFile string
	// Username and Password enable SASL PLAIN when Username is set.
	Username, Password string
	// Timeout bounds each connection (dial, commands, data). Defaults to 60 seconds.
	Timeout time.Duration
}

// SMTP submits messages to an SMTP server, one connection per message.
type SMTP struct {
	cfg SMTPConfig
	tls *tls.Config
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
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("mail: SMTP client certificate needs both a certificate and a key file")
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mail: load SMTP client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return &SMTP{cfg: cfg, tls: tc}, nil
}

// Send submits msg. Replies 5xx are returned as *PermanentError; everything
// else (4xx, network, TLS) is temporary.
func (s *SMTP) Send(ctx context.Context, env Envelope, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if s.cfg.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.cfg.Username, s.cfg.Password)); err != nil {
			return classify("authenticate", err)
		}
	}
	if err := c.Mail(env.From, nil); err != nil {
		return classify("MAIL FROM", err)
	}
	for _, to := range env.To {
		if err := c.Rcpt(to, nil); err != nil {
			return &RecipientError{Err: classify("RCPT TO", err)}
		}
	}
	w, err := c.Data()
	if err != nil {
		return classify("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return classify("DATA", err)
	}
	if err := w.Close(); err != nil {
		return classify("DATA", err)
	}
	// The message was accepted at the end of DATA; a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

func (s *SMTP) dial(ctx context.Context) (*smtp.Client, error) {
	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("mail: dial %s: %w", s.cfg.Addr, err)
	}
	// go-smtp sets its own deadline before each command; bound them all by ctx.
	limit, _ := ctx.Deadline()
	conn := net.Conn(boundedConn{Conn: raw, limit: limit})
	_ = conn.SetDeadline(limit)
	switch s.cfg.TLS {
	case TLSImplicit:
		tlsConn := tls.Client(conn, s.tls)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("mail: TLS handshake with %s: %w", s.cfg.Addr, err)
		}
		return smtp.NewClient(tlsConn), nil
	case TLSStartTLS:
		c, err := smtp.NewClientStartTLS(conn, s.tls)
		if err != nil {
			return nil, classify("STARTTLS", err)
		}
		return c, nil
	default:
		return smtp.NewClient(conn), nil
	}
}

// boundedConn never lets a deadline go past limit.
type boundedConn struct {
	net.Conn
	limit time.Time
}

func (c boundedConn) bound(t time.Time) time.Time {
	if t.IsZero() || t.After(c.limit) {
		return c.limit
	}
	return t
}

func (c boundedConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.bound(t)) }
func (c boundedConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.bound(t)) }
func (c boundedConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.bound(t)) }

func classify(step string, err error) error {
	err = fmt.Errorf("mail: %s: %w", step, err)
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 && se.Code < 600 {
		return &PermanentError{Err: err}
	}
	return err
}
