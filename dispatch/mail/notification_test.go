package mail_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch/mail"
)

var update = flag.Bool("update", false,
	"rewrite testdata/notifications/*.golden.json from the parser's output")

const notifDir = "testdata/notifications"

// notifGolden is what a golden file holds: the notification, or the error.
type notifGolden struct {
	Notification *mail.Notification `json:"notification,omitempty"`
	Error        string             `json:"error,omitempty"`
}

// parseNotifFile parses a file of the corpus; a parse error fails the test.
func parseNotifFile(t *testing.T, name string) *mail.Notification {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(notifDir, name))
	require.NoError(t, err)
	n, err := mail.ParseNotification(bytes.NewReader(raw))
	require.NoError(t, err, name)
	return n
}

// TestParseNotificationGolden parses every .eml of the corpus, the real
// captures of the Postfix harness included, and compares the result with
// its golden file.
func TestParseNotificationGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(notifDir, "*.eml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(file)
			require.NoError(t, err)
			var got notifGolden
			got.Notification, err = mail.ParseNotification(bytes.NewReader(raw))
			if err != nil {
				require.ErrorIs(t, err, mail.ErrNotification)
				require.Nil(t, got.Notification, "a notification with an error")
				got.Error = err.Error()
			}
			out, err := json.MarshalIndent(got, "", "  ")
			require.NoError(t, err)
			out = append(out, '\n')
			golden := strings.TrimSuffix(file, ".eml") + ".golden.json"
			if *update {
				require.NoError(t, os.WriteFile(golden, out, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "no golden file: run go test ./dispatch/mail -run TestParseNotificationGolden -update, then review it")
			require.Equal(t, string(want), string(out))
		})
	}
}

