package hl7intake_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/beevik/etree"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/hl7intake"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/quarantine"
	"github.com/mssdispatch/mssdispatch/dispatch/worker"
	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
	"github.com/mssdispatch/mssdispatch/internal/mailtest"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/queue"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

// This file is the conformance suite of the intake against the official
// examples of the ANS volet "Transmission d'un document CDA-R2 en HL7v2",
// version 2.1, in the public repository ansforge/hl7V2-exemples: one test
// per example, with a message of our own in testdata/volet/ that has the
// structure of the official one (its segments in the same order, the same
// fields filled, the same MetaDMPMSS flags, PRT roles, ORC-1, OBR-25,
// OBX-11 and TXA values, the same oddities: LF segment ends, the
// CORPSMAIL_PS one base64 character short of the ORU examples, the
// ^^X.400^ and ^NET^X.400^ telecoms, TXA-12 with a namespace, trailing
// no-break spaces in a PRT-8), our own texts, and our own CDA documents
// (testdata/volet/cda-n1.xml.tmpl and cda-n3.xml.tmpl) for the patient of the
// examples, PAT-TROIS DOMINIQUE. Each test goes through the whole service:
// the HL7 handler, a real dispatch.Service on its own database, the River
// workers, an outbox transport whose emails are read back, and for the
// business acknowledgements a fake DPI listening on MLLP. Our messages
// have each their own MSH-10: the official ones all write 015, and a
// message key (MSH-3, MSH-4, MSH-10) reused for another message is refused
// (AE 205), as HL7 wants MSH-10 unique.

// voletLog discards the logs of the suite.
var voletLog = slog.New(slog.DiscardHandler)

// voletSender is the BAL applicative of the suite.
const voletSender = "bal-pfi@ch-test.mssante.fr"

// The participants of the examples.
const (
	voletHoda         = "adam.hoda@test-ci-sis.mssante.fr" // PRT RCT and PRT REPLY
	voletHodaID       = "801234567897"                     // his national id (8 + RPPS)
	voletPatientBox   = "279035121518989@patient.mssante.fr"
	voletSegurPatient = "27707279035121518989@patient.mssante.fr" // the Ségur example's PRT-15: not the INS's mailbox
	voletPatientXDSID = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"
	voletDiaz         = "801234567866^DIAZ^Thierry^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
	voletLabo         = "labo^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1120459876"
	voletBioSubject   = "XDM/1.0/DDM+Compte rendu de biologie médicale PAT-TROIS DOMINIQUE 28/03/1979"
)

// The official technical acknowledgements (ansforge/hl7V2-exemples, V2.1):
// the ACKs of the service must match them field by field, but for MSH-7,
// MSH-10 and MSA-2 (the message's own MSH-10).
const (
	// Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/Transmission initiale ORU/ack.hl7
	officialACKORU = `MSH|^~\&|PFI-X|Organisation-X|SIL-Y|labo|202106060931||ACK^R01^ACK|016|P|2.5|||||FRA|UNICODE UTF-8
MSA|AA|015`
	// Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/Remplacement ORU/ack.er7 (and
	// Suppression ORU/ack.er7) write MSH-18 8859/15 for a message in
	// UNICODE UTF-8: the service answers in the message's charset, as the
	// ack of the initial transmission does.
	officialACKORUReplace = officialACKORU
	// Vague 2/…/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/MDM/Remplacement MDM/ack.er7
	officialACKMDMT10 = `MSH|^~\&|PFI-Y|Organisation-Y|RIS-Y|Organisation-Y|202106060932||ACK^T10^ACK|016|P|2.6|||||FRA|UNICODE UTF-8
MSA|AA|015`
	// Vague 2/…/MDM/Suppression MDM/ack.er7 writes MSH-3 PFI-X for a message
	// sent to PFI-Y: the service mirrors the message's MSH-5, as the volet's
	// table (profils-messages, "Segment MSH" of the ACK) says.
	officialACKMDMT04 = `MSH|^~\&|PFI-Y|Organisation-Y|RIS-Y|Organisation-Y|202106060932||ACK^T04^ACK|016|P|2.6|||||FRA|UNICODE UTF-8
MSA|AA|015`
	// The MDM initial transmission has no ack example: the T10's, with T02.
	officialACKMDMT02 = `MSH|^~\&|PFI-Y|Organisation-Y|RIS-Y|Organisation-Y|202106060932||ACK^T02^ACK|016|P|2.6|||||FRA|UNICODE UTF-8
MSA|AA|015`
)

// The official business acknowledgements of the ORU N1+N3 initial
// transmission (Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/Transmission initiale
// ORU/): the ZAMs the fake DPI receives must match them field by field, but
// for MSH-7, MSH-10, EVN-2 (times and ids) and the OBX-4 of the first OBX
// (the MSH-10 of the message that carried the documents, 015 there).
const (
	// "Message metier reception MSS"
	officialZAMZ02 = `MSH|^~\&|PFI-X|Organisation-X|SIL-Y|labo|202106060934||ZAM^Z02^ZAM_Z01|018|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2
EVN||20211005152908
OBX|1|CWE|ACK_RECEPTION_MSS^Accusé de réception MSSanté^AckMetierZAM|015|Y^^expandedYes-NoIndicator||||||F|
OBX|2|XTN|DESTINATAIRE_MSS^Destinataire MSSanté^AckMetierZAM|801234567897|^^X.400^adam.hoda@test-ci-sis.mssante.fr||||||F|`
	// "Message metier lecture MSS"
	officialZAMZ03 = `MSH|^~\&|PFI-X|Organisation-X|SIL-Y|labo|202106070933||ZAM^Z03^ZAM_Z01|019|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2
EVN||20211005152908
OBX|1|CWE|ACK_LECTURE_MSS^Accusé de lecture^AckMetierZAM|015|Y^^expandedYes-NoIndicator||||||F|
OBX|2|XTN|LECTEUR_MSS^Lecteur du courriel MSSanté^AckMetierZAM|801234567897|^^X.400^adam.hoda@test-ci-sis.mssante.fr||||||F|`
)

// The email bodies of our messages: the ORU examples' CORPSMAIL_PS is cut
// one base64 character short (93 characters), so the service uses its
// default body; the MDM examples' is whole.
const (
	voletDefaultBody = "Veuillez trouver ci-joint le document « Compte rendu de biologie médicale » concernant votre patient(e)."
	voletRadioBody   = "Cher confrère, vous trouverez ci-joint le compte rendu de la radiographie de hanche de Mme PAT-TROIS.\r\n"
)

// voletBundle is the whole service on a fresh database.
type voletBundle struct {
	ctx     context.Context
	pool    *pgxpool.Pool
	svc     *dispatch.Service
	views   *readmodel.Reader // the reports as the REST API reads them
	handler *hl7intake.Handler
	outbox  string
}

