package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
	"github.com/mssdispatch/mssdispatch/internal/mtatest"
)

// Addresses of the end-to-end test with a real mail system: the BAL
// applicative, Claire's mailbox; Julie's address (given by the DPI) has no
// mailbox, so Postfix accepts the email and bounces it.
const (
	mtaBAL    = "bal@ch-demo.mssante.fr"
	mtaClaire = "claire.dupont-demo@medecin-demo.mssante.fr"
	mtaJulie  = "julie.roux@medecin-demo.mssante.fr"
)

// askAcks makes a sample report ask for the delivery and read
// acknowledgements (its MetaDMPMSS OBX ACK_RECEPTION and ACK_LECTURE_MSS Y).
func askAcks(msg []byte) []byte {
	for _, code := range []string{"ACK_RECEPTION^Accusé de réception", "ACK_LECTURE_MSS^Accusé de lecture"} {
		msg = bytes.Replace(msg, []byte(code+"^MetaDMPMSS||N^^"), []byte(code+"^MetaDMPMSS||Y^^"), 1)
	}
	return msg
}

// TestEndToEndWithPostfix runs the service binary against Postfix and
// Dovecot: a report with acknowledgements asked goes out by SMTP submission
// (STARTTLS, client certificate), Postfix's own DSNs come back through IMAP:
// Claire's email is delivered, Julie's (no such mailbox) bounced and falls
// back to paper; Claire's MDN, sent through Postfix like a mail client
// would, marks it read; the DPI receives ZAM^Z02 for both (Y, then N) and
// ZAM^Z03 for Claire over MLLP.
func TestEndToEndWithPostfix(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs Postfix and Dovecot")
	}
	mta := mtatest.Start(t, mtatest.Options{Mailboxes: []string{mtaBAL, mtaClaire}})
	client := mta.ClientCert(t, "bal.ch-demo.mssante.fr")
	dpi := startTestDPI(t)
	bin := buildBinary(t)
	dbURL := demoDatabase(t)
	mllpAddr, httpAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "serve")
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Env = append(os.Environ(),
		"MSSDISPATCH_DATABASE_URL="+dbURL, "MSSDISPATCH_API_TOKEN="+testToken, "MSSDISPATCH_SENDER="+mtaBAL,
		"MSSDISPATCH_TRANSPORT=smtp", "MSSDISPATCH_SMTP_ADDR="+mta.SubmissionAddr, "MSSDISPATCH_SMTP_CA_FILE="+mta.CA.File,
		"MSSDISPATCH_SMTP_CERT_FILE="+client.CertFile, "MSSDISPATCH_SMTP_KEY_FILE="+client.KeyFile,
		"MSSDISPATCH_IMAP_ADDR="+mta.IMAPAddr, "MSSDISPATCH_IMAP_CA_FILE="+mta.CA.File,
		"MSSDISPATCH_IMAP_USERNAME="+mtaBAL, "MSSDISPATCH_IMAP_PASSWORD="+mta.Password,
		"MSSDISPATCH_DPI_ACK_ADDR="+dpi.addr, "MSSDISPATCH_SOURCE_OID=1.2.250.1.999.7",
		"MSSDISPATCH_MLLP_ADDR="+mllpAddr, "MSSDISPATCH_HTTP_ADDR="+httpAddr)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitReady(t, httpAddr, logs)
	diagnose := func() string { return "service:\n" + logs.String() + "\n" + mta.Logs() }

	msg, documentID, err := sampleReport(time.Now())
	require.NoError(t, err)
	msg = askAcks(msg)
	ack := sendMLLP(t, mllpAddr, msg)
	require.Equal(t, "AA", ack.Segment("MSA").Get(1), "%s", ack.Encode())
	controlID := hl7.ControlIDOf(msg)

	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	defer pool.Close()
	status := func(address string) string {
		var s string
		err := pool.QueryRow(context.Background(), `SELECT d.status FROM deliveries d JOIN reports r ON r.id = d.report_id
			WHERE r.document_id = $1 AND d.channel = 'mssante' AND d.address = $2`, documentID, address).Scan(&s)
		if err != nil {
			return err.Error()
		}
		return s
	}
	// Postfix's DSNs, read from the BAL applicative's mailbox.
	require.Eventually(t, func() bool { return status(mtaClaire) == "delivered" && status(mtaJulie) == "failed" },
		60*time.Second, 100*time.Millisecond, "Claire %s, Julie %s\n%s", status(mtaClaire), status(mtaJulie), diagnose())
	require.Eventually(t, func() bool {
		var channel string
		err := pool.QueryRow(context.Background(), `SELECT f.channel FROM deliveries f
			JOIN deliveries d ON d.id = f.fallback_of WHERE d.address = $1`, mtaJulie).Scan(&channel)
		return err == nil && channel == "paper"
	}, 30*time.Second, 100*time.Millisecond, "Julie's bounced email falls back to paper\n%s", diagnose())

	// Claire's mail client reads the email and sends its MDN through Postfix.
	email := waitMail(t, mta.Maildir(mtaClaire), diagnose)
	require.Contains(t, string(email), "IHE_XDM.ZIP")
	messageID := headerOf(bytes.ReplaceAll(email, []byte("\n"), []byte("\r\n")), "Message-Id")
	require.NotEmpty(t, messageID, "%s", email)
	sendMDN(t, mta, client.TLS, messageID)
	require.Eventually(t, func() bool { return status(mtaClaire) == "read" }, 60*time.Second, 100*time.Millisecond,
		"Claire %s\n%s", status(mtaClaire), diagnose())

	// The DPI's business acknowledgements: Z02 Y (Claire), Z02 N (Julie), Z03 Y (Claire).
	require.Eventually(t, func() bool { return len(dpi.messages()) == 3 }, 60*time.Second, 100*time.Millisecond,
		"%d ZAM\n%s", len(dpi.messages()), diagnose())
	got := map[string]string{}
	for _, m := range dpi.messages() {
		_, event, _ := m.Type()
		obx := m.SegmentsNamed("OBX")
		require.Len(t, obx, 2)
		require.Equal(t, controlID, obx[0].Get(4), "OBX-4 is the MSH-10 of the DPI's message")
		address := hl7.OBX{Segment: obx[1]}.Value().Rep(0).Comp(4)
		state := hl7.OBX{Segment: obx[0]}.CodedValue().Identifier
		if e := m.Segment("ERR"); e != nil {
			state += " " + e.Component(5, 1) + " " + e.Component(5, 3)
		}
		got[event+" "+address] = state
	}
	require.Equal(t, map[string]string{
		"Z02 " + mtaClaire: "Y",
		"Z02 " + mtaJulie:  "N 550 SMTPERRORCODE",
		"Z03 " + mtaClaire: "Y",
	}, got)
}