// TestParseNotification checks, file by file, what correlation and the
// acknowledgements rely on.
func TestParseNotification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file  string
		check func(t *testing.T, n *mail.Notification)
	}{
		{"postfix-like-success.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, mail.KindDSN, n.Kind)
			require.Equal(t, "4Zk3Lq1WbNz9vQ@mx.ch-demo.mssante.fr", n.MessageID)
			require.Equal(t, "mssdispatch-101", n.EnvelopeID)
			require.Equal(t, "7c1e2f30a9b84d55@ch-demo.mssante.fr", n.OriginalMessageID, "from text/rfc822-headers")
			require.Equal(t, []mail.RecipientStatus{{
				FinalRecipient:    "dr.martin@medecin-demo.mssante.fr",
				OriginalRecipient: "dr.martin@medecin-demo.mssante.fr",
				Action:            "delivered",
				Status:            "2.0.0",
				DiagnosticCode:    "250 2.0.0 Ok: queued as 4Zk3Lr0C7Rz1xy",
				RemoteMTA:         "mx.medecin-demo.mssante.fr",
			}}, n.Recipients)
		}},
		{"postfix-like-failure.eml", func(t *testing.T, n *mail.Notification) {
			r := n.Recipients[0]
			require.Equal(t, "failed", r.Action)
			require.Equal(t, "5.1.1", r.Status)
			require.Equal(t, "550 5.1.1 <inconnu@medecin-demo.mssante.fr>: Recipient address rejected: "+
				"User unknown in virtual mailbox table", r.DiagnosticCode, "unfolded")
			require.True(t, r.LastAttempt.Equal(time.Date(2026, 11, 23, 9, 5, 1, 0, time.UTC)), r.LastAttempt)
		}},
		{"postfix-like-delayed.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, "delayed", n.Recipients[0].Action)
			require.Equal(t, "4.4.1", n.Recipients[0].Status)
		}},
		{"exchange-ndr.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, mail.KindDSN, n.Kind, "a DSN, not a reply, despite In-Reply-To")
			require.Empty(t, n.EnvelopeID)
			require.Equal(t, "0a1b2c3d4e5f6071@ch-demo.mssante.fr", n.OriginalMessageID, "from message/rfc822")
			require.Equal(t, "Non remis : XDM/1.0/DDM+Compte rendu d'imagerie TEST Jeanne 01/01/1970", n.Subject)
			require.Equal(t, "5.1.10", n.Recipients[0].Status)
			require.Equal(t, "secretariat@clinique-demo.onmicrosoft.com", n.Recipients[0].OriginalRecipient)
		}},
		{"gmail-dsn.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, "1b2c3d4e5f607182@ch-demo.mssante.fr", n.OriginalMessageID, "X-Original-Message-ID: the headers have none")
			require.Equal(t, "patient.test.demo@gmail.com", n.Recipients[0].FinalRecipient)
			require.Contains(t, n.Recipients[0].DiagnosticCode, "550-5.1.1 The email account")
		}},
		{"sendmail-dsn.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, "dr.parti@medecin-demo.mssante.fr", n.Recipients[0].FinalRecipient, "RFC822; in upper case")
			require.Equal(t, "mail.medecin-demo.mssante.fr", n.Recipients[0].RemoteMTA)
			require.Equal(t, "2c3d4e5f60718293@ch-demo.mssante.fr", n.OriginalMessageID)
		}},
		{"dsn-no-report-type.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, mail.KindDSN, n.Kind)
			require.Equal(t, "5.2.1", n.Recipients[0].Status, "the comment dropped")
		}},
		{"dsn-uppercase.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, mail.KindDSN, n.Kind)
			require.Equal(t, "mssdispatch-108", n.EnvelopeID)
			require.Equal(t, "failed", n.Recipients[0].Action, "lower-cased")
			require.Equal(t, "4e5f607182930415@ch-demo.mssante.fr", n.OriginalMessageID)
			require.False(t, n.Recipients[0].LastAttempt.IsZero())
		}},
		{"dsn-three-recipients.eml", func(t *testing.T, n *mail.Notification) {
			var got []string
			for _, r := range n.Recipients {
				got = append(got, r.Action+" "+r.FinalRecipient+" "+r.OriginalRecipient)
			}
			require.Equal(t, []string{
				"delivered dr.un@medecin-demo.mssante.fr dr.un@medecin-demo.mssante.fr",
				"failed dr.deux@medecin-demo.mssante.fr dr.deux@medecin-demo.mssante.fr",
				"relayed secretariat.trois@cabinet-demo.mssante.fr ",
			}, got)
		}},
		{"bounce-text-plain.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, mail.KindDSN, n.Kind, "the fields in a text/plain bounce")
			require.Equal(t, "mssdispatch-110", n.EnvelopeID)
			require.Equal(t, "60718293a4b52637@ch-demo.mssante.fr", n.OriginalMessageID, "the quoted Message-ID")
			require.Equal(t, "550 Utilisateur inconnu", n.Recipients[0].DiagnosticCode)
		}},
		{"dsn-quoted-printable.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, "552 5.2.2 Boîte aux lettres pleine, quota dépassé", n.Recipients[0].DiagnosticCode)
			require.Equal(t, "718293a4b5c63748@ch-demo.mssante.fr", n.OriginalMessageID, "base64 headers")
			require.Equal(t, "Non remis à destination", n.Subject)
		}},
		{"dsn-global-utf8.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, "hélène.médecin@médecins-demo.fr", n.Recipients[0].FinalRecipient)
			require.Equal(t, "hélène.médecin@médecins-demo.fr", n.Recipients[0].OriginalRecipient, `\x{..} decoded`)
			require.Equal(t, "dr+cardio@medecin-demo.mssante.fr", n.Recipients[1].OriginalRecipient, "xtext +2B decoded")
			require.Equal(t, "8293a4b5c6d74859@ch-demo.mssante.fr", n.OriginalMessageID, "message/global-headers")
		}},
		{"dsn-wrapped-in-mixed.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, mail.KindDSN, n.Kind)
			require.Equal(t, "mssdispatch-113", n.EnvelopeID)
		}},
		{"dsn-status-as-text-plain.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, mail.KindDSN, n.Kind)
			require.Equal(t, "delivered", n.Recipients[0].Action)
		}},
		{"dsn-truncated-returned-headers.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, "93a4b5c6d7e8596a@ch-demo.mssante.fr", n.OriginalMessageID)
			require.Equal(t, "failed", n.Recipients[0].Action)
		}},
		{"mdn-processed.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, mail.KindMDN, n.Kind)
			require.Equal(t, "a4b5c6d7e8f9061b@ch-demo.mssante.fr", n.OriginalMessageID)
			require.Equal(t, &mail.Disposition{
				ActionMode: "automatic-action", SendingMode: "MDN-sent-automatically", Type: "processed",
				FinalRecipient:    "lps-auto@cabinet-demo.mssante.fr",
				OriginalRecipient: "lps-auto@cabinet-demo.mssante.fr",
			}, n.Disposition)
			require.False(t, n.Disposition.Failed())
		}},
		{"mdn-error-902.eml", func(t *testing.T, n *mail.Notification) {
			d := n.Disposition
			require.Equal(t, "processed", d.Type)
			require.Equal(t, []string{"error"}, d.Modifiers)
			require.Equal(t, "902", d.ErrorCode)
			require.Equal(t, "Identifiant de patient inconnu", d.ErrorLabel, "up to the HL7 components")
			require.True(t, d.Failed())
			require.Equal(t, "b5c6d7e8f9061a2c@ch-demo.mssante.fr", n.OriginalMessageID)
			require.True(t, strings.HasPrefix(n.Subject, "[KO Intégration système !][902] XDM/1.0/DDM+"), n.Subject)
		}},
		{"mdn-displayed.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, "displayed", n.Disposition.Type)
			require.Equal(t, "manual-action", n.Disposition.ActionMode)
			require.Equal(t, "MDN-sent-manually", n.Disposition.SendingMode)
			require.False(t, n.Disposition.Failed())
		}},
		{"mdn-error-lowercase.eml", func(t *testing.T, n *mail.Notification) {
			d := n.Disposition
			require.Equal(t, "MDN-sent-automatically", d.SendingMode, "canonical case")
			require.Equal(t, "904", d.ErrorCode)
			require.Equal(t, "l'INS transmis ne correspond pas", d.ErrorLabel)
			require.Equal(t, "d7e8f9061a2b3c4e@ch-demo.mssante.fr", n.OriginalMessageID)
		}},
		{"mdn-error-field.eml", func(t *testing.T, n *mail.Notification) {
			d := n.Disposition
			require.Equal(t, "INS non present dans le document", d.Error, "the Error field")
			require.Equal(t, "903", d.ErrorCode, "from the MSSanté error subject")
			require.True(t, d.Failed())
		}},
		{"mdn-legacy-layout.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, mail.KindMDN, n.Kind, "fields in the part header")
			require.Equal(t, "902", n.Disposition.ErrorCode)
			require.Equal(t, "202611242301.23456", n.OriginalMessageID)
			require.Equal(t, "service-auto@chb-demo.mssante.fr", n.Disposition.FinalRecipient)
		}},
		{"human-reply.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, mail.KindReply, n.Kind, "quoted fields are no report")
			require.Equal(t, []string{"0718293a4b5c6d7e@ch-demo.mssante.fr"}, n.InReplyTo)
			require.Equal(t, []string{"f0e1d2c3b4a59687@ch-demo.mssante.fr", "0718293a4b5c6d7e@ch-demo.mssante.fr"}, n.References)
			require.Equal(t, "RE : XDM/1.0/DDM+Lettre TEST Jeanne 01/01/1970", n.Subject)
			require.Nil(t, n.Disposition)
			require.Empty(t, n.Recipients)
		}},
		{"newsletter.eml", func(t *testing.T, n *mail.Notification) {
			require.Equal(t, mail.KindUnknown, n.Kind)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			tt.check(t, parseNotifFile(t, tt.file))
		})
	}
}