// setupVolet starts the service on a fresh database where
// test-ci-sis.mssante.fr (Dr Hoda's domain) is in the trust space, with
// its workers and an outbox transport; with dpiAddr, the business
// acknowledgements go to the DPI listening there.
func setupVolet(t *testing.T, dpiAddr string) *voletBundle {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	_, err := pool.Exec(ctx, "INSERT INTO trust_domains (domain) VALUES ('test-ci-sis.mssante.fr')")
	require.NoError(t, err)
	dir := t.TempDir()
	outbox, err := mail.NewOutbox(dir)
	require.NoError(t, err)

	workers := river.NewWorkers()
	resolver := correspondents.NewResolver(correspondents.NewStore(pool))
	require.NoError(t, worker.AddWorkers(workers, worker.WorkerConfig{Pool: pool, Resolver: resolver, Transport: outbox,
		Sender: voletSender, SourceID: worker.DemoSourceID, Logger: voletLog}))
	if dpiAddr != "" {
		// SendingApplication and SendingFacility left empty: the ZAMs come
		// from the MSH-5 and MSH-6 of the DPI's message.
		notifier, err := hl7intake.NewNotifier(hl7intake.NotifierConfig{Addr: dpiAddr, Timeout: 5 * time.Second})
		require.NoError(t, err)
		require.NoError(t, worker.AddBusinessAcks(workers, worker.BusinessAckConfig{Pool: pool, Notifier: notifier,
			RetryBackoff: 50 * time.Millisecond, Logger: voletLog}))
	}
	client, err := queue.New(pool, queue.Config{Workers: workers, FetchPollInterval: 100 * time.Millisecond, Logger: voletLog})
	require.NoError(t, err)
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, client.Stop(stopCtx))
	})
	svc, err := dispatch.NewService(dispatch.ServiceConfig{Pool: pool, Jobs: client,
		BusinessAcks: dpiAddr != "", Logger: voletLog})
	require.NoError(t, err)
	h, err := hl7intake.New(hl7intake.Config{Receiver: svc, Quarantine: quarantine.NewDesk(pool, svc), Logger: voletLog})
	require.NoError(t, err)
	return &voletBundle{ctx: ctx, pool: pool, svc: svc, views: readmodel.New(pool), handler: h, outbox: dir}
}

// voletAuthor is the author of a CDA of the suite.
type voletAuthor struct {
	ID, Family, Given, OrgID, OrgName string
}

// The authors of our CDAs. The biologist is not the sender of the ORU
// messages (PRT SB, Dr Diaz), as in the examples; the radiologist is the
// sender of the MDM messages, in another organisation than PRT-8's.
var (
	voletBiologist   = voletAuthor{ID: "810002223334", Family: "LEMAIRE", Given: "Camille", OrgID: "1999000030", OrgName: "Laboratoire de biologie de test"}
	voletRadiologist = voletAuthor{ID: "801234564895", Family: "ERIC", Given: "Thomas", OrgID: "1999000049", OrgName: "Service d'imagerie de test"}
)

// voletCDA is the data of a CDA template of testdata/volet.
type voletCDA struct {
	template string // cda-n1.xml.tmpl or cda-n3.xml.tmpl
	ID       string // ClinicalDocument/id/@root, the XDS uniqueId
	SetID    string
	Version  int
	Parent   string // relatedDocument/parentDocument/id/@root; empty: none
	Code     string
	CodeName string
	Title    string
	Time     string
	Author   voletAuthor
	Proteins string // level 3: the result
	PDFFile  string // in testdata/volet; empty: none (level 3 only)
	PDF      string // base64 of PDFFile, set by render
}

// voletBioN1 is our level-1 CR-BIO (the report as a PDF).
func voletBioN1(id, setID string, version int, parent, pdf string) voletCDA {
	return voletCDA{template: "cda-n1.xml.tmpl", ID: id, SetID: setID, Version: version, Parent: parent,
		Code: "11502-2", CodeName: "CR d'examens biologiques", Title: "Compte rendu de biologie médicale",
		Time: "20240606090000+0200", Author: voletBiologist, PDFFile: pdf}
}

// voletBioN3 is our level-3 CR-BIO, with a PDF copy when pdf is not empty.
func voletBioN3(id, setID string, version int, parent, proteins, pdf string) voletCDA {
	return voletCDA{template: "cda-n3.xml.tmpl", ID: id, SetID: setID, Version: version, Parent: parent,
		Code: "11502-2", CodeName: "CR d'examens biologiques", Title: "Compte rendu de biologie médicale",
		Time: "20240606090000+0200", Author: voletBiologist, Proteins: proteins, PDFFile: pdf}
}

// voletRadioN1 is our level-1 CR d'imagerie médicale.
func voletRadioN1(id string, version int, parent string) voletCDA {
	return voletCDA{template: "cda-n1.xml.tmpl", ID: id, SetID: "1.2.250.1.999.82.1.1001", Version: version, Parent: parent,
		Code: "18748-4", CodeName: "CR d'imagerie médicale", Title: "Radiographie de la hanche droite",
		Time: "20240606091500+0200", Author: voletRadiologist, PDFFile: "radio.pdf"}
}

// render returns the CDA of d.
func (d voletCDA) render(t *testing.T) []byte {
	t.Helper()
	if d.PDFFile != "" {
		pdf, err := os.ReadFile(filepath.Join("testdata", "volet", d.PDFFile))
		require.NoError(t, err)
		d.PDF = base64.StdEncoding.EncodeToString(pdf)
	}
	return renderVolet(t, d.template, d)
}

// pdf returns the PDF file of d.
func (d voletCDA) pdf(t *testing.T) []byte {
	t.Helper()
	pdf, err := os.ReadFile(filepath.Join("testdata", "volet", d.PDFFile))
	require.NoError(t, err)
	return pdf
}

// renderVolet executes the template testdata/volet/name with data.
func renderVolet(t *testing.T, name string, data any) []byte {
	t.Helper()
	tmpl, err := template.New(name).Option("missingkey=error").ParseFiles(filepath.Join("testdata", "volet", name))
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, tmpl.Execute(&out, data))
	return out.Bytes()
}

// voletMessage is the data of a message template of testdata/volet.
type voletMessage struct {
	ControlID  string
	CDA1, CDA2 string // base64
	DocID      string // TXA-12 (MDM)
	ParentID   string // TXA-13 (MDM)
}

// voletMsg returns the message testdata/volet/name (LF segment ends, as the
// official examples) with controlID and the CDAs docs, after edits.
func voletMsg(t *testing.T, name, controlID string, docs []voletCDA, edits ...func(string) string) []byte {
	t.Helper()
	m := voletMessage{ControlID: controlID}
	for i, d := range docs {
		enc := base64.StdEncoding.EncodeToString(d.render(t))
		if i == 0 {
			m.CDA1, m.DocID, m.ParentID = enc, d.ID, d.Parent
		} else {
			m.CDA2 = enc
		}
	}
	raw := string(renderVolet(t, name, m))
	for _, e := range edits {
		raw = e(raw)
	}
	return []byte(raw)
}

// voletReplace replaces old by new in the line of a message that starts with prefix.
func voletReplace(t *testing.T, prefix, old, new string) func(string) string {
	return func(raw string) string {
		lines := strings.Split(raw, "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) && strings.Contains(l, old) {
				lines[i] = strings.Replace(l, old, new, 1)
				return strings.Join(lines, "\n")
			}
		}
		t.Fatalf("no line %q holding %q", prefix, old)
		return raw
	}
}

// voletInsert inserts line after the line of a message that starts with prefix.
func voletInsert(t *testing.T, prefix, line string) func(string) string {
	return func(raw string) string {
		lines := strings.Split(raw, "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return strings.Join(slices.Insert(lines, i+1, line), "\n")
			}
		}
		t.Fatalf("no line %q", prefix)
		return raw
	}
}

