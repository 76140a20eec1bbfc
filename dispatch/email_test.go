package dispatch_test

import (
	"archive/zip"
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
)

var updateEmail = flag.Bool("update-email", false, "rewrite testdata/email/*.golden")

// sentEmail is an .eml the outbox received, parsed.
type sentEmail struct {
	raw         []byte
	header      gomail.Header
	body        string
	attachments map[string][]byte
	names       []string // attachment names in order
}

func (e sentEmail) get(t *testing.T, name string) string {
	t.Helper()
	return e.header.Get(name)
}

// address returns the single address of an address-list header.
func (e sentEmail) address(t *testing.T, name string) string {
	t.Helper()
	list, err := e.header.AddressList(name)
	require.NoError(t, err)
	require.Len(t, list, 1, name)
	return list[0].Address
}

// readOutbox parses every .eml of dir, by recipient.
func readOutbox(t *testing.T, dir string) map[string]sentEmail {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	require.NoError(t, err)
	out := map[string]sentEmail{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		e := parseEmail(t, raw)
		to := e.address(t, "To")
		require.NotContains(t, out, to, "one email per recipient")
		out[to] = e
	}
	return out
}

func parseEmail(t *testing.T, raw []byte) sentEmail {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	require.NoError(t, err)
	e := sentEmail{raw: raw, header: r.Header, attachments: map[string][]byte{}}
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		data, err := io.ReadAll(p.Body)
		require.NoError(t, err)
		switch h := p.Header.(type) {
		case *gomail.InlineHeader:
			e.body = string(data)
		case *gomail.AttachmentHeader:
			name, err := h.Filename()
			require.NoError(t, err)
			e.attachments[name] = data
			e.names = append(e.names, name)
		}
	}
	return e
}

// unzip returns the files of a zip archive by name.
func unzip(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		files[f.Name] = b
	}
	return files
}

// requireXDM checks IHE_XDM.ZIP: README.TXT, INDEX.HTM, the subset's
// METADATA.XML, and the CDA byte for byte in IHE_XDM/SUBSET01/.
func requireXDM(t *testing.T, xdm, cdaDoc []byte) {
	t.Helper()
	files := unzip(t, xdm)
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
	return string(unzip(t, xdm)["IHE_XDM/SUBSET01/METADATA.XML"])
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
	var id string
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT message_id FROM deliveries WHERE report_id = $1 AND address = $2",
		reportID, address).Scan(&id))
	return id
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
	b := setup(t, outbox, func(c *dispatch.WorkerConfig) { c.NIL = "mssdispatch-test/1.0" })

	report := testReport(t)
	report.ReplyTo = "secretariat.cardio@ch-demo.mssante.fr"
	report.Flags = dispatch.Flags{Present: true, ToProfessionals: true, ReadAck: true}
	rc := b.receive(t, report)
	b.waitDeliveries(t, rc.ReportID, 4)

	emails := readOutbox(t, dir)
	require.Len(t, emails, 2)
	for _, to := range []string{claire, julie} {
		e := emails[to]
		require.NotNil(t, e.raw, to)
		require.Equal(t, sender, e.address(t, "From"))
		require.Equal(t, to, e.address(t, "To"))
		require.Equal(t, report.ReplyTo, e.address(t, "Reply-To"))
		subject, err := e.header.Subject()
		require.NoError(t, err)
		require.Equal(t, "XDM/1.0/DDM+Lettre de liaison de sortie DUPONT Marie 15/01/1980", subject)
		id, err := e.header.MessageID()
		require.NoError(t, err)
		require.Equal(t, b.messageID(t, rc.ReportID, to), id)
		require.Equal(t, "mssdispatch-test/1.0", e.get(t, "X-MSS-NIL"))
		require.Equal(t, "11490-0", e.get(t, "X-MSS-CODECDA"))
		require.Equal(t, "N", e.get(t, "X-MSS-INS"), "the INS is not qualified")
		require.False(t, e.header.Has("X-MSS-MES"), "not to a patient")
		require.Equal(t, "<"+sender+">", e.get(t, "Disposition-Notification-To"))

		require.Contains(t, e.body, "Veuillez trouver ci-joint le document « Lettre de liaison de sortie »")
		require.Equal(t, []string{"IHE_XDM.ZIP", "Lettre_de_liaison_de_sortie.pdf"}, e.names)
		requireXDM(t, e.attachments["IHE_XDM.ZIP"], report.Document.CDA)
		metadata := xdmMetadata(t, e.attachments["IHE_XDM.ZIP"])
		require.Contains(t, metadata, dispatch.DemoSourceID, "sourceId")
		require.Contains(t, metadata, "^^Internet^"+to, "intendedRecipient: this delivery's recipient only")
		require.NotContains(t, metadata, "^^Internet^"+map[string]string{claire: julie, julie: claire}[to])
		require.Nil(t, actionSlot.FindStringSubmatch(metadata), "no action for a new document")
		require.Equal(t, report.Document.PDF, e.attachments["Lettre_de_liaison_de_sortie.pdf"])
	}
	requireGoldenHeaders(t, "n1-headers.golden", emails[claire])
}

