package mail_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/internal/mailtest"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/internal/smtptest"
)

const sender = "bal@ch-demo.mssante.fr"

func testMessage(to string) mail.Message {
	return mail.Message{
		From:      sender,
		To:        []string{to},
		Subject:   "XDM/1.0/DDM+Lettre de sortie DUPONT Marie 15/01/1980",
		MessageID: "abc123@ch-demo.mssante.fr",
		Date:      time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		Body:      "Bonjour,\r\nci-joint.\r\n",
		Attachments: []mail.Attachment{
			{Filename: "Lettre de sortie.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.4 fake")},
		},
	}
}

func TestMessageBytes(t *testing.T) {
	t.Parallel()
	raw, err := testMessage("dr@medecin.mssante.fr").Bytes()
	require.NoError(t, err)

	e := mailtest.Parse(t, raw)
	subject, err := e.Header.Subject()
	require.NoError(t, err)
	require.Equal(t, "XDM/1.0/DDM+Lettre de sortie DUPONT Marie 15/01/1980", subject)
	id, err := e.Header.MessageID()
	require.NoError(t, err)
	require.Equal(t, "abc123@ch-demo.mssante.fr", id)
	require.Equal(t, []string{sender}, e.Addresses(t, "From"))
	body, attachments := e.Body, e.Names
	require.Equal(t, "%PDF-1.4 fake", string(e.Attachments["Lettre de sortie.pdf"]))
	require.Equal(t, "Bonjour,\r\nci-joint.\r\n", body)
	require.Equal(t, []string{"Lettre de sortie.pdf"}, attachments)
}

func TestMessageBytesNeedsHeaders(t *testing.T) {
	t.Parallel()
	m := testMessage("dr@medecin.mssante.fr")
	m.MessageID = ""
	_, err := m.Bytes()
	require.Error(t, err)
}

func TestOutbox(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "outbox")
	o, err := mail.NewOutbox(dir)
	require.NoError(t, err)
	raw, err := testMessage("dr@medecin.mssante.fr").Bytes()
	require.NoError(t, err)
	env := mail.Envelope{From: sender, To: []string{"dr@medecin.mssante.fr"}}
	require.NoError(t, o.Send(context.Background(), env, raw))
	require.NoError(t, o.Send(context.Background(), env, raw), "a resend overwrites")

	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, files, 1, "no temporary file left, one file per Message-ID and recipient")
	require.Regexp(t, `^abc123_ch-demo\.mssante\.fr-dr_medecin\.mssante\.fr\.eml$`, files[0].Name())
	got, err := os.ReadFile(filepath.Join(dir, files[0].Name()))
	require.NoError(t, err)
	require.Equal(t, raw, got)
}

func TestSMTP(t *testing.T) {
	t.Parallel()
	rejects := map[string]*smtp.SMTPError{
		"unknown@medecin.mssante.fr": {Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"},
		"full@medecin.mssante.fr":    {Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"},
	}
	tests := []struct {
		name       string
		server     smtptest.Options
		tls        string
		clientCert bool
		to         string
		wantErr    bool
		permanent  bool
	}{
		{"starttls with client certificate", smtptest.Options{RequireClientCert: true}, mail.TLSStartTLS, true, "dr@medecin.mssante.fr", false, false},
		{"implicit tls with client certificate", smtptest.Options{RequireClientCert: true, ImplicitTLS: true}, mail.TLSImplicit, true, "dr@medecin.mssante.fr", false, false},
		{"server requires a certificate we lack", smtptest.Options{RequireClientCert: true}, mail.TLSStartTLS, false, "dr@medecin.mssante.fr", true, false},
		{"unknown mailbox is permanent", smtptest.Options{Reject: rejects}, mail.TLSStartTLS, true, "unknown@medecin.mssante.fr", true, true},
		{"full mailbox is temporary", smtptest.Options{Reject: rejects}, mail.TLSStartTLS, true, "full@medecin.mssante.fr", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, tt.server)
			cfg := mail.SMTPConfig{Addr: srv.Addr, TLS: tt.tls, CAFile: srv.CA.File, Timeout: 10 * time.Second}
			if tt.clientCert {
				pair := srv.CA.Client(t, sender)
				cfg.CertFile, cfg.KeyFile = pair.CertFile, pair.KeyFile
			}
			client, err := mail.NewSMTP(cfg)
			require.NoError(t, err)
			raw, err := testMessage(tt.to).Bytes()
			require.NoError(t, err)
			err = client.Send(context.Background(), mail.Envelope{From: sender, To: []string{tt.to}}, raw)
			if tt.wantErr {
				require.Error(t, err)
				require.Equal(t, tt.permanent, mail.IsPermanent(err), "%v", err)
				require.Empty(t, srv.Messages())
				return
			}
			require.NoError(t, err)
			msgs := srv.Messages()
			require.Len(t, msgs, 1)
			require.Equal(t, sender, msgs[0].From)
			require.Equal(t, []string{tt.to}, msgs[0].To)
			require.Equal(t, sender, msgs[0].ClientCN)
			require.Equal(t, raw, msgs[0].Data)
		})
	}
}

