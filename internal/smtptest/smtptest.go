// Package smtptest runs a real SMTP server (emersion/go-smtp) in the test
// process: STARTTLS or implicit TLS with a certificate from a test CA,
// client certificates required when asked, messages recorded, and replies
// scripted per recipient, or at the greeting, to exercise temporary and
// permanent failures.
package smtptest

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mssdispatch/mssdispatch/internal/testcert"
)

// Options configure a Server.
type Options struct {
	// ImplicitTLS serves TLS from the first byte instead of offering STARTTLS.
	ImplicitTLS bool
	// RequireClientCert refuses clients without a certificate from the CA.
	RequireClientCert bool
	// Reject maps a recipient address to the reply its RCPT gets.
	Reject map[string]*smtp.SMTPError
	// Hello, when set, is asked at each client's greeting (EHLO or HELO): a
	// non-nil reply refuses the session (e.g. a 421 while a test simulates
	// the server's outage), before STARTTLS and MAIL FROM.
	Hello func() *smtp.SMTPError
	// Rcpt, when set, is asked first at each RCPT TO: a non-nil reply refuses
	// the recipient (e.g. a 421 while a test simulates an outage).
	Rcpt func(to string) *smtp.SMTPError
	// IdleTimeout is how long the server waits for a command before it
	// answers 421 and closes the connection. Defaults to 10 seconds.
	IdleTimeout time.Duration
}

// Message is a message the server accepted.
type Message struct {
	From string
	To   []string
	// RcptOptions are the RCPT TO parameters of each recipient (NOTIFY, ORCPT...).
	RcptOptions []smtp.RcptOptions
	Data        []byte
	// ClientCN is the common name of the client certificate, if any.
	ClientCN string
	// MailOptions are the MAIL FROM parameters (RET, ENVID...).
	MailOptions smtp.MailOptions
	// Received is when the server accepted it (the end of DATA).
	Received time.Time
}

// Server is a running SMTP server.
type Server struct {
	// Addr is the host:port it listens on.
	Addr string
	// CA signed the server's certificate; issue client certificates from it.
	CA *testcert.CA

	opts     Options
	mu       sync.Mutex
	messages []Message
	conns    []*smtp.Conn // every connection opened, in order
	arrived  chan struct{}
}

// Start starts a server on 127.0.0.1, stopped when t ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	ca := testcert.NewCA(t)
	srvCert := ca.Server(t)
	s := &Server{CA: ca, opts: opts, arrived: make(chan struct{}, 1024)}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{srvCert.TLS}, MinVersion: tls.VersionTLS12, ClientCAs: ca.Pool}
	if opts.RequireClientCert {
		tlsConfig.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.EnableDSN = true
	srv.TLSConfig = tlsConfig
	srv.ReadTimeout = cmp.Or(opts.IdleTimeout, 10*time.Second)
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 64 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	if opts.ImplicitTLS {
		ln = tls.NewListener(ln, tlsConfig)
	}
	s.Addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return s
}

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// WaitMessages waits until n messages were accepted and returns them; it
// fails t after timeout.
func (s *Server) WaitMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if msgs := s.Messages(); len(msgs) >= n {
			return msgs
		}
		select {
		case <-s.arrived:
		case <-deadline:
			t.Fatalf("smtptest: %d messages after %s, want %d", len(s.Messages()), timeout, n)
		}
	}
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	if b.s.opts.Hello != nil {
		if reply := b.s.opts.Hello(); reply != nil {
			return nil, reply
		}
	}
	b.s.mu.Lock()
	if !slices.Contains(b.s.conns, c) { // a session starts again after STARTTLS
		b.s.conns = append(b.s.conns, c)
	}
	b.s.mu.Unlock()
	return &session{s: b.s, conn: c}, nil
}

// Sessions returns how many connections clients opened.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// DropSessions closes every open connection, as a server does to idle ones.
func (s *Server) DropSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

type session struct {
	s    *Server
	conn *smtp.Conn
	msg  Message
}

var errNeedTLS = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	state, ok := ss.conn.TLSConnectionState()
	if ss.s.opts.RequireClientCert && (!ok || len(state.PeerCertificates) == 0) {
		return errNeedTLS
	}
	ss.msg = Message{From: from}
	if ok && len(state.PeerCertificates) > 0 {
		ss.msg.ClientCN = state.PeerCertificates[0].Subject.CommonName
	}
	if opts != nil {
		ss.msg.MailOptions = *opts
	}
	return nil
}

func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if ss.s.opts.Rcpt != nil {
		if reply := ss.s.opts.Rcpt(to); reply != nil {
			return reply
		}
	}
	if reply, ok := ss.s.opts.Reject[strings.ToLower(to)]; ok {
		return reply
	}
	ss.msg.To = append(ss.msg.To, to)
	if opts != nil {
		ss.msg.RcptOptions = append(ss.msg.RcptOptions, *opts)
	}
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(ss.msg.To) == 0 {
		return errors.New("no valid recipient")
	}
	ss.msg.Data = data
	ss.msg.Received = time.Now()
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, ss.msg)
	ss.s.mu.Unlock()
	select {
	case ss.s.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (ss *session) Reset()        { ss.msg = Message{} }
func (ss *session) Logout() error { return nil }