// TestParseNotificationPostfix checks the real notifications captured from
// Postfix by the end-to-end harness, when they are there.
func TestParseNotificationPostfix(t *testing.T) {
	t.Parallel()
	for file, actions := range map[string][]string{
		"postfix-success.eml": {"delivered", "relayed"},
		"postfix-failure.eml": {"failed"},
		"postfix-delayed.eml": {"delayed"},
	} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			if _, err := os.Stat(filepath.Join(notifDir, file)); errors.Is(err, os.ErrNotExist) {
				t.Skip("not captured yet")
			}
			n := parseNotifFile(t, file)
			require.Equal(t, mail.KindDSN, n.Kind)
			require.NotEmpty(t, n.EnvelopeID, "the ENVID comes back")
			require.NotEmpty(t, n.OriginalMessageID, "RET=HDRS returns the headers")
			for _, r := range n.Recipients {
				require.Contains(t, actions, r.Action)
				require.NotEmpty(t, r.FinalRecipient)
			}
		})
	}
}

// mdnWith returns an MDN whose Disposition field is disposition.
func mdnWith(subject, disposition string) string {
	return "Subject: " + subject + "\r\nMessage-ID: <m@x>\r\n" +
		"Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nMDN\r\n" +
		"--b\r\nContent-Type: message/disposition-notification\r\n\r\n" +
		"Final-Recipient: rfc822; lps@cabinet-demo.mssante.fr\r\n" +
		"Original-Message-ID: <o@ch-demo.mssante.fr>\r\n" +
		"Disposition: " + disposition + "\r\n--b--\r\n"
}

