package mtatest_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/internal/mtatest"
)

// update rewrites the captured DSNs (postfix-*.eml) of the DSN parser's
// corpus; regenerate that parser's golden files after it.
var update = flag.Bool("update", false, "write the DSNs received to dispatch/mail/testdata/notifications")

const (
	bal     = "bal@ch-test.mssante.fr"
	known   = "dr.martin@ch-test.mssante.fr"
	unknown = "nobody@ch-test.mssante.fr"
	delayed = "dr.durand@" + mtatest.DeferDomain
)

// notificationsDir holds the saved DSNs, test data of the DSN parser.
var notificationsDir = filepath.Join("..", "..", "dispatch", "mail", "testdata", "notifications")

type testBundle struct {
	srv  *mtatest.Server
	cert tls.Certificate
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	srv := mtatest.Start(t, mtatest.Options{Mailboxes: []string{bal, known}})
	return &testBundle{srv: srv, cert: srv.ClientCert(t, "bal.ch-test.mssante.fr").TLS}
}

func TestSubmissionRequiresClientCertificate(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("NoCertificate", func(t *testing.T) {
		err := send(b.srv.SubmissionAddr, b.srv.TLSConfig(), "no-cert", known)
		require.Error(t, err)
		t.Logf("refused as expected: %v", err)
	})
	t.Run("ForeignCertificate", func(t *testing.T) {
		other := mtatest.Start(t, mtatest.Options{}) // another CA
		err := send(b.srv.SubmissionAddr, b.srv.TLSConfig(other.ClientCert(t, "intruder").TLS), "foreign", known)
		require.Error(t, err)
		t.Logf("refused as expected: %v", err)
	})
	t.Run("NoSTARTTLS", func(t *testing.T) {
		c, err := smtp.Dial(b.srv.SubmissionAddr)
		require.NoError(t, err)
		defer c.Close()
		err = c.Mail(bal, nil)
		require.Error(t, err, "MAIL before STARTTLS must be refused")
		t.Logf("refused as expected: %v", err)
	})
	t.Run("TLS11", func(t *testing.T) {
		cfg := b.srv.TLSConfig(b.cert)
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		err := send(b.srv.SubmissionAddr, cfg, "tls11", known)
		require.Error(t, err)
		t.Logf("refused as expected: %v", err)
	})
	t.Run("CertificateFromCA", func(t *testing.T) {
		c, err := smtp.DialStartTLS(b.srv.SubmissionAddr, b.srv.TLSConfig(b.cert))
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Noop()) // completes the TLS handshake and the second EHLO
		state, ok := c.TLSConnectionState()
		require.True(t, ok)
		require.GreaterOrEqual(t, state.Version, uint16(tls.VersionTLS12))
		require.NoError(t, c.Quit())
		require.NoError(t, send(b.srv.SubmissionAddr, b.srv.TLSConfig(b.cert), "with-cert", known))
	})
}

func TestDSN(t *testing.T) {
	t.Parallel()
	b := setup(t)
	start := time.Now()
	cfg := b.srv.TLSConfig(b.cert)

	require.NoError(t, send(b.srv.SubmissionAddr, cfg, "delivery-1", known))
	// Accepted at RCPT time although the mailbox does not exist: the bounce comes as a DSN.
	require.NoError(t, send(b.srv.SubmissionAddr, cfg, "delivery-2", unknown))
	require.NoError(t, send(b.srv.SubmissionAddr, cfg, "delivery-3", delayed))

	msgs := waitMessages(t, b.srv, known, 1)
	require.Contains(t, string(msgs[0]), "Subject: mtatest delivery-1")

	dsns := waitMessages(t, b.srv, bal, 3)
	t.Logf("3 DSNs after %s", time.Since(start).Round(time.Millisecond))
	byEnvID := map[string][]byte{}
	for _, raw := range dsns {
		r := parseDSN(t, raw)
		byEnvID[r.message.Get("Original-Envelope-Id")] = raw
		switch r.message.Get("Original-Envelope-Id") {
		case "delivery-1":
			require.Equal(t, "delivered", r.recipient.Get("Action"))
			require.Equal(t, "rfc822;"+known, addressField(r.recipient.Get("Original-Recipient")))
			require.True(t, strings.HasPrefix(r.recipient.Get("Status"), "2."), r.recipient.Get("Status"))
		case "delivery-2":
			require.Equal(t, "failed", r.recipient.Get("Action"))
			require.True(t, strings.HasPrefix(r.recipient.Get("Status"), "5."), r.recipient.Get("Status"))
			require.Equal(t, "rfc822;"+unknown, addressField(r.recipient.Get("Final-Recipient")))
		case "delivery-3":
			require.Equal(t, "delayed", r.recipient.Get("Action"))
			require.True(t, strings.HasPrefix(r.recipient.Get("Status"), "4."), r.recipient.Get("Status"))
		default:
			t.Fatalf("unexpected DSN:\n%s", raw)
		}
	}
	require.Len(t, byEnvID, 3)

	if *update {
		for envID, name := range map[string]string{
			"delivery-1": "postfix-success.eml",
			"delivery-2": "postfix-failure.eml",
			"delivery-3": "postfix-delayed.eml",
		} {
			require.NoError(t, os.MkdirAll(notificationsDir, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(notificationsDir, name), byEnvID[envID], 0o644))
		}
	}
}

