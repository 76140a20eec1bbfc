package dispatch_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/worker"
	"github.com/mssdispatch/mssdispatch/internal/mailtest"
)

var update = flag.Bool("update", false, "rewrite testdata/email/*.golden")

// address returns the single address of the address-list field name of e.
func address(t *testing.T, e mailtest.Email, name string) string {
	t.Helper()
	list := e.Addresses(t, name)
	require.Len(t, list, 1, name)
	return list[0]
}

// readOutbox parses every .eml of dir, by recipient.
func readOutbox(t *testing.T, dir string) map[string]mailtest.Email {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	require.NoError(t, err)
	out := map[string]mailtest.Email{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		e := mailtest.Parse(t, raw)
		to := address(t, e, "To")
		require.NotContains(t, out, to, "one email per recipient")
		out[to] = e
	}
	return out
}

// requireXDM checks IHE_XDM.ZIP: README.TXT, INDEX.HTM, the subset's
// METADATA.XML, and the CDA byte for byte in IHE_XDM/SUBSET01/.
func requireXDM(t *testing.T, xdm, cdaDoc []byte) {
	t.Helper()
	files, _ := mailtest.Unzip(t, xdm)
	require.Contains(t, files, "README.TXT")
	require.Contains(t, files, "INDEX.HTM")
	require.Contains(t, files, "IHE_XDM/SUBSET01/METADATA.XML")
	found := false
	for name, data := range files {
		if strings.HasPrefix(name, "IHE_XDM/SUBSET01/") && name != "IHE_XDM/SUBSET01/METADATA.XML" && bytes.Equal(data, cdaDoc) {
			found = true
		}
	}
	require.True(t, found, "the CDA is in IHE_XDM/SUBSET01/ byte for byte; files: %v", keys(files))
}

// xdmMetadata returns the METADATA.XML of an IHE_XDM.ZIP.
func xdmMetadata(t *testing.T, xdm []byte) string {
	t.Helper()
	files, _ := mailtest.Unzip(t, xdm)
	return string(files["IHE_XDM/SUBSET01/METADATA.XML"])
}

// actionSlot matches the XDM extra metadata "action" (CI-SIS) and its value.
var actionSlot = regexp.MustCompile(`name="urn:asip:ci-sis:2010:action">\s*<rim:ValueList>\s*<rim:Value>([A-Z])</rim:Value>`)

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// messageID is the Message-ID the service gave the delivery to address in report.
func (b *testBundle) messageID(t *testing.T, reportID int64, address string) string {
	t.Helper()
	return b.env.MessageID(t, reportID, address)
}

const (
	claire = "claire.dupont-demo@medecin-demo.mssante.fr"
	julie  = "julie.roux@medecin-demo.mssante.fr"
)

func TestEmailToProfessionals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	outbox, err := mail.NewOutbox(dir)
	require.NoError(t, err)
	b := setup(t, outbox, func(c *worker.WorkerConfig) { c.NIL = "mssdispatch-test/1.0" })

	report := testReport(t)
	report.ReplyTo = "secretariat.cardio@ch-demo.mssante.fr"
	report.Flags = dispatch.Flags{Present: true, ToProfessionals: true, ReadAck: true}
	rc := b.receive(t, report)
	b.waitDeliveries(t, rc.ReportID, 4)

	emails := readOutbox(t, dir)
	require.Len(t, emails, 2)
	for _, to := range []string{claire, julie} {
		e := emails[to]
		require.NotNil(t, e.Raw, to)
		require.Equal(t, sender, address(t, e, "From"))
		require.Equal(t, to, address(t, e, "To"))
		require.Equal(t, report.ReplyTo, address(t, e, "Reply-To"))
		subject, err := e.Header.Subject()
		require.NoError(t, err)
		require.Equal(t, "XDM/1.0/DDM+Lettre de liaison de sortie DUPONT Marie 15/01/1980", subject)
		id, err := e.Header.MessageID()
		require.NoError(t, err)
		require.Equal(t, b.messageID(t, rc.ReportID, to), id)
		require.Equal(t, "mssdispatch-test/1.0", e.Header.Get("X-MSS-NIL"))
		require.Equal(t, "11490-0", e.Header.Get("X-MSS-CODECDA"))
		require.Equal(t, "N", e.Header.Get("X-MSS-INS"), "the INS is not qualified")
		require.False(t, e.Header.Has("X-MSS-MES"), "not to a patient")
		require.Equal(t, "<"+sender+">", e.Header.Get("Disposition-Notification-To"))

		require.Contains(t, e.Body, "Veuillez trouver ci-joint le document « Lettre de liaison de sortie »")
		require.Equal(t, []string{"IHE_XDM.ZIP", "Lettre_de_liaison_de_sortie.pdf"}, e.Names)
		requireXDM(t, e.Attachments["IHE_XDM.ZIP"], report.Document.CDA)
		metadata := xdmMetadata(t, e.Attachments["IHE_XDM.ZIP"])
		require.Contains(t, metadata, worker.DemoSourceID, "sourceId")
		require.Contains(t, metadata, "^^Internet^"+to, "intendedRecipient: this delivery's recipient only")
		require.NotContains(t, metadata, "^^Internet^"+map[string]string{claire: julie, julie: claire}[to])
		require.Nil(t, actionSlot.FindStringSubmatch(metadata), "no action for a new document")
		require.Equal(t, report.Document.PDF, e.Attachments["Lettre_de_liaison_de_sortie.pdf"])
	}
	requireGoldenHeaders(t, "n1-headers.golden", emails[claire])
}