// TestParseDisposition checks the variants of the Disposition field.
func TestParseDisposition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		disposition, subject string
		want                 mail.Disposition
	}{
		{"automatic-action/MDN-sent-automatically; processed", "",
			mail.Disposition{ActionMode: "automatic-action", SendingMode: "MDN-sent-automatically", Type: "processed"}},
		{"manual-action/MDN-sent-manually; displayed", "",
			mail.Disposition{ActionMode: "manual-action", SendingMode: "MDN-sent-manually", Type: "displayed"}},
		{"Automatic-Action/MDN-Sent-Automatically;Processed/Error: 902^Patient inconnu", "",
			mail.Disposition{ActionMode: "automatic-action", SendingMode: "MDN-sent-automatically", Type: "processed",
				Modifiers: []string{"error"}, Error: "902^Patient inconnu", ErrorCode: "902", ErrorLabel: "Patient inconnu"}},
		{"automatic-action/MDN-sent-automatically; processed/error: 905^INS incomplet, traits manquants", "",
			mail.Disposition{ActionMode: "automatic-action", SendingMode: "MDN-sent-automatically", Type: "processed",
				Modifiers: []string{"error"}, Error: "905^INS incomplet, traits manquants", ErrorCode: "905",
				ErrorLabel: "INS incomplet, traits manquants"}},
		{"automatic-action/MDN-sent-automatically; processed/Error:906 - Autre erreur", "",
			mail.Disposition{ActionMode: "automatic-action", SendingMode: "MDN-sent-automatically", Type: "processed",
				Modifiers: []string{"error"}, Error: "906 - Autre erreur", ErrorCode: "906", ErrorLabel: "Autre erreur"}},
		{"automatic-action/MDN-sent-automatically; processed/Error: Patient inconnu", "",
			mail.Disposition{ActionMode: "automatic-action", SendingMode: "MDN-sent-automatically", Type: "processed",
				Modifiers: []string{"error"}, Error: "Patient inconnu", ErrorLabel: "Patient inconnu"}},
		{"automatic-action/MDN-sent-automatically; processed/Error: Patient inconnu", "[KO Intégration système !][902] XDM/1.0/DDM+x",
			mail.Disposition{ActionMode: "automatic-action", SendingMode: "MDN-sent-automatically", Type: "processed",
				Modifiers: []string{"error"}, Error: "Patient inconnu", ErrorCode: "902", ErrorLabel: "Patient inconnu"}},
		{"automatic-action/MDN-sent-automatically; processed/error", "",
			mail.Disposition{ActionMode: "automatic-action", SendingMode: "MDN-sent-automatically", Type: "processed",
				Modifiers: []string{"error"}}},
		{"automatic-action/MDN-sent-automatically; deleted/expired, warning", "",
			mail.Disposition{ActionMode: "automatic-action", SendingMode: "MDN-sent-automatically", Type: "deleted",
				Modifiers: []string{"expired", "warning"}}},
		{"automatic-action/MDN-sent-automatically; processed/warning, error: 900^Version incorrecte", "",
			mail.Disposition{ActionMode: "automatic-action", SendingMode: "MDN-sent-automatically", Type: "processed",
				Modifiers: []string{"warning", "error"}, Error: "900^Version incorrecte", ErrorCode: "900", ErrorLabel: "Version incorrecte"}},
		{"automatic-action/MDN-sent-automatically; processed/Error: =?utf-8?q?901^Auteur_non_autoris=C3=A9?=", "",
			mail.Disposition{ActionMode: "automatic-action", SendingMode: "MDN-sent-automatically", Type: "processed",
				Modifiers: []string{"error"}, Error: "901^Auteur non autorisé", ErrorCode: "901", ErrorLabel: "Auteur non autorisé"}},
		{"dispatched", "", mail.Disposition{Type: "dispatched"}},
	}
	for _, tt := range tests {
		t.Run(tt.disposition, func(t *testing.T) {
			t.Parallel()
			n, err := mail.ParseNotification(strings.NewReader(mdnWith(tt.subject, tt.disposition)))
			require.NoError(t, err)
			require.Equal(t, mail.KindMDN, n.Kind)
			tt.want.FinalRecipient = "lps@cabinet-demo.mssante.fr"
			require.Equal(t, &tt.want, n.Disposition)
			require.Equal(t, tt.want.Modifiers != nil, n.Disposition.Failed() || tt.want.Type == "deleted")
		})
	}
}