// TestSMTPPKCS12 authenticates with a PKCS#12 bundle, as the IGC-Santé
// delivers organisation certificates, and refuses a wrong password.
func TestSMTPPKCS12(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{RequireClientCert: true})
	pair := srv.CA.Client(t, sender)
	leaf, err := x509.ParseCertificate(pair.TLS.Certificate[0])
	require.NoError(t, err)
	bundle, err := pkcs12.Modern.Encode(pair.TLS.PrivateKey, leaf, nil, "s3cret")
	require.NoError(t, err)
	p12 := filepath.Join(t.TempDir(), "bal.p12")
	require.NoError(t, os.WriteFile(p12, bundle, 0o600))

	client, err := mail.NewSMTP(mail.SMTPConfig{Addr: srv.Addr, CAFile: srv.CA.File, CertFile: p12, CertPassword: "s3cret"})
	require.NoError(t, err)
	raw, err := testMessage("dr@medecin.mssante.fr").Bytes()
	require.NoError(t, err)
	require.NoError(t, client.Send(context.Background(), mail.Envelope{From: sender, To: []string{"dr@medecin.mssante.fr"}}, raw))
	require.Equal(t, sender, srv.Messages()[0].ClientCN)

	_, err = mail.NewSMTP(mail.SMTPConfig{Addr: srv.Addr, CertFile: p12, CertPassword: "wrong"})
	require.ErrorContains(t, err, "wrong password?")
	_, err = mail.NewSMTP(mail.SMTPConfig{Addr: srv.Addr, CertFile: p12, KeyFile: pair.KeyFile, CertPassword: "s3cret"})
	require.ErrorContains(t, err, "leave the key file empty")
}

// TestSMTPDSNParameters checks the RFC 3461 parameters of an envelope with an id.
func TestSMTPDSNParameters(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	client, err := mail.NewSMTP(mail.SMTPConfig{Addr: srv.Addr, CAFile: srv.CA.File})
	require.NoError(t, err)
	raw, err := testMessage("dr@medecin.mssante.fr").Bytes()
	require.NoError(t, err)
	require.NoError(t, client.Send(context.Background(),
		mail.Envelope{From: sender, To: []string{"dr@medecin.mssante.fr"}, EnvelopeID: "mssdispatch-42"}, raw))
	m := srv.Messages()[0]
	require.Equal(t, smtp.DSNReturnHeaders, m.MailOptions.Return)
	require.Equal(t, "mssdispatch-42", m.MailOptions.EnvelopeID)
	require.Equal(t, []smtp.RcptOptions{{Notify: []smtp.DSNNotify{smtp.DSNNotifySuccess, smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed},
		OriginalRecipientType: smtp.DSNAddressTypeRFC822, OriginalRecipient: "dr@medecin.mssante.fr"}}, m.RcptOptions)
}

// TestSMTPReusesConnections sends several messages on one connection, and
// replaces a pooled connection the server closed.
func TestSMTPReusesConnections(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	client, err := mail.NewSMTP(mail.SMTPConfig{Addr: srv.Addr, CAFile: srv.CA.File})
	require.NoError(t, err)
	defer client.Close()
	send := func(to string) error {
		raw, err := testMessage(to).Bytes()
		require.NoError(t, err)
		return client.Send(context.Background(), mail.Envelope{From: sender, To: []string{to}}, raw)
	}
	for i := range 3 {
		require.NoError(t, send(fmt.Sprintf("dr%d@medecin.mssante.fr", i)))
	}
	require.Equal(t, 1, srv.Sessions(), "one connection for three messages")

	srv.DropSessions()
	require.NoError(t, send("after@medecin.mssante.fr"), "a connection the server closed is replaced")
	require.Equal(t, 2, srv.Sessions())
	require.Len(t, srv.Messages(), 4)
}