// requireGoldenHeaders compares e's header, without Date and with its
// Message-ID and MIME boundary replaced, to testdata/email/name.
func requireGoldenHeaders(t *testing.T, name string, e mailtest.Email) {
	t.Helper()
	head, _, ok := bytes.Cut(e.Raw, []byte("\r\n\r\n"))
	require.True(t, ok)
	id, err := e.Header.MessageID()
	require.NoError(t, err)
	var lines []string
	for line := range strings.SplitSeq(string(head), "\r\n") {
		if strings.HasPrefix(line, "Date:") {
			continue
		}
		line = strings.ReplaceAll(line, id, "MESSAGE-ID")
		line = boundary.ReplaceAllString(line, "boundary=BOUNDARY")
		lines = append(lines, line)
	}
	got := strings.Join(lines, "\n") + "\n"
	path := filepath.Join("testdata", "email", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./dispatch -run %s -update to create it", t.Name())
	require.Equal(t, string(want), got)
}

var boundary = regexp.MustCompile(`boundary=("[^"]*"|[^;\s]+)`)

// TestEmailGoldenPerDocumentShape sends one email for each structured CDA
// shape of the ANS examples (CR-BIO N3 with an embedded PDF, lettre de
// liaison LDL-SES N3) and compares its header with a golden file; the
// document non structuré N1 is TestEmailToProfessionals' n1-headers.golden.
func TestEmailGoldenPerDocumentShape(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		file, golden string
		qualified    bool
		attachments  []string
	}{
		{file: "n3-pdf-media.xml", golden: "cr-bio-pdf-headers.golden", qualified: true,
			attachments: []string{"IHE_XDM.ZIP", "Compte_rendu_d_examens_biologiques.pdf"}},
		{file: "ldl-ses-n3.xml", golden: "ldl-ses-n3-headers.golden", qualified: true, attachments: []string{"IHE_XDM.ZIP"}},
	} {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			outbox, err := mail.NewOutbox(dir)
			require.NoError(t, err)
			b := setup(t, outbox)

			doc, err := os.ReadFile(filepath.Join("..", "cda", "testdata", c.file))
			require.NoError(t, err)
			h, err := cda.Parse(doc)
			require.NoError(t, err)
			var pdf []byte
			if h.HasPDF {
				pdf, err = cda.ExtractPDF(doc)
				require.NoError(t, err)
			}
			ins, oid, _ := h.Patient.INS()
			report := dispatch.Report{
				Action: dispatch.ActionNew, Flags: dispatch.DefaultFlags,
				Patient: dispatch.Patient{Family: h.Patient.Family, Given: h.Patient.Given, BirthDate: h.Patient.BirthDate,
					Sex: h.Patient.Sex, INS: ins, INSOID: oid, INSQualified: c.qualified},
				Document:   dispatch.Document{ID: h.UniqueID(), Code: h.Code.Code, Title: h.Title, CDA: doc, PDF: pdf},
				Recipients: []dispatch.Recipient{{Role: "RCT", Kind: dispatch.KindProfessional, NationalID: "899900000002", RPPS: "99900000002"}},
			}
			b.waitDeliveries(t, b.receive(t, report).ReportID, 2) // the email and Claire's paper copy
			emails := readOutbox(t, dir)
			require.Len(t, emails, 1)
			e := emails[claire]
			require.Equal(t, c.attachments, e.Names)
			requireXDM(t, e.Attachments["IHE_XDM.ZIP"], doc)
			if pdf != nil {
				require.Equal(t, pdf, e.Attachments[c.attachments[1]], "the PDF byte for byte")
			}
			requireGoldenHeaders(t, c.golden, e)
		})
	}
}

