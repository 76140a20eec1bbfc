package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	dmail "github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/internal/mailtest"
	"github.com/mssdispatch/mssdispatch/internal/smtptest"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

// TestTrustSpaceEndToEnd: a report whose DPI gives an address outside the
// MSSanté trust space, approved by a secretary through the dashboard's real
// form, never produces an email to that address; nor does an address the
// whitelist drops between resolution and sending. Over both transports. It
// caught, before the fix, the approval sending to the DPI's address.
func TestTrustSpaceEndToEnd(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"outbox", "smtp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			dbURL := demoDatabase(t)
			cfg := serveConfig{DatabaseURL: dbURL, Transport: transport}
			// recipients lists the envelope recipients of the emails sent so far.
			var recipients func() []string
			switch transport {
			case "outbox":
				cfg.OutboxDir = t.TempDir()
				recipients = func() []string {
					var to []string
					for _, e := range mailtest.ReadDir(t, cfg.OutboxDir) {
						to = append(to, e.Addresses(t, "To")...)
					}
					return to
				}
			case "smtp":
				srv := smtptest.Start(t, smtptest.Options{})
				cfg.SMTP = dmail.SMTPConfig{Addr: srv.Addr, TLS: dmail.TLSStartTLS, CAFile: srv.CA.File}
				recipients = func() []string {
					var to []string
					for _, m := range srv.Messages() {
						to = append(to, m.To...)
					}
					return to
				}
			}
			r := start(t, cfg)
			e := mapEnv(map[string]string{"MSSDISPATCH_DATABASE_URL": dbURL})
			password := filepath.Join(t.TempDir(), "password")
			require.NoError(t, os.WriteFile(password, []byte("correct horse battery\n"), 0o600))
			runOK(t, e, "user", "add", "alice", "--role", "secretary", "--password-file", password)
			alice := webtest.New(t, "http://"+r.httpAddr)
			alice.Login(t, "alice", "correct horse battery")

			// Julie ROUX's address from the DPI is outside the trust space, and
			// a second correspondent's carries a CRLF and a Bcc.
			msg, documentID, err := sampleReport(time.Now())
			require.NoError(t, err)
			msg = bytes.Replace(msg, []byte("julie.roux@medecin-demo.mssante.fr"), []byte("julie.roux@attacker.example"), 1)
			msg = bytes.Replace(msg, []byte("\rOBR|"), []byte("\rPRT||UC||RCT^Result Copies To^participation||||"+
				"Cabinet hors espace|||||||^NET^X.400^secretariat@cabinet.example\\X0D0A\\bcc:evil@attacker.example\rOBR|"), 1)
			ack := sendMLLP(t, r.mllpAddr, msg)
			require.Equal(t, "AA", ack.Segment("MSA").Get(1), "%s", ack.Encode())
			require.Contains(t, string(ack.Encode()), "adresse de messagerie invalide")
			julie := waitDelivery(t, r.httpAddr, documentID, "julie.roux@medecin-demo.mssante.fr", dispatch.StatusReview)
			require.Equal(t, correspondents.ReasonUntrustedAddress, julie.Reason)

			// The secretary approves Julie's row with the report page's form:
			// the email goes to the directory's address, which the page shows.
			status, page := alice.Get(t, fmt.Sprintf("/reports/%d", julie.reportID))
			require.Equal(t, http.StatusOK, status)
			approve := fmt.Sprintf("/deliveries/%d/approve", julie.ID)
			require.Contains(t, page, `action="`+approve+`"`)
			status, _ = alice.Post(t, approve, nil)
			require.Equal(t, http.StatusSeeOther, status)
			waitDelivery(t, r.httpAddr, documentID, "julie.roux@medecin-demo.mssante.fr", dispatch.StatusSent)
			waitDelivery(t, r.httpAddr, documentID, "claire.dupont-demo@medecin-demo.mssante.fr", dispatch.StatusSent)
			sent := recipients()
			require.ElementsMatch(t, []string{"claire.dupont-demo@medecin-demo.mssante.fr", "julie.roux@medecin-demo.mssante.fr"}, sent,
				"Claire's trusted address, and the directory's address Julie's row was approved to")

			// The CME delays every email by an hour; meanwhile the whitelist
			// drops medecin-demo.mssante.fr: when the hour is up, nothing goes,
			// and both emails are back in review, unapprovable as they are.
			rules := filepath.Join(t.TempDir(), "rules.yaml")
			require.NoError(t, os.WriteFile(rules, []byte("rules:\n  - name: Délai\n    action:\n      send: delay\n      delay_hours: 1\n"), 0o600))
			runOK(t, e, "rules", "import", rules)
			msg, later, err := sampleReport(time.Now())
			require.NoError(t, err)
			require.Equal(t, "AA", sendMLLP(t, r.mllpAddr, msg).Segment("MSA").Get(1))
			waitDelivery(t, r.httpAddr, later, "claire.dupont-demo@medecin-demo.mssante.fr", dispatch.StatusScheduled)
			waitDelivery(t, r.httpAddr, later, "julie.roux@medecin-demo.mssante.fr", dispatch.StatusScheduled)
			whitelist, err := os.ReadFile("../../testdata/demo/liste_blanche.xml")
			require.NoError(t, err)
			whitelist = regexp.MustCompile(`(?s)<Domaine>\s*<Nom>medecin-demo\.mssante\.fr</Nom>.*?</Domaine>`).ReplaceAll(whitelist, nil)
			dropped := filepath.Join(t.TempDir(), "liste_blanche.xml")
			require.NoError(t, os.WriteFile(dropped, whitelist, 0o600))
			runOK(t, e, "whitelist", "import", dropped)
			hourLater(t, dbURL)
			var unsent []trackedDelivery
			for _, name := range []string{"Claire DUPONT-DEMO", "Julie ROUX"} {
				unsent = append(unsent, waitDelivery(t, r.httpAddr, later, name, dispatch.StatusReview))
			}
			_, worklist := alice.Get(t, "/worklists/review")
			for _, d := range unsent {
				name := d.Recipient
				require.Equal(t, correspondents.ReasonUntrustedAddress, d.Reason, name)
				_, page := alice.Get(t, fmt.Sprintf("/reports/%d", d.reportID))
				approve := fmt.Sprintf(`action="/deliveries/%d/approve"`, d.ID)
				require.NotContains(t, page, approve, name)
				require.Contains(t, page, fmt.Sprintf(`action="/deliveries/%d/paper"`, d.ID), name)
				require.Contains(t, worklist, fmt.Sprintf(`id="row-%d"`, d.ID), name)
				require.NotContains(t, worklist, approve, name)
			}

			require.ElementsMatch(t, sent, recipients(), "nothing sent after the whitelist change")
		})
	}
}