// send hands raw to the intake as the MLLP listener does and returns the
// parsed ACK.
func (b *voletBundle) send(t *testing.T, raw []byte) *hl7.Message {
	t.Helper()
	ack, err := hl7.Parse(b.handler.ServeMLLP(b.ctx, raw), hl7.ParseOptions{})
	require.NoError(t, err)
	return ack
}

// voletErrs returns the ERR segments of an ACK as "SEG^seq^field code severity".
func voletErrs(ack *hl7.Message) []string {
	var out []string
	for _, e := range ack.SegmentsNamed("ERR") {
		loc := e.Field(2).Rep(0)
		where := strings.TrimRight(loc.Comp(1)+"^"+loc.Comp(2)+"^"+loc.Comp(3), "^")
		out = append(out, where+" "+e.Component(3, 1)+" "+e.Get(4))
	}
	return out
}

// requireVoletAA checks an AA against the official ack: its header field
// by field (MSH-3/4 and 5/6 swapped, MSH-9 ACK^<event>^ACK, MSH-11, MSH-12,
// MSH-17, MSH-18), MSA-1 AA and MSA-2 the message's MSH-10; and that its
// ERR segments are warnings, exactly want.
func requireVoletAA(t *testing.T, ack *hl7.Message, official, controlID string, want ...string) {
	t.Helper()
	off, err := hl7.Parse([]byte(official), hl7.ParseOptions{})
	require.NoError(t, err)
	requireSameFields(t, off.Segment("MSH"), ack.Segment("MSH"), 7, 10)
	require.Len(t, ack.Segment("MSH").Get(7), 14, "MSH-7 is a time")
	require.NotEmpty(t, ack.ControlID(), "MSH-10")
	require.Equal(t, "AA", ack.Segment("MSA").Get(1), "ERR: %v %v", voletErrs(ack), voletErrTexts(ack))
	require.Equal(t, controlID, ack.Segment("MSA").Get(2))
	for _, e := range ack.SegmentsNamed("ERR") {
		require.Equal(t, "W", e.Get(4), "an AA carries warnings only: %s", e.Get(8))
		require.NotEmpty(t, e.Get(8), "ERR-8 says why")
	}
	require.ElementsMatch(t, want, voletErrs(ack), "warnings: %v", voletErrTexts(ack))
}

func voletErrTexts(ack *hl7.Message) []string {
	var out []string
	for _, e := range ack.SegmentsNamed("ERR") {
		out = append(out, e.Get(8))
	}
	return out
}

// requireSameFields compares two segments field by field, but the fields skip.
func requireSameFields(t *testing.T, want, got *hl7.Segment, skip ...int) {
	t.Helper()
	require.NotNil(t, want)
	require.NotNil(t, got)
	require.Equal(t, want.Name, got.Name)
	start := 1
	if want.Name == "MSH" {
		start = 3 // MSH-1 and MSH-2 are the delimiters
	}
	for i := start; i <= max(want.NumFields(), got.NumFields()); i++ {
		if slices.Contains(skip, i) {
			continue
		}
		require.Equal(t, voletFieldText(want.Field(i)), voletFieldText(got.Field(i)), "%s-%d", want.Name, i)
	}
}

// voletFieldText writes a field back with ~ ^ &, without trailing empty parts.
func voletFieldText(f hl7.Field) string {
	reps := make([]string, len(f))
	for i, r := range f {
		comps := make([]string, len(r))
		for j, c := range r {
			comps[j] = strings.TrimRight(strings.Join(c, "&"), "&")
		}
		reps[i] = strings.TrimRight(strings.Join(comps, "^"), "^")
	}
	return strings.TrimRight(strings.Join(reps, "~"), "~")
}