// waitMail returns the first email delivered to the Maildir dir.
func waitMail(t *testing.T, dir string, diagnose func() string) []byte {
	t.Helper()
	var email []byte
	require.Eventually(t, func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "new", "*"))
		if len(files) == 0 {
			return false
		}
		var err error
		email, err = os.ReadFile(files[0])
		return err == nil
	}, 60*time.Second, 100*time.Millisecond, "no email in %s\n%s", dir, diagnose())
	return email
}

// sendMDN submits, as Claire's mail client, the MDN "displayed" of the email
// messageID to the BAL applicative (RFC 8098).
func sendMDN(t *testing.T, mta *mtatest.Server, cert tls.Certificate, messageID string) {
	t.Helper()
	mdn := strings.Join([]string{
		"From: " + mtaClaire,
		"To: " + mtaBAL,
		"Subject: =?utf-8?q?Lu_=3A?= Compte rendu",
		"Message-ID: <mdn-" + fmt.Sprint(time.Now().UnixNano()) + "@medecin-demo.mssante.fr>",
		"Date: " + time.Now().Format(time.RFC1123Z),
		"MIME-Version: 1.0",
		`Content-Type: multipart/report; report-type=disposition-notification; boundary="b"`,
		"",
		"--b",
		"Content-Type: text/plain; charset=utf-8",
		"",
		"Le message a été affiché.",
		"--b",
		"Content-Type: message/disposition-notification",
		"",
		"Reporting-UA: medecin-demo.mssante.fr; client de test",
		"Final-Recipient: rfc822; " + mtaClaire,
		"Original-Message-ID: " + messageID,
		"Disposition: manual-action/MDN-sent-manually; displayed",
		"",
		"--b--",
		"",
	}, "\r\n")
	c, err := smtp.DialStartTLS(mta.SubmissionAddr, mta.TLSConfig(cert))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SendMail(mtaClaire, []string{mtaBAL}, strings.NewReader(mdn)))
}

// testDPI is the DPI's MLLP listener for business acknowledgements: it
// keeps what it receives and accepts it (AA).
type testDPI struct {
	addr string
	mu   sync.Mutex
	got  []*hl7.Message
}

func startTestDPI(t *testing.T) *testDPI {
	t.Helper()
	d := &testDPI{}
	srv := &mllp.Server{Handler: mllp.HandlerFunc(func(_ context.Context, raw []byte) []byte {
		m, err := hl7.Parse(raw, hl7.ParseOptions{})
		if err != nil {
			return hl7.NewACKFor(hl7.ControlIDOf(raw), hl7.AckReject, "DPI", time.Now()).Encode()
		}
		d.mu.Lock()
		d.got = append(d.got, m)
		d.mu.Unlock()
		return hl7.NewACKFor(m.ControlID(), hl7.AckAccept, "DPI", time.Now()).Encode()
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	d.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return d
}

func (d *testDPI) messages() []*hl7.Message {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*hl7.Message(nil), d.got...)
}