// TestParseNotificationVariants checks tolerance on small crafted messages.
func TestParseNotificationVariants(t *testing.T) {
	t.Parallel()
	report := func(head, fields string) string {
		return head + "\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n" + fields + "\r\n--b--\r\n"
	}
	tests := []struct {
		name, msg string
		want      []mail.RecipientStatus
		envid     string
	}{
		{"no blank line between blocks: a repeated field splits",
			report("Content-Type: multipart/report; report-type=delivery-status; boundary=b",
				"Reporting-MTA: dns; x\r\nFinal-Recipient: rfc822;a@x\r\nAction: failed\r\nStatus: 5.0.0\r\n"+
					"Final-Recipient: rfc822;b@x\r\nAction: delivered\r\nStatus: 2.0.0"),
			[]mail.RecipientStatus{{FinalRecipient: "a@x", Action: "failed", Status: "5.0.0"},
				{FinalRecipient: "b@x", Action: "delivered", Status: "2.0.0"}}, ""},
		{"Original-Recipient first, then the next one",
			report("Content-Type: multipart/report; report-type=delivery-status; boundary=b",
				"Original-Recipient: rfc822;a@x\r\nFinal-Recipient: rfc822;a@x\r\nAction: failed\r\n"+
					"Original-Recipient: rfc822;b@x\r\nFinal-Recipient: rfc822;b@x\r\nAction: delayed"),
			[]mail.RecipientStatus{{FinalRecipient: "a@x", OriginalRecipient: "a@x", Action: "failed"},
				{FinalRecipient: "b@x", OriginalRecipient: "b@x", Action: "delayed"}}, ""},
		{"no boundary parameter: guessed; angle brackets and xtext ENVID",
			report("Content-Type: multipart/report; report-type=delivery-status",
				"Original-Envelope-Id: env+2Bid+3D1\r\n\r\nFinal-Recipient: rfc822; <a@x>\r\nAction: Failed (bad)"),
			[]mail.RecipientStatus{{FinalRecipient: "a@x", Action: "failed"}}, "env+id=1"},
		{"malformed Content-Type parameters",
			report(`Content-Type: multipart/report; report-type=delivery-status; boundary=b; boundary=c; x="`,
				"Final-Recipient: a@x\r\nStatus: 5.1.1"),
			[]mail.RecipientStatus{{FinalRecipient: "a@x", Status: "5.1.1"}}, ""},
		{"an mbox From line and LF line ends",
			"From MAILER-DAEMON Mon Nov 23 10:00:00 2026\nContent-Type: multipart/report; boundary=b\n\n" +
				"--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822;a@x\nAction: delivered\n--b--\n",
			[]mail.RecipientStatus{{FinalRecipient: "a@x", Action: "delivered"}}, ""},
		{"base64 report part",
			"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
				"--b\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
				"RmluYWwtUmVjaXBpZW50OiByZmM4MjI7IGFAeApBY3Rpb246IGZhaWxlZA==\r\n--b--\r\n",
			[]mail.RecipientStatus{{FinalRecipient: "a@x", Action: "failed"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, err := mail.ParseNotification(strings.NewReader(tt.msg))
			require.NoError(t, err)
			require.Equal(t, mail.KindDSN, n.Kind)
			require.Equal(t, tt.want, n.Recipients)
			require.Equal(t, tt.envid, n.EnvelopeID)
		})
	}
}

// TestParseNotificationPlainText checks reports a non-compliant agent puts
// in a text/plain message, and prose that must not be taken for one.
func TestParseNotificationPlainText(t *testing.T) {
	t.Parallel()
	const head = "Message-ID: <p@x>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	tests := []struct {
		name, body, kind string
	}{
		{"an MDN in plain text", "Votre message a été lu.\r\n\r\nFinal-Recipient: rfc822; dr@x\r\n" +
			"Original-Message-ID: <o@ch-demo.mssante.fr>\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n", mail.KindMDN},
		{"a Disposition without the ids", "Disposition: manual-action/MDN-sent-manually; displayed\r\n", mail.KindUnknown},
		{"a sentence with a Disposition", "Disposition: nous verrons demain.\r\nFinal-Recipient: le secrétariat\r\n", mail.KindUnknown},
		{"a recipient without action nor status", "Final-Recipient: rfc822; dr@x\r\n", mail.KindUnknown},
		{"a bounce", "Final-Recipient: rfc822; dr@x\r\nStatus: 5.1.1\r\n", mail.KindDSN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, err := mail.ParseNotification(strings.NewReader(head + tt.body))
			require.NoError(t, err)
			require.Equal(t, tt.kind, n.Kind)
			if tt.kind == mail.KindMDN {
				require.Equal(t, "o@ch-demo.mssante.fr", n.OriginalMessageID)
				require.Equal(t, "displayed", n.Disposition.Type)
			}
		})
	}
}