// TestSMTPIdleTimeout reuses a connection the server closed with a 421
// after its idle timeout: the send goes on a new one.
func TestSMTPIdleTimeout(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{IdleTimeout: 200 * time.Millisecond})
	client, err := mail.NewSMTP(mail.SMTPConfig{Addr: srv.Addr, CAFile: srv.CA.File})
	require.NoError(t, err)
	defer client.Close()
	for i := range 2 {
		to := fmt.Sprintf("dr%d@medecin.mssante.fr", i)
		raw, err := testMessage(to).Bytes()
		require.NoError(t, err)
		require.NoError(t, client.Send(context.Background(), mail.Envelope{From: sender, To: []string{to}}, raw))
		time.Sleep(500 * time.Millisecond) // the behaviour under test: idle past the server's idle timeout (200 ms)
	}
	require.Len(t, srv.Messages(), 2)
	require.Equal(t, 2, srv.Sessions(), "the closed connection was replaced")
}

// TestSMTPMaxConns sends ten messages at once over at most two connections.
func TestSMTPMaxConns(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	client, err := mail.NewSMTP(mail.SMTPConfig{Addr: srv.Addr, CAFile: srv.CA.File, MaxConns: 2})
	require.NoError(t, err)
	defer client.Close()
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			to := fmt.Sprintf("dr%d@medecin.mssante.fr", i)
			raw, err := testMessage(to).Bytes()
			assert.NoError(t, err)
			assert.NoError(t, client.Send(context.Background(), mail.Envelope{From: sender, To: []string{to}}, raw))
		})
	}
	wg.Wait()
	require.Len(t, srv.Messages(), 10)
	require.LessOrEqual(t, srv.Sessions(), 2, "connections opened")
}

// TestSMTPProbe probes a server that refuses every session, then one
// recipient, then accepts: each probe says so without a message ever
// reaching the server, and the connection of a successful probe serves the
// next one, and the next send.
func TestSMTPProbe(t *testing.T) {
	t.Parallel()
	var serverDown, domainDown atomic.Bool
	serverDown.Store(true)
	domainDown.Store(true)
	unavailable := &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service not available"}
	var rcpts atomic.Int64
	srv := smtptest.Start(t, smtptest.Options{
		Hello: func() *smtp.SMTPError {
			if serverDown.Load() {
				return unavailable
			}
			return nil
		},
		Rcpt: func(string) *smtp.SMTPError {
			rcpts.Add(1)
			if domainDown.Load() {
				return unavailable
			}
			return nil
		},
	})
	client, err := mail.NewSMTP(mail.SMTPConfig{Addr: srv.Addr, CAFile: srv.CA.File, Timeout: 5 * time.Second})
	require.NoError(t, err)
	defer client.Close()
	ctx := context.Background()
	const to = "dr@medecin.mssante.fr"
	domain := mail.Envelope{From: sender, To: []string{to}}

	// The server refuses: the server's probe and a domain's fail, temporary.
	err = client.Probe(ctx, mail.Envelope{})
	require.Error(t, err)
	require.False(t, mail.IsPermanent(err))
	require.False(t, mail.IsRecipientError(err))
	require.Error(t, client.Probe(ctx, domain))
	require.Zero(t, rcpts.Load(), "no RCPT TO without a session")

	// The server accepts, the domain refuses at RCPT TO.
	serverDown.Store(false)
	require.NoError(t, client.Probe(ctx, mail.Envelope{}))
	sessions := srv.Sessions()
	err = client.Probe(ctx, domain)
	require.True(t, mail.IsRecipientError(err), "%v", err)
	require.False(t, mail.IsPermanent(err))
	require.Equal(t, sessions, srv.Sessions(), "the domain's probe took the server probe's connection")

	// The domain accepts: the probe ends in RSET, the connection serves
	// another probe and a send.
	domainDown.Store(false)
	require.NoError(t, client.Probe(ctx, domain))
	require.NoError(t, client.Probe(ctx, domain))
	sessions = srv.Sessions()
	require.Empty(t, srv.Messages(), "a probe sends nothing")
	raw, err := testMessage(to).Bytes()
	require.NoError(t, err)
	require.NoError(t, client.Send(ctx, domain, raw))
	require.Len(t, srv.Messages(), 1)
	require.Equal(t, sessions, srv.Sessions(), "the send went on the probes' connection")
}