// requireGoldenHeaders compares e's header, without Date and with its
// Message-ID and MIME boundary replaced, to testdata/email/name.
func requireGoldenHeaders(t *testing.T, name string, e sentEmail) {
	t.Helper()
	head, _, ok := bytes.Cut(e.raw, []byte("\r\n\r\n"))
	require.True(t, ok)
	id, err := e.header.MessageID()
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
	if *updateEmail {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update-email to create it")
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
			require.Equal(t, c.attachments, e.names)
			requireXDM(t, e.attachments["IHE_XDM.ZIP"], doc)
			if pdf != nil {
				require.Equal(t, pdf, e.attachments[c.attachments[1]], "the PDF byte for byte")
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
	b := setup(t, outbox, func(c *dispatch.WorkerConfig) { c.PatientNoReply = true })

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
		require.Equal(t, "O", e.get(t, "X-MSS-INS"), "qualified INS")
		require.Equal(t, dispatch.DefaultNIL, e.get(t, "X-MSS-NIL"))
		require.False(t, e.header.Has("Reply-To"), "no PRT REPLY")
		require.False(t, e.header.Has("Disposition-Notification-To"), "no ACK_LECTURE_MSS")
		requireXDM(t, e.attachments["IHE_XDM.ZIP"], report.Document.CDA)
		if to == patient {
			require.Equal(t, "FIN", e.get(t, "X-MSS-MES"))
			require.Equal(t, "Madame,\r\nVoici votre lettre de sortie.\r\n", e.body)
		} else {
			require.False(t, e.header.Has("X-MSS-MES"), to)
			require.Equal(t, "Cher confrère,\r\nVoici la lettre de sortie de notre patiente.\r\n", e.body)
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
		require.Contains(t, e.body, "annule et remplace", to)
		requireXDM(t, e.attachments["IHE_XDM.ZIP"], replaced.Document.CDA)
		m := actionSlot.FindStringSubmatch(xdmMetadata(t, e.attachments["IHE_XDM.ZIP"]))
		require.NotNil(t, m, "action slot")
		require.Equal(t, "C", m[1], "a replacement")
		require.Equal(t, "11490-0", e.get(t, "X-MSS-CODECDA"))
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
		require.Empty(t, e.attachments, to)
		require.Contains(t, e.body, "est annulé : merci de ne plus en tenir compte")
		require.Equal(t, dispatch.DefaultNIL, e.get(t, "X-MSS-NIL"))
		require.False(t, e.header.Has("X-MSS-CODECDA"))
		require.False(t, e.header.Has("X-MSS-INS"))
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
	rc := b.receive(t, report)
	// Claire's paper copy, and Julie's paper fallback once her email failed.
	b.statusIs(t, rc.ReportID, "Julie ROUX", "paper", dispatch.StatusPaperPending)
	b.waitDeliveries(t, rc.ReportID, 5)

	for _, to := range []string{claire, julie} {
		require.Equal(t, dispatch.StatusFailed, deliveryStatus(t, b, to))
		require.Eventually(t, func() bool { return sendJobState(t, b, to) == rivertype.JobStateCancelled },
			10*time.Second, 50*time.Millisecond)
		var lastError string
		require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT last_error FROM deliveries WHERE address = $1", to).Scan(&lastError))
		require.Contains(t, lastError, "over the MSSanté limit of 10 MB")
		require.Contains(t, lastError, "au-delà de la limite MSSanté de 10 Mo")
	}
	require.Empty(t, mustGlob(t, dir))
}