// TestParseNotificationErrors checks what is refused, and that hostile
// input is refused quickly and without allocating much more than its size.
// It is not parallel: it measures allocations.
func TestParseNotificationErrors(t *testing.T) {
	nested := func(depth int) string {
		var b strings.Builder
		for i := range depth {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
		}
		return b.String()
	}
	manyParts := "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\n\r\nx\r\n", 5000)
	manyRecipients := "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: message/delivery-status\r\n\r\n" +
		strings.Repeat("Final-Recipient: rfc822;a@x\r\nAction: failed\r\n\r\n", 2000) + "--b--\r\n"
	tests := []struct {
		name, msg, want string
	}{
		{"truncated", "", "without any recipient"}, // replaced below by the corpus file
		{"no recipient", "Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n--b--\r\n", "without any recipient"},
		{"declared, no part", "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n", "without any recipient"},
		{"no Disposition", "Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\nContent-Type: message/disposition-notification\r\n\r\nFinal-Recipient: rfc822;x@y\r\n--b--\r\n", "without Disposition"},
		{"deep nesting", nested(5000), "nested deeper"},
		{"many parts", manyParts, "more than 1000 MIME parts"},
		{"many recipients", manyRecipients, "more than 1000 recipients"},
		{"many report fields", "Content-Type: text/plain\r\n\r\n" + strings.Repeat("Status: 5.0.0\r\n", 20000), "more than 10000 report fields"},
		{"huge header line", "Subject: " + strings.Repeat("x", 2<<20) + "\r\n\r\n", "header line over"},
		{"many header fields", strings.Repeat("Received: from x by y\r\n", 100000) + "\r\n", "more than 10000 fields"},
		{"huge header block", strings.Repeat("Received: from x by y"+strings.Repeat(" x", 500)+"\r\n", 3000) + "\r\n", "header block over"},
		{"too large", strings.Repeat("x", mail.MaxNotificationSize+1), "larger than"},
	}
	raw, err := os.ReadFile(filepath.Join(notifDir, "dsn-truncated-before-recipients.eml"))
	require.NoError(t, err)
	tests[0].msg = string(raw)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			n, err := mail.ParseNotification(strings.NewReader(tt.msg))
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			require.ErrorIs(t, err, mail.ErrNotification)
			require.ErrorContains(t, err, tt.want)
			require.Nil(t, n)
			require.Less(t, elapsed, 5*time.Second)
			// Reading the input costs about twice its size (io.ReadAll's
			// growth); the parse must not multiply it.
			if alloc := after.TotalAlloc - before.TotalAlloc; len(tt.msg) > 1<<20 && alloc > uint64(6*len(tt.msg)) {
				t.Errorf("allocated %d bytes for %d bytes of input", alloc, len(tt.msg))
			}
		})
	}
}