func TestEmailToPatient(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	outbox, err := mail.NewOutbox(dir)
	require.NoError(t, err)
	b := setup(t, outbox, func(c *worker.WorkerConfig) { c.PatientNoReply = true })

	report := testReport(t)
	report.Patient.INSQualified = true
	report.Flags = dispatch.Flags{Present: true, ToProfessionals: true, ToPatient: true}
	report.BodyProfessional = "Cher confrère,\nVoici la lettre de sortie de notre patiente.\n"
	report.BodyPatient = "Madame,\nVoici votre lettre de sortie."
	rc := b.receive(t, report)
	b.waitDeliveries(t, rc.ReportID, 5)

	emails := readOutbox(t, dir)
	require.Len(t, emails, 3)
	patient := report.Patient.INS + "@" + correspondents.PatientMailDomain
	for to, e := range emails {
		require.Equal(t, "O", e.Header.Get("X-MSS-INS"), "qualified INS")
		require.Equal(t, worker.DefaultNIL, e.Header.Get("X-MSS-NIL"))
		require.False(t, e.Header.Has("Reply-To"), "no PRT REPLY")
		require.False(t, e.Header.Has("Disposition-Notification-To"), "no ACK_LECTURE_MSS")
		requireXDM(t, e.Attachments["IHE_XDM.ZIP"], report.Document.CDA)
		if to == patient {
			require.Equal(t, "FIN", e.Header.Get("X-MSS-MES"))
			require.Equal(t, "Madame,\r\nVoici votre lettre de sortie.\r\n", e.Body)
		} else {
			require.False(t, e.Header.Has("X-MSS-MES"), to)
			require.Equal(t, "Cher confrère,\r\nVoici la lettre de sortie de notre patiente.\r\n", e.Body)
		}
	}
	require.Contains(t, emails, patient)
}

func TestEmailReplaceAndDelete(t *testing.T) {
	t.Parallel()
	b, dir := setupOutbox(t)

	first := testReport(t)
	b.waitDeliveries(t, b.receive(t, first).ReportID, 4)
	clean(t, dir)

	// A replacement: the default "annule et remplace" text, the new CDA.
	replaced := testReport(t)
	replaced.Action = dispatch.ActionReplace
	replaced.Document.ParentID = first.Document.ID
	replaced.Document.CDA = bytes.Replace(first.Document.CDA, []byte("Lettre de liaison de sortie</title>"),
		[]byte("Lettre de liaison de sortie</title><!-- v2 -->"), 1)
	setDocumentID(t, &replaced, first.Document.ID+"-v2")
	rc := b.receive(t, replaced)
	b.waitDeliveries(t, rc.ReportID, 4)
	emails := readOutbox(t, dir)
	require.Len(t, emails, 2)
	for to, e := range emails {
		require.Contains(t, e.Body, "annule et remplace", to)
		requireXDM(t, e.Attachments["IHE_XDM.ZIP"], replaced.Document.CDA)
		m := actionSlot.FindStringSubmatch(xdmMetadata(t, e.Attachments["IHE_XDM.ZIP"]))
		require.NotNil(t, m, "action slot")
		require.Equal(t, "C", m[1], "a replacement")
		require.Equal(t, "11490-0", e.Header.Get("X-MSS-CODECDA"))
	}

	// A deletion without its CDA: no attachment, no CDA header, the deletion text.
	clean(t, dir)
	deleted := dispatch.Report{Action: dispatch.ActionDelete, Flags: dispatch.DefaultFlags, Patient: first.Patient,
		Document: dispatch.Document{ID: replaced.Document.ID, Code: "11490-0", Title: "Lettre de liaison de sortie"}}
	rc = b.receive(t, deleted)
	b.waitDeliveries(t, rc.ReportID, 2)
	emails = readOutbox(t, dir)
	require.Len(t, emails, 2)
	for to, e := range emails {
		require.Empty(t, e.Attachments, to)
		require.Contains(t, e.Body, "est annulé : merci de ne plus en tenir compte")
		require.Equal(t, worker.DefaultNIL, e.Header.Get("X-MSS-NIL"))
		require.False(t, e.Header.Has("X-MSS-CODECDA"))
		require.False(t, e.Header.Has("X-MSS-INS"))
	}
}