// report waits until the latest report carrying documentID has the
// deliveries want (recipient → status) and returns it.
func (b *voletBundle) report(t *testing.T, documentID string, want map[string]string) readmodel.ReportView {
	t.Helper()
	var v readmodel.ReportView
	var err error
	require.Eventually(t, func() bool {
		v, err = b.views.ReportByDocumentID(b.ctx, "test", documentID)
		if err != nil || len(v.Deliveries) != len(want) {
			return false
		}
		for _, d := range v.Deliveries {
			if want[d.Recipient] != string(d.Status) {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "report of %s: want %v, got %+v (%v)", documentID, want, &v, err)
	return v
}

// voletDelivery returns the delivery of v to recipient.
func voletDelivery(t *testing.T, v readmodel.ReportView, recipient string) readmodel.DeliveryView {
	t.Helper()
	i := slices.IndexFunc(v.Deliveries, func(d readmodel.DeliveryView) bool { return d.Recipient == recipient })
	require.GreaterOrEqual(t, i, 0, "no delivery to %s in %+v", recipient, v.Deliveries)
	return v.Deliveries[i]
}

// sentTo returns how many emails the outbox holds for address.
func (b *voletBundle) sentTo(t *testing.T, address string) int {
	t.Helper()
	n := 0
	for _, e := range mailtest.ReadDir(t, b.outbox) {
		if slices.Contains(e.Addresses(t, "To"), address) {
			n++
		}
	}
	return n
}

// email returns the email of delivery d, sent: the one with its Message-ID.
func (b *voletBundle) email(t *testing.T, d readmodel.DeliveryView) mailtest.Email {
	t.Helper()
	var id string
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT message_id FROM deliveries WHERE id = $1", d.ID).Scan(&id))
	for _, e := range mailtest.ReadDir(t, b.outbox) {
		if got, err := e.Header.MessageID(); err == nil && got == id {
			require.Equal(t, []string{d.Recipient}, e.Addresses(t, "To"))
			return e
		}
	}
	t.Fatalf("no email of delivery %d (%s) in the outbox", d.ID, d.Recipient)
	return mailtest.Email{}
}

// voletXDMEntry is a DocumentEntry of METADATA.XML.
type voletXDMEntry struct {
	UniqueID, PatientID, Action, FormatCode string
	AuthorPerson, AuthorInstitution         string
}

// voletXDM is IHE_XDM.ZIP read back.
type voletXDM struct {
	SubmissionSets                      int
	AuthorPerson, AuthorInstitution     string // the submission set's author
	PatientID                           string // the submission set's patientId
	Entries                             []voletXDMEntry
	Documents                           [][]byte // the CDA files of IHE_XDM/SUBSET01, in name order
	hasReadme, hasIndex, hasMetadataXML bool
}

// XDS identifiers of METADATA.XML (IHE ITI TF-3 4.2.5).
const (
	voletXDSDEAuthor     = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
	voletXDSDEFormatCode = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
	voletXDSDEPatientID  = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
	voletXDSDEUniqueID   = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
	voletXDSSSAuthor     = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
	voletXDSSSPatientID  = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
	voletXDMActionSlot   = "urn:asip:ci-sis:2010:action"
)

// readVoletXDM reads an IHE_XDM.ZIP and its METADATA.XML.
func readVoletXDM(t *testing.T, data []byte) voletXDM {
	t.Helper()
	files, names := mailtest.Unzip(t, data)
	var x voletXDM
	_, x.hasReadme = files["README.TXT"]
	_, x.hasIndex = files["INDEX.HTM"]
	metadata, hasMetadata := files["IHE_XDM/SUBSET01/METADATA.XML"]
	x.hasMetadataXML = hasMetadata
	for _, name := range names {
		if strings.HasPrefix(name, "IHE_XDM/SUBSET01/") && name != "IHE_XDM/SUBSET01/METADATA.XML" {
			x.Documents = append(x.Documents, files[name])
		}
	}
	require.True(t, x.hasReadme && x.hasIndex && x.hasMetadataXML, "README.TXT, INDEX.HTM, IHE_XDM/SUBSET01/METADATA.XML")
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromBytes(metadata))
	list := doc.Root().FindElement("RegistryObjectList")
	require.NotNil(t, list)
	packages := list.SelectElements("RegistryPackage")
	x.SubmissionSets = len(packages)
	require.Len(t, packages, 1, "one submission set")
	x.AuthorPerson, x.AuthorInstitution = voletAuthorOf(packages[0], voletXDSSSAuthor)
	x.PatientID = voletExternalID(packages[0], voletXDSSSPatientID)
	for _, de := range list.SelectElements("ExtrinsicObject") {
		e := voletXDMEntry{UniqueID: voletExternalID(de, voletXDSDEUniqueID), PatientID: voletExternalID(de, voletXDSDEPatientID),
			Action: voletSlot(de, voletXDMActionSlot)}
		e.AuthorPerson, e.AuthorInstitution = voletAuthorOf(de, voletXDSDEAuthor)
		for _, c := range de.SelectElements("Classification") {
			if c.SelectAttrValue("classificationScheme", "") == voletXDSDEFormatCode {
				e.FormatCode = c.SelectAttrValue("nodeRepresentation", "")
			}
		}
		x.Entries = append(x.Entries, e)
	}
	return x
}

// voletSlot returns the first value of the slot name of e ("" when absent).
func voletSlot(e *etree.Element, name string) string {
	for _, s := range e.SelectElements("Slot") {
		if s.SelectAttrValue("name", "") == name {
			if v := s.FindElement("ValueList/Value"); v != nil {
				return v.Text()
			}
		}
	}
	return ""
}

// voletAuthorOf returns the authorPerson and authorInstitution of the author
// classification scheme of e.
func voletAuthorOf(e *etree.Element, scheme string) (person, institution string) {
	for _, c := range e.SelectElements("Classification") {
		if c.SelectAttrValue("classificationScheme", "") == scheme {
			return voletSlot(c, "authorPerson"), voletSlot(c, "authorInstitution")
		}
	}
	return "", ""
}

// voletExternalID returns the value of the ExternalIdentifier of e with the scheme.
func voletExternalID(e *etree.Element, scheme string) string {
	for _, x := range e.SelectElements("ExternalIdentifier") {
		if x.SelectAttrValue("identificationScheme", "") == scheme {
			return x.SelectAttrValue("value", "")
		}
	}
	return ""
}

// voletWantEmail is what an email of the suite must be.
type voletWantEmail struct {
	subject   string // "" not checked
	replyTo   string // "" for none
	codes     string // X-MSS-CODECDA
	ins       string // X-MSS-INS
	fin       bool   // X-MSS-MES: FIN
	readAck   bool   // Disposition-Notification-To
	body      string // a part of the body
	pdfs      [][]byte
	docs      []voletCDA // the CDAs, in the order of the message
	action    string     // "" new, C, D
	ssPerson  string     // the submission set's author (PRT SB)
	ssInstitu string
}

// requireVoletEmail checks an email against want, and its IHE_XDM.ZIP.
func requireVoletEmail(t *testing.T, e mailtest.Email, want voletWantEmail) {
	t.Helper()
	require.Equal(t, []string{voletSender}, e.Addresses(t, "From"))
	if want.subject != "" {
		subject, err := e.Header.Subject()
		require.NoError(t, err)
		// Not fatal: the rest of the email is checked too.
		assert.Equal(t, want.subject, subject, "Subject: XDM/1.0/DDM+<title> <NOM> <prénom> <birth date>")
	}
	if want.replyTo == "" {
		require.False(t, e.Header.Has("Reply-To"))
	} else {
		require.Equal(t, []string{want.replyTo}, e.Addresses(t, "Reply-To"))
	}
	require.Equal(t, want.codes, e.Header.Get("X-MSS-CODECDA"), "one code per CDA")
	require.Equal(t, want.ins, e.Header.Get("X-MSS-INS"))
	require.NotEmpty(t, e.Header.Get("X-MSS-NIL"))
	if want.fin {
		require.Equal(t, "FIN", e.Header.Get("X-MSS-MES"))
	} else {
		require.False(t, e.Header.Has("X-MSS-MES"), "no X-MSS-MES")
	}
	if want.readAck {
		require.Equal(t, "<"+voletSender+">", e.Header.Get("Disposition-Notification-To"))
	} else {
		require.False(t, e.Header.Has("Disposition-Notification-To"), "no read notification asked")
	}
	require.Contains(t, e.Body, want.body)

	names := []string{"IHE_XDM.ZIP"}
	for i, pdf := range want.pdfs {
		name := strings.ReplaceAll(want.docs[0].Title, " ", "_")
		if i > 0 {
			name += "_2"
		}
		require.Equal(t, pdf, e.Attachments[name+".pdf"], "PDF %d", i+1)
		names = append(names, name+".pdf")
	}
	require.Equal(t, names, e.Names, "IHE_XDM.ZIP and each distinct PDF")

	x := readVoletXDM(t, e.Attachments["IHE_XDM.ZIP"])
	require.Equal(t, want.ssPerson, x.AuthorPerson, "the submission set's author is the PRT SB")
	require.Equal(t, want.ssInstitu, x.AuthorInstitution, "the submission set's author is the PRT SB")
	require.Equal(t, voletPatientXDSID, x.PatientID)
	require.Len(t, x.Entries, len(want.docs), "one DocumentEntry per CDA")
	var cdas [][]byte
	for i, d := range want.docs {
		de := x.Entries[i]
		require.Equal(t, d.ID, de.UniqueID, "uniqueId of entry %d is its ClinicalDocument/id", i+1)
		require.Equal(t, voletPatientXDSID, de.PatientID)
		require.Equal(t, want.action, de.Action, "the extra metadata action of entry %d", i+1)
		require.Equal(t, d.Author.ID+"^"+d.Author.Family+"^"+d.Author.Given+"^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS", de.AuthorPerson,
			"the author of entry %d is its CDA's", i+1)
		require.Equal(t, d.Author.OrgName+"^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^"+d.Author.OrgID, de.AuthorInstitution)
		format := "urn:ihe:lab:xd-lab:2008"
		if d.template == "cda-n1.xml.tmpl" {
			format = "urn:ihe:iti:xds-sd:pdf:2008"
		}
		require.Equal(t, format, de.FormatCode)
		cdas = append(cdas, d.render(t))
	}
	require.ElementsMatch(t, cdas, x.Documents, "the CDAs, byte for byte")
}

// Our CDAs of the ORU examples.
var (
	// The Ségur example's level-3 CR-BIO, version 1 (id = setId, as the
	// official SEGUR_CR-BIO_2023.01_Electrophorese.xml) and version 2,
	// which, as the official SEGUR_CR_Bio_CDA_Niv3_v2.xml, names no
	// relatedDocument: only its setId and versionNumber link it to
	// version 1. Both carry the report as a PDF (FR-Document-attache).
	segurV1 = voletBioN3("1.2.250.1.999.81.3.1", "1.2.250.1.999.81.3.1", 1, "", "75", "bio-v1.pdf")
	segurV2 = voletBioN3("1.2.250.1.999.81.3.2", "1.2.250.1.999.81.3.1", 2, segurV1.ID, "80", "bio-v2.pdf")
	// The N1+N3 example's pair, version 1, and version 2: as the official
	// CR_Bio_CDA_Niv1_v2 and CR_Bio_CDA_Niv3_v2 carried by the replacement,
	// the level 1 names its parent in relatedDocument, the level 3 does not.
	// The level 3 carries no PDF.
	pairN1V1 = voletBioN1("1.2.250.1.999.81.2.1", "1.2.250.1.999.81.2.1", 1, "", "bio-v1.pdf")
	pairN3V1 = voletBioN3("1.2.250.1.999.81.2.2", "1.2.250.1.999.81.2.2", 1, "", "75", "")
	pairN1V2 = voletBioN1("1.2.250.1.999.81.2.3", "1.2.250.1.999.81.2.1", 2, "1.2.250.1.999.81.2.1", "bio-v2.pdf")
	pairN3V2 = voletBioN3("1.2.250.1.999.81.2.4", "1.2.250.1.999.81.2.2", 2, "", "80", "")
	// The MDM examples' level-1 CR d'imagerie, version 1 and version 2
	// (which names version 1 in relatedDocument, as TXA-13 does).
	radioV1 = voletRadioN1("1.2.250.1.999.82.1.1001", 1, "")
	radioV2 = voletRadioN1("1.2.250.1.999.82.1.1002", 2, "1.2.250.1.999.82.1.1001")
)

// segurWarnings are the warnings of the Ségur messages: their CORPSMAIL_PS
// (OBX 12) is one base64 character short, so the default body is used.
var segurWarnings = []string{"OBX^12^5 102 W"}

// TestVoletORUSegurInit mirrors "Vague 2/Trans_Doc-CDA-HL7V2/
// TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/ORU/Transmission initiale ORU/
// message_ORU_CR_Bio_INIT_N3_SEGUR.hl7" (ansforge/hl7V2-exemples): one CDA
// N3, sent to Dr Hoda and to the patient, whose PRT RCT gives a 20-digit
// identifier and the address 27707279035121518989@patient.mssante.fr while
// PID-3 holds the qualified INS 279035121518989. Dr Hoda's email goes; the
// patient's delivery waits in review, nothing sent to either patient
// address, and the ACK says so with a warning located at that PRT-15.
func TestVoletORUSegurInit(t *testing.T) {
	t.Parallel()
	b := setupVolet(t, "")
	ack := b.send(t, voletMsg(t, "oru_init_n3_segur.hl7", "SEGUR-INIT-1", []voletCDA{segurV1}))
	requireVoletAA(t, ack, officialACKORU, "SEGUR-INIT-1", slices.Concat(segurWarnings, []string{"PRT^3^15 103 W"})...)
	require.Contains(t, strings.Join(voletErrTexts(ack), "\n"), voletPatientBox, "the warning names the INS's mailbox")

	v := b.report(t, segurV1.ID, map[string]string{voletHoda: "sent", voletPatientBox: "review"})
	require.Equal(t, []string{segurV1.ID}, v.DocumentIDs)
	h := voletDelivery(t, v, voletHoda)
	require.Equal(t, correspondents.ChannelMSSante, h.Channel)
	require.Equal(t, correspondents.ReasonDPIAddress, h.Reason)
	require.Equal(t, voletHodaID[1:], h.RPPS)
	p := voletDelivery(t, v, voletPatientBox)
	require.Equal(t, correspondents.ChannelMSSante, p.Channel)
	require.Equal(t, correspondents.ReasonPatientAddressMismatch, p.Reason)
	require.Contains(t, p.ReasonText, voletSegurPatient)

	requireVoletEmail(t, b.email(t, h), voletWantEmail{subject: voletBioSubject, replyTo: voletHoda, codes: "11502-2", ins: "O", readAck: true,
		body: voletDefaultBody, pdfs: [][]byte{segurV1.pdf(t)}, docs: []voletCDA{segurV1},
		ssPerson: voletDiaz, ssInstitu: voletLabo})
	require.Zero(t, b.sentTo(t, voletSegurPatient), "nothing to the address the DPI gave")
	require.Zero(t, b.sentTo(t, voletPatientBox), "nothing to the INS's mailbox before a secretary checks")
	require.Len(t, mailtest.ReadDir(t, b.outbox), 1)
}

// TestVoletORUSegurReplace mirrors "Vague 2/…/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/
// ORU/Remplacement ORU/message_ORU_CR_Bio_RPLC_N3_SEGUR.hl7" after the
// initial transmission: the version 2 of the CDA N3 (OBX-11 C, ORC-1 RO,
// OBR-25 F), to Dr Hoda and to the patient at the INS's mailbox. As the
// official CDA, ours names its parent in relatedDocument (the official one
// names an id that is not its version 1's, 1.2.250.1.213.1.1.12 for .9).
// Expected as for every example: accepted, both emailed with action C, and
// the patient's delivery of version 1, still in review, superseded.
func TestVoletORUSegurReplace(t *testing.T) {
	t.Parallel()
	b := setupVolet(t, "")
	requireVoletAA(t, b.send(t, voletMsg(t, "oru_init_n3_segur.hl7", "SEGUR-INIT-1", []voletCDA{segurV1})),
		officialACKORU, "SEGUR-INIT-1", slices.Concat(segurWarnings, []string{"PRT^3^15 103 W"})...)
	b.report(t, segurV1.ID, map[string]string{voletHoda: "sent", voletPatientBox: "review"})

	ack := b.send(t, voletMsg(t, "oru_rplc_n3_segur.hl7", "SEGUR-RPLC-2", []voletCDA{segurV2}))
	requireVoletAA(t, ack, officialACKORUReplace, "SEGUR-RPLC-2", segurWarnings...)
	v := b.report(t, segurV2.ID, map[string]string{voletHoda: "sent", voletPatientBox: "sent"})
	for _, to := range []string{voletHoda, voletPatientBox} {
		requireVoletEmail(t, b.email(t, voletDelivery(t, v, to)), voletWantEmail{subject: voletBioSubject, replyTo: voletHoda, codes: "11502-2", ins: "O",
			body: "annule et remplace", pdfs: [][]byte{segurV2.pdf(t)}, docs: []voletCDA{segurV2}, action: "C",
			ssPerson: voletDiaz, ssInstitu: voletLabo})
	}
	b.report(t, segurV1.ID, map[string]string{voletHoda: "sent", voletPatientBox: "superseded"})
}

// TestVoletORUSegurDelete mirrors "Vague 2/…/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/
// ORU/Suppression ORU/message_ORU_CR_Bio_DEL_N3_SEGUR.hl7" after the
// initial transmission: OBX-11 D, ORC-1 CA, OBR-25 F, to Dr Hoda and to the
// patient at the INS's mailbox. The official message carries another
// document (a CDA N1 of another patient, INS 277076322082910, which the
// service refuses as not PID-3's); ours carries, as its README says, the
// latest version of the document to delete: the one sent before. Dr Hoda
// and the patient get the deletion (action D); the patient's delivery of
// the document, still in review, is cancelled.
func TestVoletORUSegurDelete(t *testing.T) {
	t.Parallel()
	b := setupVolet(t, "")
	requireVoletAA(t, b.send(t, voletMsg(t, "oru_init_n3_segur.hl7", "SEGUR-INIT-1", []voletCDA{segurV1})),
		officialACKORU, "SEGUR-INIT-1", slices.Concat(segurWarnings, []string{"PRT^3^15 103 W"})...)
	initial := b.report(t, segurV1.ID, map[string]string{voletHoda: "sent", voletPatientBox: "review"})

	ack := b.send(t, voletMsg(t, "oru_del_n3_segur.hl7", "SEGUR-DEL-3", []voletCDA{segurV1}))
	requireVoletAA(t, ack, officialACKORUReplace, "SEGUR-DEL-3", segurWarnings...)
	v := b.report(t, segurV1.ID, map[string]string{voletHoda: "sent", voletPatientBox: "sent"})
	require.NotEqual(t, initial.ID, v.ID, "the deletion is a report of its own")
	for _, to := range []string{voletHoda, voletPatientBox} {
		requireVoletEmail(t, b.email(t, voletDelivery(t, v, to)), voletWantEmail{subject: voletBioSubject, replyTo: voletHoda, codes: "11502-2", ins: "O",
			body: "est annulé", pdfs: [][]byte{segurV1.pdf(t)}, docs: []voletCDA{segurV1}, action: "D",
			ssPerson: voletDiaz, ssInstitu: voletLabo})
	}
	initial, err := b.views.Report(b.ctx, "test", initial.ID)
	require.NoError(t, err)
	require.Equal(t, dispatch.StatusSent, voletDelivery(t, initial, voletHoda).Status)
	require.Equal(t, dispatch.StatusCancelled, voletDelivery(t, initial, voletPatientBox).Status, "the pending delivery of the deleted document")
	require.Equal(t, 2, b.sentTo(t, voletHoda))
}

// pairWarnings are the warnings of the N1+N3 messages: their CORPSMAIL_PS
// (OBX 13) is one base64 character short.
var pairWarnings = []string{"OBX^13^5 102 W"}

// TestVoletORUPair mirrors, in turn, the three ORU examples of
// ansforge/hl7V2-exemples "Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/":
// "Transmission initiale ORU/message_ORU_CR_Bio_INIT_N1_N3.hl7" (the same
// report as CDA N1 then CDA N3, to Dr Hoda and to the patient, replies to
// Dr Hoda), "Remplacement ORU/message_ORU_CR_Bio_RPLC_N1_Base64_N3_Base64.er7"
// (both in version 2, OBX-11 C, ORC-1 RO, OBR-25 F; only the N1 names its
// parent) and "Suppression ORU/message_ORU_CR_Bio_DEL_N1_Base64_N3_Base64.er7"
// (the version 2 pair, OBX-11 D, ORC-1 CA), with their ack.hl7 / ack.er7.
// Each is accepted and emailed to both, both documents in each email, with
// the action none, then C, then D on both DocumentEntries; what was sent
// before stays sent.
func TestVoletORUPair(t *testing.T) {
	t.Parallel()
	b := setupVolet(t, "")
	ack := b.send(t, voletMsg(t, "oru_init_n1_n3.hl7", "PAIR-INIT-1", []voletCDA{pairN1V1, pairN3V1}))
	requireVoletAA(t, ack, officialACKORU, "PAIR-INIT-1", pairWarnings...)
	initial := b.report(t, pairN1V1.ID, map[string]string{voletHoda: "sent", voletPatientBox: "sent"})
	require.Equal(t, []string{pairN1V1.ID, pairN3V1.ID}, initial.DocumentIDs)
	byN3, err := b.views.ReportByDocumentID(b.ctx, "test", pairN3V1.ID)
	require.NoError(t, err)
	require.Equal(t, initial.ID, byN3.ID, "one report for the pair")
	require.Equal(t, correspondents.ReasonPatientMailbox, voletDelivery(t, initial, voletPatientBox).Reason)
	pair := voletWantEmail{subject: voletBioSubject, replyTo: voletHoda, codes: "11502-2,11502-2", ins: "O", readAck: true,
		pdfs: [][]byte{pairN1V1.pdf(t)}, docs: []voletCDA{pairN1V1, pairN3V1}, ssPerson: voletDiaz, ssInstitu: voletLabo}
	forHoda, forPatient := pair, pair
	forHoda.body = voletDefaultBody
	forPatient.body = "Veuillez trouver ci-joint votre document « Compte rendu de biologie médicale »."
	requireVoletEmail(t, b.email(t, voletDelivery(t, initial, voletHoda)), forHoda)
	requireVoletEmail(t, b.email(t, voletDelivery(t, initial, voletPatientBox)), forPatient)

	ack = b.send(t, voletMsg(t, "oru_rplc_n1_n3.er7", "PAIR-RPLC-2", []voletCDA{pairN1V2, pairN3V2}))
	requireVoletAA(t, ack, officialACKORUReplace, "PAIR-RPLC-2", pairWarnings...)
	replaced := b.report(t, pairN1V2.ID, map[string]string{voletHoda: "sent", voletPatientBox: "sent"})
	require.Equal(t, []string{pairN1V2.ID, pairN3V2.ID}, replaced.DocumentIDs)
	pair = voletWantEmail{subject: voletBioSubject, replyTo: voletHoda, codes: "11502-2,11502-2", ins: "O", body: "annule et remplace",
		pdfs: [][]byte{pairN1V2.pdf(t)}, docs: []voletCDA{pairN1V2, pairN3V2}, action: "C", ssPerson: voletDiaz, ssInstitu: voletLabo}
	for _, to := range []string{voletHoda, voletPatientBox} {
		requireVoletEmail(t, b.email(t, voletDelivery(t, replaced, to)), pair)
	}
	b.report(t, pairN1V1.ID, map[string]string{voletHoda: "sent", voletPatientBox: "sent"}) // nothing was pending

	ack = b.send(t, voletMsg(t, "oru_del_n1_n3.er7", "PAIR-DEL-3", []voletCDA{pairN1V2, pairN3V2}))
	requireVoletAA(t, ack, officialACKORUReplace, "PAIR-DEL-3", pairWarnings...)
	deleted := b.report(t, pairN3V2.ID, map[string]string{voletHoda: "sent", voletPatientBox: "sent"})
	require.NotEqual(t, replaced.ID, deleted.ID)
	pair.body, pair.action = "est annulé", "D"
	for _, to := range []string{voletHoda, voletPatientBox} {
		requireVoletEmail(t, b.email(t, voletDelivery(t, deleted, to)), pair)
	}
	replaced, err = b.views.Report(b.ctx, "test", replaced.ID)
	require.NoError(t, err)
	for _, d := range replaced.Deliveries {
		require.Equal(t, dispatch.StatusSent, d.Status, "%s: sent before the deletion", d.Recipient)
	}
	require.Equal(t, 3, b.sentTo(t, voletHoda))
	require.Equal(t, 3, b.sentTo(t, voletPatientBox))
}

// TestVoletORUPairBusinessAcks mirrors the business acknowledgements of
// "Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/Transmission initiale ORU/"
// (ansforge/hl7V2-exemples): the message message_ORU_CR_Bio_INIT_N1_N3.hl7
// asks for them (ACK_RECEPTION Y, ACK_LECTURE_MSS Y); when Dr Hoda's
// mailbox acknowledges the email (a DSN, then an MDN), the DPI receives
// "Message metier reception MSS" (ZAM^Z02) then "Message metier lecture MSS"
// (ZAM^Z03), compared field by field.
func TestVoletORUPairBusinessAcks(t *testing.T) {
	t.Parallel()
	dpi := startVoletDPI(t)
	b := setupVolet(t, dpi.addr)
	requireVoletAA(t, b.send(t, voletMsg(t, "oru_init_n1_n3.hl7", "PAIR-ACKS-1", []voletCDA{pairN1V1, pairN3V1})),
		officialACKORU, "PAIR-ACKS-1", pairWarnings...)
	v := b.report(t, pairN1V1.ID, map[string]string{voletHoda: "sent", voletPatientBox: "sent"})
	h := voletDelivery(t, v, voletHoda)

	require.NoError(t, b.svc.Acknowledge(b.ctx, h.ID, dispatch.AckDelivered, "DSN delivered 2.0.0"))
	z02 := dpi.wait(t, 1)
	require.NoError(t, b.svc.Acknowledge(b.ctx, h.ID, dispatch.AckRead, "MDN displayed"))
	z03 := dpi.wait(t, 2)
	for _, c := range []struct {
		got      *hl7.Message
		official string
	}{{z02, officialZAMZ02}, {z03, officialZAMZ03}} {
		off, err := hl7.Parse([]byte(c.official), hl7.ParseOptions{})
		require.NoError(t, err)
		require.Len(t, c.got.Segments, 4, "MSH, EVN, two OBX: no ERR, no patient")
		requireSameFields(t, off.Segment("MSH"), c.got.Segment("MSH"), 7, 10)
		require.NotEmpty(t, c.got.ControlID())
		requireSameFields(t, off.Segment("EVN"), c.got.Segment("EVN"), 2)
		require.Len(t, c.got.Segment("EVN").Get(2), 14, "EVN-2 is a time")
		obx, got := off.SegmentsNamed("OBX"), c.got.SegmentsNamed("OBX")
		require.Len(t, got, 2)
		requireSameFields(t, obx[0], got[0], 4)
		require.Equal(t, "PAIR-ACKS-1", got[0].Get(4), "OBX-4: the MSH-10 of the message that carried the documents")
		requireSameFields(t, obx[1], got[1])
	}
	require.Len(t, dpi.messages(t), 2, "each acknowledgement once")
}

// TestVoletMDM mirrors, in turn, the three MDM examples of
// ansforge/hl7V2-exemples "Vague 2/Trans_Doc-CDA-HL7V2/
// TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/MDM/": "Transmission initiale MDM/
// message_MDM_CR_Radio_INIT_N1_Base64.er7" (MDM^T02, a CDA N1 to Dr Hoda
// alone, INVISIBLE_PATIENT Y, INVISIBLE_REP_LEGAUX Y, CONNEXION_SECRETE Y,
// DESTMSSANTEPAT N; TXA-12 with a namespace; PRT-8 followed by no-break
// spaces), "Remplacement MDM/message_MDM_CR_Radio_RPLC_N1.er7" (MDM^T10,
// MODIF_CONF_CODE Y, TXA-13 the parent) and "Suppression MDM/
// message_MDM_CR_Radio_DEL_N1.er7" (MDM^T04), with their ack.er7: each is
// accepted and Dr Hoda alone is emailed, with the DPI's body and the action
// none, then C, then D.
func TestVoletMDM(t *testing.T) {
	t.Parallel()
	b := setupVolet(t, "")
	radio := voletWantEmail{subject: "XDM/1.0/DDM+Radiographie de la hanche droite PAT-TROIS DOMINIQUE 28/03/1979",
		codes: "18748-4", ins: "O", body: voletRadioBody, ssPerson: "801234564895^Eric^Thomas^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
		ssInstitu: "Organisation-Y^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1300017985"}
	steps := []struct {
		file, controlID, official string
		doc                       voletCDA
		action                    string
	}{
		{"mdm_t02_init_n1.er7", "MDM-T02-1", officialACKMDMT02, radioV1, ""},
		{"mdm_t10_rplc_n1.er7", "MDM-T10-2", officialACKMDMT10, radioV2, "C"},
		{"mdm_t04_del_n1.er7", "MDM-T04-3", officialACKMDMT04, radioV2, "D"},
	}
	var reports []int64
	for i, s := range steps {
		requireVoletAA(t, b.send(t, voletMsg(t, s.file, s.controlID, []voletCDA{s.doc})), s.official, s.controlID)
		v := b.report(t, s.doc.ID, map[string]string{voletHoda: "sent"})
		require.NotContains(t, reports, v.ID, "%s: a report of its own", s.file)
		reports = append(reports, v.ID)
		d := voletDelivery(t, v, voletHoda)
		require.Equal(t, correspondents.ReasonDPIAddress, d.Reason, s.file)
		want := radio
		want.pdfs, want.docs, want.action = [][]byte{s.doc.pdf(t)}, []voletCDA{s.doc}, s.action
		requireVoletEmail(t, b.email(t, d), want)
		require.Equal(t, i+1, len(mailtest.ReadDir(t, b.outbox)), "Dr Hoda alone: no patient")
	}
}

// TestVoletMinimal sends an ORU holding only what the volet marks required
// (dispatch/hl7intake/volet.go voletFields): MSH-1 to -7, -9 to -12, -17,
// -18, -21; PID-3 (an INS, without PID-32) and PID-5; PV1-2 and PV1-19;
// ORC-1; OBR-4 (no OBR-25); the document's OBX-1, -2, -3, -5, -11; PRT SB
// and PRT RCT with PRT-2, -4, -5 and -8 or -15; the eight required
// MetaDMPMSS flags. It is accepted without any warning and emailed to Dr
// Hoda, X-MSS-INS N (no PID-32 VALI). The volet asks senders to fill only
// these fields, the CDA being the reference: the subject's birth date,
// which PID-7 no longer gives, is the CDA's (recordTarget birthTime).
func TestVoletMinimal(t *testing.T) {
	t.Parallel()
	b := setupVolet(t, "")
	doc := voletBioN1("1.2.250.1.999.81.4.1", "1.2.250.1.999.81.4.1", 1, "", "bio-v1.pdf")
	ack := b.send(t, voletMsg(t, "oru_minimal.hl7", "MIN-1", []voletCDA{doc}))
	requireVoletAA(t, ack, officialACKORU, "MIN-1")
	require.Nil(t, ack.Segment("ERR"), "no warning")
	v := b.report(t, doc.ID, map[string]string{voletHoda: "sent"})
	require.Equal(t, correspondents.ReasonDPIAddress, voletDelivery(t, v, voletHoda).Reason)
	requireVoletEmail(t, b.email(t, voletDelivery(t, v, voletHoda)), voletWantEmail{subject: voletBioSubject, codes: "11502-2", ins: "N",
		body: voletDefaultBody, pdfs: [][]byte{doc.pdf(t)}, docs: []voletCDA{doc}, ssPerson: voletDiaz, ssInstitu: voletLabo})
	require.Len(t, mailtest.ReadDir(t, b.outbox), 1)
}

// TestVoletResent sends the minimal ORU of TestVoletMinimal, then the same
// document again as a DPI's operator or interface engine does: with a new
// MSH-10, it is accepted and nobody gets a second email; with one more PRT
// RCT, accepted, and only that recipient gets an email; the same document
// id with other CDA bytes and OBX-11 F (a new version sent as new) is
// refused (AE, ERR of severity E at the document's OBX-5).
func TestVoletResent(t *testing.T) {
	t.Parallel()
	b := setupVolet(t, "")
	doc := voletBioN1("1.2.250.1.999.81.4.1", "1.2.250.1.999.81.4.1", 1, "", "bio-v1.pdf")
	requireVoletAA(t, b.send(t, voletMsg(t, "oru_minimal.hl7", "MIN-1", []voletCDA{doc})), officialACKORU, "MIN-1")
	first := b.report(t, doc.ID, map[string]string{voletHoda: "sent"})

	// The same document again, with a new MSH-10: accepted, nothing sent.
	requireVoletAA(t, b.send(t, voletMsg(t, "oru_minimal.hl7", "MIN-2", []voletCDA{doc})), officialACKORU, "MIN-2")

	// Again, with one more recipient: only she gets it.
	const martin = "claire.martin@test-ci-sis.mssante.fr"
	more := voletInsert(t, "PRT||UC||RCT", "PRT||UC||RCT^^participation|801234567811^Martin^Claire^^^^^^ASIP-SANTE- PS&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS||||||||||^^X.400^"+martin)
	requireVoletAA(t, b.send(t, voletMsg(t, "oru_minimal.hl7", "MIN-3", []voletCDA{doc}, more)), officialACKORU, "MIN-3")
	again := b.report(t, doc.ID, map[string]string{voletHoda: "sent", martin: "sent"})
	require.Equal(t, first.ID, again.ID, "no second report")
	require.Equal(t, voletDelivery(t, first, voletHoda).ID, voletDelivery(t, again, voletHoda).ID, "Dr Hoda's delivery is the first one")
	requireVoletEmail(t, b.email(t, voletDelivery(t, again, martin)), voletWantEmail{codes: "11502-2", ins: "N",
		body: voletDefaultBody, pdfs: [][]byte{doc.pdf(t)}, docs: []voletCDA{doc}, ssPerson: voletDiaz, ssInstitu: voletLabo})
	require.Equal(t, 1, b.sentTo(t, voletHoda), "Dr Hoda got it once")
	require.Len(t, mailtest.ReadDir(t, b.outbox), 2)

	// The same id with other bytes, as a new document: refused.
	other := doc
	other.PDFFile = "bio-v2.pdf"
	ack := b.send(t, voletMsg(t, "oru_minimal.hl7", "MIN-4", []voletCDA{other}))
	require.Equal(t, "AE", ack.Segment("MSA").Get(1))
	require.Equal(t, "MIN-4", ack.Segment("MSA").Get(2))
	require.Equal(t, []string{"OBX^1^5 101 E"}, voletErrs(ack))
	require.Contains(t, ack.Segment("ERR").Get(8), "remplacement", "ERR-8 tells the DPI to send a replacement")
	v, err := b.views.Report(b.ctx, "test", first.ID)
	require.NoError(t, err)
	require.Len(t, v.Deliveries, 2)
	require.Len(t, mailtest.ReadDir(t, b.outbox), 2)
}

// TestVoletPatientNoReply sends the ORU N1+N3 initial transmission
// ("Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/Transmission initiale ORU/
// message_ORU_CR_Bio_INIT_N1_N3.hl7") with an NTE-4 FIN after its
// DESTMSSANTEPAT OBX (as "Exemple 1" of the volet's page exemples) and its
// read acknowledgement flag spelled ACK_LECTURE (as "Exemple 0" and
// "Exemple 2" there): the patient's email carries X-MSS-MES: FIN, Dr
// Hoda's does not, and both ask for a read notification. TestVoletORUPair
// checks that the message without the NTE puts no X-MSS-MES.
func TestVoletPatientNoReply(t *testing.T) {
	t.Parallel()
	b := setupVolet(t, "")
	raw := voletMsg(t, "oru_init_n1_n3.hl7", "FIN-1", []voletCDA{pairN1V1, pairN3V1},
		voletInsert(t, "OBX|10|CE|DESTMSSANTEPAT", "NTE|1|||FIN|"),
		voletReplace(t, "OBX|12|CE|", "ACK_LECTURE_MSS^", "ACK_LECTURE^"))
	requireVoletAA(t, b.send(t, raw), officialACKORU, "FIN-1", pairWarnings...)
	v := b.report(t, pairN1V1.ID, map[string]string{voletHoda: "sent", voletPatientBox: "sent"})
	pair := voletWantEmail{subject: voletBioSubject, replyTo: voletHoda, codes: "11502-2,11502-2", ins: "O", readAck: true,
		pdfs: [][]byte{pairN1V1.pdf(t)}, docs: []voletCDA{pairN1V1, pairN3V1}, ssPerson: voletDiaz, ssInstitu: voletLabo}
	forHoda, forPatient := pair, pair
	forHoda.body = voletDefaultBody
	forPatient.body, forPatient.fin = "Veuillez trouver ci-joint votre document", true
	requireVoletEmail(t, b.email(t, voletDelivery(t, v, voletHoda)), forHoda)
	requireVoletEmail(t, b.email(t, voletDelivery(t, v, voletPatientBox)), forPatient)
}

// voletDPI is an MLLP listener playing the DPI for the business
// acknowledgements: it keeps what it gets and answers AA.
type voletDPI struct {
	addr string
	mu   sync.Mutex
	got  [][]byte
}

func startVoletDPI(t *testing.T) *voletDPI {
	t.Helper()
	d := &voletDPI{}
	srv := &mllp.Server{Handler: mllp.HandlerFunc(d.serve), Logger: voletLog}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	d.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return d
}

func (d *voletDPI) serve(_ context.Context, msg []byte) []byte {
	d.mu.Lock()
	d.got = append(d.got, msg)
	d.mu.Unlock()
	m, err := hl7.Parse(msg, hl7.ParseOptions{})
	if err != nil {
		return hl7.NewACKFor(hl7.ControlIDOf(msg), hl7.AckError, "DPI-ACK", time.Now()).Encode()
	}
	return hl7.NewACK(m, hl7.AckAccept, "DPI-ACK", time.Now()).Encode()
}

// messages returns what the DPI got, parsed.
func (d *voletDPI) messages(t *testing.T) []*hl7.Message {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*hl7.Message
	for _, raw := range d.got {
		m, err := hl7.Parse(raw, hl7.ParseOptions{})
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

// wait waits for the n-th message of the DPI and returns it.
func (d *voletDPI) wait(t *testing.T, n int) *hl7.Message {
	t.Helper()
	require.Eventually(t, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.got) >= n
	}, 30*time.Second, 50*time.Millisecond, "the DPI never got message %d", n)
	return d.messages(t)[n-1]
}
