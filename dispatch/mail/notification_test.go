package mail_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch/mail"
)

var updateNotifications = flag.Bool("update-notifications", false, "rewrite testdata/notifications/*.golden.json")

// TestParseNotificationGolden parses every message of the corpus and
// compares the result with its golden file.
func TestParseNotificationGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/notifications/*.eml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			n, err := mail.ParseNotification(bytes.NewReader(raw))
			got := map[string]any{"notification": n}
			if err != nil {
				got = map[string]any{"error": err.Error()}
			}
			out, err := json.MarshalIndent(got, "", "  ")
			require.NoError(t, err)
			out = append(out, '\n')
			golden := strings.TrimSuffix(f, ".eml") + ".golden.json"
			if *updateNotifications {
				require.NoError(t, os.WriteFile(golden, out, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./dispatch/mail -update-notifications")
			require.Equal(t, string(want), string(out))
		})
	}
}

// TestParseNotification checks what correlation and the acknowledgements
// rely on, for the kinds of message the mailbox receives.
func TestParseNotification(t *testing.T) {
	t.Parallel()
	parse := func(name string) *mail.Notification {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join("testdata", "notifications", name))
		require.NoError(t, err)
		n, err := mail.ParseNotification(bytes.NewReader(raw))
		require.NoError(t, err, name)
		return n
	}
	const sent = "3f2a9c1e5b7d4e8fa0b1c2d3e4f50617@ch-demo.mssante.fr"

	n := parse("postfix-like-success.eml")
	require.Equal(t, mail.KindDSN, n.Kind)
	require.Equal(t, "mssdispatch-17", n.EnvelopeID)
	require.Equal(t, sent, n.OriginalMessageID, "from the returned headers")
	require.Len(t, n.Recipients, 1)
	require.Equal(t, mail.RecipientStatus{FinalRecipient: "claire.dupont-demo@medecin-demo.mssante.fr",
		OriginalRecipient: "claire.dupont-demo@medecin-demo.mssante.fr", Action: "delivered", Status: "2.0.0",
		DiagnosticCode: "smtp; 250 2.0.0 Ok: queued as 9F8E7D6C5B", RemoteMTA: "mx.medecin-demo.mssante.fr"}, n.Recipients[0])

	n = parse("postfix-like-failure.eml")
	require.Equal(t, "failed", n.Recipients[0].Action)
	require.Equal(t, "5.1.1", n.Recipients[0].Status)
	require.Contains(t, n.Recipients[0].DiagnosticCode, "User unknown in virtual mailbox table", "a folded field")
	require.False(t, n.Recipients[0].LastAttempt.IsZero())

	require.Equal(t, "delayed", parse("postfix-like-delayed.eml").Recipients[0].Action)

	n = parse("no-report-type-uppercase.eml")
	require.Equal(t, mail.KindDSN, n.Kind, "no report-type, upper case")
	require.Equal(t, "mssdispatch-20", n.EnvelopeID)
	require.Equal(t, mail.RecipientStatus{FinalRecipient: "dr.absent@medecin-demo.mssante.fr", Action: "failed", Status: "5.2.1"}, n.Recipients[0])

	var actions []string
	for _, r := range parse("three-recipients.eml").Recipients {
		actions = append(actions, r.Action)
	}
	require.Equal(t, []string{"delivered", "failed", "relayed"}, actions)

	n = parse("exchange-ndr.eml")
	require.Equal(t, mail.KindDSN, n.Kind)
	require.Equal(t, sent, n.OriginalMessageID, "from the returned message")
	require.Equal(t, "5.4.1", n.Recipients[0].Status)

	n = parse("plain-bounce.eml")
	require.Equal(t, mail.KindDSN, n.Kind, "the fields in a plain text bounce")
	require.Equal(t, []string{sent}, n.InReplyTo)

	n = parse("mssante-mdn-processed.eml")
	require.Equal(t, mail.KindMDN, n.Kind)
	require.Equal(t, sent, n.OriginalMessageID)
	require.Equal(t, &mail.Disposition{ActionMode: "automatic-action", SendingMode: "MDN-sent-automatically", Type: "processed",
		FinalRecipient: "claire.dupont-demo@medecin-demo.mssante.fr"}, n.Disposition)
	require.Equal(t, "Accusé de lecture", n.Subject)

	d := parse("mssante-mdn-error-902.eml").Disposition
	require.Equal(t, "processed", d.Type)
	require.Equal(t, "902", d.ErrorCode)
	require.Equal(t, "Patient inconnu", d.ErrorLabel)

	n = parse("mdn-displayed-lowercase-error.eml")
	require.Equal(t, "displayed", n.Disposition.Type)
	require.Equal(t, "aa11bb22@ch-demo.mssante.fr", n.OriginalMessageID)

	d = parse("mdn-error-field.eml").Disposition
	require.Equal(t, []string{"error"}, d.Modifiers)
	require.Equal(t, "904", d.ErrorCode)
	require.Equal(t, "INS discordant", d.ErrorLabel)

	n = parse("human-reply.eml")
	require.Equal(t, mail.KindReply, n.Kind)
	require.Equal(t, []string{"first@ch-demo.mssante.fr", sent}, n.References)

	require.Equal(t, mail.KindUnknown, parse("newsletter.eml").Kind)
}

func TestParseNotificationErrors(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/notifications/truncated.eml")
	require.NoError(t, err)
	_, err = mail.ParseNotification(bytes.NewReader(raw))
	require.ErrorIs(t, err, mail.ErrNotification, "a message cut in the middle")

	_, err = mail.ParseNotification(strings.NewReader(
		"Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n--b--\r\n"))
	require.ErrorContains(t, err, "without any recipient")

	_, err = mail.ParseNotification(strings.NewReader(
		"Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\nContent-Type: message/disposition-notification\r\n\r\nFinal-Recipient: rfc822;x@y\r\n--b--\r\n"))
	require.ErrorContains(t, err, "without Disposition")

	_, err = mail.ParseNotification(bytes.NewReader(make([]byte, mail.MaxNotificationSize+1)))
	require.ErrorContains(t, err, "larger than")

	var deep strings.Builder
	for i := range 20 {
		fmt.Fprintf(&deep, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	_, err = mail.ParseNotification(strings.NewReader(deep.String()))
	require.ErrorContains(t, err, "nested deeper")
}

// FuzzParseNotification checks that any input is classified or refused, never a panic.
func FuzzParseNotification(f *testing.F) {
	files, err := filepath.Glob("testdata/notifications/*.eml")
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
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := mail.ParseNotification(bytes.NewReader(data))
		if err != nil {
			if n != nil {
				t.Fatal("a notification with an error")
			}
			return
		}
		switch n.Kind {
		case mail.KindDSN:
			if len(n.Recipients) == 0 {
				t.Fatal("a DSN without recipients")
			}
		case mail.KindMDN:
			if n.Disposition == nil {
				t.Fatal("an MDN without disposition")
			}
		case mail.KindReply, mail.KindUnknown:
		default:
			t.Fatalf("kind %q", n.Kind)
		}
	})
}