func TestParallelInstances(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	addrs := map[string]bool{}
	for i := range 2 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			mu.Lock()
			require.False(t, addrs[b.srv.SubmissionAddr] || addrs[b.srv.IMAPAddr], "ports reused")
			addrs[b.srv.SubmissionAddr], addrs[b.srv.IMAPAddr] = true, true
			mu.Unlock()
			envID := fmt.Sprintf("parallel-%d", i)
			require.NoError(t, send(b.srv.SubmissionAddr, b.srv.TLSConfig(b.cert), envID, known))
			msgs := waitMessages(t, b.srv, known, 1)
			require.Contains(t, string(msgs[0]), "Subject: mtatest "+envID)
		})
	}
}

// send submits one message from bal to rcpt with the DSN parameters of the
// MSSanté email: RET=HDRS, ENVID, NOTIFY=SUCCESS,FAILURE,DELAY, ORCPT.
func send(addr string, cfg *tls.Config, envID, rcpt string) error {
	c, err := smtp.DialStartTLS(addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail(bal, &smtp.MailOptions{Return: smtp.DSNReturnHeaders, EnvelopeID: envID}); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt, &smtp.RcptOptions{
		Notify:                []smtp.DSNNotify{smtp.DSNNotifySuccess, smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed},
		OriginalRecipientType: smtp.DSNAddressTypeRFC822,
		OriginalRecipient:     rcpt,
	}); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	msg := "From: " + bal + "\r\n" +
		"To: " + rcpt + "\r\n" +
		"Subject: mtatest " + envID + "\r\n" +
		"Message-ID: <" + envID + "@ch-test.mssante.fr>\r\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Test message, no patient data.\r\n"
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// waitMessages reads the INBOX of address over IMAP (STARTTLS, LOGIN) until
// it holds n messages, and returns them raw.
func waitMessages(t *testing.T, srv *mtatest.Server, address string, n int) [][]byte {
	t.Helper()
	c, err := imapclient.DialStartTLS(srv.IMAPAddr, &imapclient.Options{
		TLSConfig: srv.TLSConfig(),
		Dialer:    &net.Dialer{Timeout: 5 * time.Second},
	})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Login(address, srv.Password).Wait())

	deadline := time.Now().Add(30 * time.Second)
	for {
		mbox, err := c.Select("INBOX", nil).Wait()
		require.NoError(t, err)
		if int(mbox.NumMessages) >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d messages after 30s, want %d\n%s", address, mbox.NumMessages, n, srv.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var seq imap.SeqSet
	seq.AddRange(1, 0) // 1:*
	bufs, err := c.Fetch(seq, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	require.NoError(t, err)
	var out [][]byte
	for _, b := range bufs {
		for _, body := range b.BodySection {
			out = append(out, body.Bytes)
		}
	}
	require.NoError(t, c.Logout().Wait())
	return out
}

// addressField normalizes an address-type;address field of a DSN
// ("RFC822;a@b" as echoed from ORCPT, "rfc822; a@b" as Postfix writes).
func addressField(v string) string {
	typ, addr, _ := strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(typ)) + ";" + strings.TrimSpace(addr)
}

// report is the delivery-status part of a DSN (RFC 3464): the per-message
// fields and the first recipient's fields.
type report struct {
	message, recipient textproto.MIMEHeader
}

// parseDSN checks that raw is a multipart/report; report-type=delivery-status
// and returns its status fields.
func parseDSN(t *testing.T, raw []byte) report {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	require.NoError(t, err)
	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/report", mediaType, "%s", raw)
	require.Equal(t, "delivery-status", params["report-type"])
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		require.NoError(t, err, "no message/delivery-status part")
		if p.Header.Get("Content-Type") != "message/delivery-status" {
			continue
		}
		tr := textproto.NewReader(bufio.NewReader(p))
		msgFields, err := tr.ReadMIMEHeader()
		require.NoError(t, err)
		rcptFields, err := tr.ReadMIMEHeader()
		if !errors.Is(err, io.EOF) {
			require.NoError(t, err)
		}
		return report{message: msgFields, recipient: rcptFields}
	}
}