// TestParseNotificationReadError checks that a failing reader is an error.
func TestParseNotificationReadError(t *testing.T) {
	t.Parallel()
	_, err := mail.ParseNotification(io.MultiReader(strings.NewReader("Subject: x\r\n"), errReader{}))
	require.ErrorIs(t, err, mail.ErrNotification)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// FuzzParseNotification checks that any input is classified or refused,
// never a panic, and that what is classified is coherent.
func FuzzParseNotification(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(notifDir, "*.eml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/report; boundary=b\r\n\r\n--b\r\n"))
	f.Add([]byte("Content-Type: text/plain\n\nFinal-Recipient: a\nAction: failed\n\nDisposition: a/b; processed/error: 9\nFinal-Recipient: b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := mail.ParseNotification(bytes.NewReader(data))
		if err != nil {
			if n != nil || !errors.Is(err, mail.ErrNotification) {
				t.Fatalf("n = %v, err = %v", n, err)
			}
			return
		}
		switch n.Kind {
		case mail.KindDSN:
			if len(n.Recipients) == 0 || n.Disposition != nil {
				t.Fatal("a DSN without recipients, or with a disposition")
			}
		case mail.KindMDN:
			if n.Disposition == nil || len(n.Recipients) > 0 {
				t.Fatal("an MDN without disposition, or with recipients")
			}
		case mail.KindReply:
			if len(n.InReplyTo)+len(n.References) == 0 {
				t.Fatal("a reply that answers nothing")
			}
		case mail.KindUnknown:
		default:
			t.Fatalf("kind %q", n.Kind)
		}
		if _, err := json.Marshal(n); err != nil {
			t.Fatal(err)
		}
	})
}

// ExampleParseNotification reads an MSSanté MDN in error.
func ExampleParseNotification() {
	msg := "From: lps-auto@cabinet-demo.mssante.fr\r\n" +
		"Message-ID: <mdn-1@cabinet-demo.mssante.fr>\r\n" +
		"Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nLe document n'a pas pu être intégré.\r\n" +
		"--b\r\nContent-Type: message/disposition-notification\r\n\r\n" +
		"Final-Recipient: rfc822;lps-auto@cabinet-demo.mssante.fr\r\n" +
		"Original-Message-ID: <abc123@ch-demo.mssante.fr>\r\n" +
		"Disposition: automatic-action/MDN-sent-automatically; processed/Error: 902^Patient inconnu\r\n" +
		"--b--\r\n"
	n, err := mail.ParseNotification(strings.NewReader(msg))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(n.Kind, n.OriginalMessageID, n.Disposition.Type, n.Disposition.ErrorCode, n.Disposition.Failed())
	// Output: mdn abc123@ch-demo.mssante.fr processed 902 true
}