func mustGlob(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	require.NoError(t, err)
	return files
}

func clean(t *testing.T, dir string) {
	t.Helper()
	for _, f := range mustGlob(t, dir) {
		require.NoError(t, os.Remove(f))
	}
}

func TestEmailOversize(t *testing.T) {
	t.Parallel()
	b, dir := setupOutbox(t)

	// An 11 MB PDF given with the CDA (a big CDA makes the test slow under
	// -race without testing more).
	report := testReport(t)
	report.Document.PDF = make([]byte, 11<<20)
	copy(report.Document.PDF, "%PDF-1.4\n")
	for _, lastError := range b.emailsFailed(t, b.receive(t, report).ReportID, dir) {
		require.Contains(t, lastError, "over the MSSanté limit of 10 MB")
		require.Contains(t, lastError, "au-delà de la limite MSSanté de 10 Mo")
	}
}

// TestEmailUnpackable sends a report whose CDA the service accepted but
// cannot package: its recordTarget has no patient identifier, which
// IHE_XDM.ZIP needs. Its emails fail for good, recorded as the oversize
// ones of TestEmailOversize are (a *mail.PermanentError): the deliveries
// failed with the reason, a "failed" event saying it, the jobs cancelled,
// the fallback applied, nothing sent.
func TestEmailUnpackable(t *testing.T) {
	t.Parallel()
	b, dir := setupOutbox(t)
	report := testReport(t)
	for _, id := range []string{`<id root="1.2.250.1.213.1.4.10" extension="280017512345678"/>`, `<id root="1.2.250.1.999.42.1.1" extension="IPP0012345"/>`} {
		require.Equal(t, 1, bytes.Count(report.Document.CDA, []byte(id)), id)
		report.Document.CDA = bytes.Replace(report.Document.CDA, []byte(id), nil, 1)
	}
	for _, lastError := range b.emailsFailed(t, b.receive(t, report).ReportID, dir) {
		require.Regexp(t, `^delivery \d+: document cannot be packaged: IHE_XDM.ZIP: cda: XDM: no patient identifier`, lastError)
	}
}

// emailsFailed waits until the test report's emails to Claire and Julie
// have failed for good, as a permanent failure is recorded: Claire's paper
// copy and Julie's paper fallback, both emails failed with a "failed" event
// whose detail is their last error, their jobs cancelled, nothing in the
// outbox dir. It returns the last errors.
func (b *testBundle) emailsFailed(t *testing.T, reportID int64, dir string) []string {
	t.Helper()
	b.statusIs(t, reportID, "Julie ROUX", "paper", dispatch.StatusPaperPending)
	b.waitDeliveries(t, reportID, 5)
	var lastErrors []string
	for _, to := range []string{claire, julie} {
		require.Equal(t, dispatch.StatusFailed, deliveryStatus(t, b, to))
		require.Eventually(t, func() bool { return sendJobState(t, b, to) == rivertype.JobStateCancelled },
			10*time.Second, 50*time.Millisecond)
		var id int64
		var lastError, detail string
		require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT id, last_error FROM deliveries WHERE address = $1", to).Scan(&id, &lastError))
		require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT detail FROM delivery_events WHERE delivery_id = $1 AND event = $2`,
			id, dispatch.EventFailed).Scan(&detail))
		require.Equal(t, lastError, detail)
		lastErrors = append(lastErrors, lastError)
	}
	require.Empty(t, mustGlob(t, dir))
	return lastErrors
}