func TestSMTPUntrustedServer(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	client, err := mail.NewSMTP(mail.SMTPConfig{Addr: srv.Addr, Timeout: 5 * time.Second}) // system CAs: the test CA is unknown
	require.NoError(t, err)
	raw, err := testMessage("dr@medecin.mssante.fr").Bytes()
	require.NoError(t, err)
	err = client.Send(context.Background(), mail.Envelope{From: sender, To: []string{"dr@medecin.mssante.fr"}}, raw)
	require.ErrorContains(t, err, "certificate")
	require.Empty(t, srv.Messages())
}

func TestSMTPTimeout(t *testing.T) {
	t.Parallel()
	// A server that accepts the connection and never greets.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	client, err := mail.NewSMTP(mail.SMTPConfig{Addr: ln.Addr().String(), Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	start := time.Now()
	err = client.Send(context.Background(), mail.Envelope{From: sender, To: []string{"x@y.fr"}}, []byte("x"))
	require.Error(t, err)
	require.False(t, mail.IsPermanent(err))
	require.Less(t, time.Since(start), 5*time.Second, "the configured timeout bounds the greeting wait")
}

func TestNewSMTPConfigErrors(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]mail.SMTPConfig{
		"no address":       {},
		"no port":          {Addr: "smtp.example"},
		"bad tls mode":     {Addr: "smtp.example:587", TLS: "ssl"},
		"cert without key": {Addr: "smtp.example:587", CertFile: "cert.pem"},
		"missing CA file":  {Addr: "smtp.example:587", CAFile: "/nonexistent/ca.pem"},
	} {
		_, err := mail.NewSMTP(cfg)
		require.Error(t, err, name)
	}
}

func TestMessageHeadersInOrder(t *testing.T) {
	t.Parallel()
	m := testMessage("dr@medecin.mssante.fr")
	m.ReplyTo = "secretariat@ch-demo.mssante.fr"
	m.Headers = []mail.Field{{Name: "X-MSS-NIL", Value: "produit/1.0"}, {Name: "X-MSS-CODECDA", Value: "11490-0"},
		{Name: "X-MSS-INS", Value: "O"}, {Name: "X-MSS-MES", Value: ""}, {Name: "Disposition-Notification-To", Value: "<" + sender + ">"}}
	raw, err := m.Bytes()
	require.NoError(t, err)
	head, _, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	require.True(t, ok)
	var names []string
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		if name, _, ok := bytes.Cut(line, []byte(":")); ok && line[0] != ' ' && line[0] != '\t' {
			names = append(names, string(name))
		}
	}
	require.Equal(t, []string{"Content-Type", "Mime-Version", "From", "To", "Reply-To", "Subject", "Message-Id", "Date",
		"X-MSS-NIL", "X-MSS-CODECDA", "X-MSS-INS", "Disposition-Notification-To"}, names, "an empty value omits its field")

	m.Headers = []mail.Field{{Name: "X-MSS-NIL", Value: "produit é"}}
	_, err = m.Bytes()
	require.ErrorContains(t, err, "X-MSS-NIL")
	m.Headers = []mail.Field{{Name: "X-MSS-NIL", Value: "a\r\nBcc: x@y"}}
	_, err = m.Bytes()
	require.ErrorContains(t, err, "X-MSS-NIL", "no header injection")
}

func TestMessageLimits(t *testing.T) {
	t.Parallel()
	m := testMessage("dr@medecin.mssante.fr")
	m.Attachments = []mail.Attachment{
		{Filename: "a.pdf", ContentType: "application/pdf", Data: make([]byte, mail.MaxAttachmentBytes/2)},
		{Filename: "b.pdf", ContentType: "application/pdf", Data: make([]byte, mail.MaxAttachmentBytes/2)},
	}
	require.NoError(t, m.CheckLimits(), "10 MB exactly is allowed")
	m.Attachments[1].Data = append(m.Attachments[1].Data, 0)
	_, err := m.Bytes()
	require.ErrorIs(t, err, mail.ErrTooLarge)
	require.True(t, mail.IsPermanent(err))
	require.ErrorContains(t, err, "10 MB")

	m = testMessage("dr@medecin.mssante.fr")
	for len(m.To) <= mail.MaxRecipients {
		m.To = append(m.To, "dr@medecin.mssante.fr")
	}
	err = m.CheckLimits()
	require.ErrorIs(t, err, mail.ErrTooLarge)
	require.True(t, mail.IsPermanent(err))
}