// trackedDelivery is a delivery of the report API, with its report.
type trackedDelivery struct {
	readmodel.DeliveryView
	reportID int64
}

// waitDelivery waits until the report of documentID has an email to
// recipient (address, or name once the address is withdrawn) in status.
func waitDelivery(t *testing.T, httpAddr, documentID, recipient string, status dispatch.Status) trackedDelivery {
	t.Helper()
	var found trackedDelivery
	require.Eventually(t, func() bool {
		v := getReport(t, httpAddr, documentID)
		for _, d := range v.Deliveries {
			if d.Channel == "mssante" && d.Recipient == recipient && d.Status == status {
				found = trackedDelivery{DeliveryView: d, reportID: v.ID}
				return true
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, "%s to %s", status, recipient)
	return found
}

// hourLater makes the jobs scheduled within the hour due now, as if the
// hour had passed.
func hourLater(t *testing.T, dbURL string) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	defer pool.Close()
	client := jobsClient(t, pool)
	for _, j := range listJobs(t, pool, river.NewJobListParams().States(rivertype.JobStateScheduled)) {
		if j.ScheduledAt.Before(time.Now().Add(61 * time.Minute)) {
			_, err := client.JobRetry(context.Background(), j.ID)
			require.NoError(t, err)
		}
	}
}
