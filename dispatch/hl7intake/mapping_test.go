package hl7intake

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/hl7"
)

// update is the -update flag of the package's tests: it rewrites
// testdata/golden/*.json from the mapping, and the table of the volet's
// required fields in ../../README.md (volet_test.go).
var update = flag.Bool("update", false, "rewrite testdata/golden/*.json from the mapping and the table of the volet's required fields in ../../README.md")

// placeholders in testdata messages: {{CDA file}} is the base64 of
// ../../cda/testdata/file, {{CDA76 file}} the same wrapped at 76 columns (as
// some DPIs send it); {{CDA}} is n1-pdf.xml.
var placeholder = regexp.MustCompile(`\{\{(CDA|CDA76)(?: ([^}]+))?\}\}`)

// loadMessage returns testdata/name as sent: the file is written with "\n"
// line ends and placeholders; segments end with "\r", or "\n" when the name
// contains _lf, or "\r\n" with _crlf.
func loadMessage(tb testing.TB, name string) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(tb, err)
	var failed error
	raw = placeholder.ReplaceAllFunc(raw, func(m []byte) []byte {
		sub := placeholder.FindSubmatch(m)
		file := string(sub[2])
		if file == "" {
			file = "n1-pdf.xml"
		}
		doc, err := os.ReadFile(filepath.Join("..", "..", "cda", "testdata", file))
		if err != nil {
			failed = err
			return nil
		}
		enc := base64.StdEncoding.EncodeToString(doc)
		if string(sub[1]) == "CDA76" {
			var lines []string
			for len(enc) > 76 {
				lines, enc = append(lines, enc[:76]), enc[76:]
			}
			enc = strings.Join(append(lines, enc), "\n")
		}
		return []byte(enc)
	})
	require.NoError(tb, failed)
	eol := "\r"
	switch {
	case strings.Contains(name, "_crlf"):
		eol = "\r\n"
	case strings.Contains(name, "_lf"):
		eol = "\n"
	}
	return bytes.ReplaceAll(bytes.TrimRight(raw, "\n"), []byte("\n"), []byte(eol))
}

// testdataMessages returns the names of the messages of testdata.
func testdataMessages(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.hl7"))
	require.NoError(tb, err)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	return names
}

func parseMessage(tb testing.TB, raw []byte) *hl7.Message {
	tb.Helper()
	msg, err := hl7.Parse(raw, hl7.ParseOptions{})
	require.NoError(tb, err)
	return msg
}

// change replaces old by new in the lines of a message that start with prefix.
type change struct{ prefix, old, new string }

// edit returns the message of testdata/name (a "\r" one) after changes.
func edit(tb testing.TB, name string, changes ...change) *hl7.Message {
	tb.Helper()
	lines := strings.Split(string(loadMessage(tb, name)), "\r")
	for _, c := range changes {
		changed := false
		for i, l := range lines {
			if strings.HasPrefix(l, c.prefix) && strings.Contains(l, c.old) {
				lines[i], changed = strings.Replace(l, c.old, c.new, 1), true
			}
		}
		require.True(tb, changed, "no line %q with %q in %s", c.prefix, c.old, name)
	}
	return parseMessage(tb, []byte(strings.Join(lines, "\r")))
}

// blob summarises the bytes of a document in a golden file.
type blob struct {
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
}

func summary(b []byte) *blob {
	if b == nil {
		return nil
	}
	sum := sha256.Sum256(b)
	return &blob{Bytes: len(b), SHA256: hex.EncodeToString(sum[:])}
}

// goldenReport is a report as the golden files show it: the CDA and PDF
// bytes are replaced by their length and hash; the warnings are the
// located ones of the ACK.
type goldenReport struct {
	dispatch.Report
	Document    goldenDocument
	OtherFormat *goldenDocument `json:",omitempty"`
	Warnings    []string        `json:",omitempty"`
}

type goldenDocument struct {
	dispatch.Document
	CDA *blob
	PDF *blob
}

func goldenJSON(tb testing.TB, r dispatch.Report, warnings []hl7.ErrDetail) []byte {
	tb.Helper()
	g := goldenReport{Report: r, Document: goldenDocument{Document: r.Document, CDA: summary(r.Document.CDA), PDF: summary(r.Document.PDF)}}
	if d := r.OtherFormat; d != nil {
		g.OtherFormat = &goldenDocument{Document: *d, CDA: summary(d.CDA), PDF: summary(d.PDF)}
	}
	for _, w := range warnings {
		g.Warnings = append(g.Warnings, fmt.Sprintf("%s %d %s: %s", where(w), w.Code, w.Severity, w.Msg))
	}
	out, err := json.MarshalIndent(g, "", "  ")
	require.NoError(tb, err)
	return append(out, '\n')
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./dispatch/hl7intake -run TestToReport -update")
	require.Equal(t, string(want), string(got))
}

// refusal is the expected rejection of a message.
type refusal struct {
	ack  string
	at   string // ERR-2: SEG^sequence^field, as the ACK writes it
	code int
	msg  string // a part of ERR-8
}

// where formats a location like ERR-2.
func where(d hl7.ErrDetail) string {
	loc := []string{d.Segment, "", ""}
	if d.Sequence > 0 {
		loc[1] = fmt.Sprint(d.Sequence)
	}
	if d.Field > 0 {
		loc[2] = fmt.Sprint(d.Field)
	}
	return strings.TrimRight(strings.Join(loc, "^"), "^")
}

func requireRefusal(t *testing.T, err error, want refusal) {
	t.Helper()
	var rej *rejection
	require.True(t, errors.As(err, &rej), "want a refusal, got %v", err)
	require.Equal(t, want.ack, rej.code, rej.detail.Msg)
	require.Equal(t, want.at, where(rej.detail), rej.detail.Msg)
	require.Equal(t, want.code, rej.detail.Code, rej.detail.Msg)
	require.Equal(t, "E", rej.detail.Severity)
	require.Contains(t, rej.detail.Msg, want.msg)
}

// TestToReport maps every message of testdata: the accepted ones against
// testdata/golden/<name>.json, the refused ones against their ERR.
func TestToReport(t *testing.T) {
	t.Parallel()
	refused := map[string]refusal{
		"adt_a01_unsupported_type.hl7":    {"AE", "MSH^1^9", hl7.CodeUnsupportedMessageType, "le type de message ADT^A01 n'est pas pris en charge"},
		"mdm_t01_unsupported_event.hl7":   {"AE", "MSH^1^9", hl7.CodeUnsupportedEvent, "l'événement MDM^T01 n'est pas pris en charge"},
		"mdm_t02_txa12_mismatch.hl7":      {"AE", "TXA^1^12", hl7.CodeDataType, `TXA-12 (identifiant du document) "1.2.250.1.999.42.1.4^LDL-20240312-000124" n'est pas l'identifiant du CDA (ClinicalDocument/id) "1.2.250.1.999.42.1.4^LDL-20240312-000123"`},
		"mdm_t02_txa17_not_validated.hl7": {"AE", "TXA^1^17", hl7.CodeTableValue, `TXA-17 (statut de complétude) vaut "IP"`},
		"mdm_t04_no_id.hl7":               {"AE", "TXA^1^12", hl7.CodeRequiredField, "TXA-12 (identifiant du document) est vide"},
		"mdm_t10_obx11_mismatch.hl7":      {"AE", "OBX^1^11", hl7.CodeTableValue, `OBX-11 (statut) vaut "F" mais l'événement MDM^T10 demande un remplacement : C attendu`},
		"oru_r01_bad_flag.hl7":            {"AE", "OBX^2^5", hl7.CodeTableValue, `OBX-5 (valeur) de MASQUE_PS vaut "Oui" : Y ou N attendu`},
		"oru_r01_empty_rct.hl7":           {"AE", "PRT^3^5", hl7.CodeRequiredField, "le PRT 3 (RCT) ne nomme ni personne (PRT-5)"},
		"oru_r01_ins_mismatch.hl7":        {"AE", "PID^1^3", hl7.CodeDataType, "l'INS de PID-3, 299127512300012 (1.2.250.1.213.1.4.10), n'est pas celui du recordTarget du CDA de l'OBX 1, 280017512345678"},
		"oru_r01_no_pid.hl7":              {"AE", "PID^1", hl7.CodeSegmentSequence, "le segment PID est absent"},
		"oru_r01_obr25_not_final.hl7":     {"AE", "OBR^1^25", hl7.CodeTableValue, `OBR-25 (statut du résultat) vaut "P" : seul un document validé est envoyé`},
		"oru_r01_orc_mismatch.hl7":        {"AE", "ORC^1^1", hl7.CodeTableValue, `ORC-1 (demande) vaut "NW" mais OBX-11 C demande un remplacement : RO attendu`},
	}
	accepted := []string{
		"mdm_t02_new.hl7", "mdm_t04_delete.hl7", "mdm_t04_delete_no_document.hl7", "mdm_t10_replace.hl7",
		"oru_r01.hl7", "oru_r01_bad_body.hl7", "oru_r01_correction.hl7", "oru_r01_deletion.hl7", "oru_r01_fallback_correspondents.hl7",
		"oru_r01_latin9.hl7", "oru_r01_n3_lf.hl7", "oru_r01_new_flags.hl7", "oru_r01_volet_complete.hl7", "oru_r01_wrapped_base64_crlf.hl7",
	}
	var covered []string
	for name := range refused {
		covered = append(covered, name)
	}
	covered = append(covered, accepted...)
	sort.Strings(covered)
	require.Equal(t, testdataMessages(t), covered, "every testdata message has a case")

	for _, name := range accepted {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, warnings, err := toReport(parseMessage(t, loadMessage(t, name)))
			require.NoError(t, err)
			golden(t, strings.TrimSuffix(name, ".hl7")+".json", goldenJSON(t, r, warnings))
		})
	}
	for name, want := range refused {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, _, err := toReport(parseMessage(t, loadMessage(t, name)))
			requireRefusal(t, err, want)
		})
	}
}

// TestToReportVariants checks the rules one at a time on edited messages.
func TestToReportVariants(t *testing.T) {
	t.Parallel()
	const (
		newFlags   = "oru_r01_new_flags.hl7"
		correction = "oru_r01_correction.hl7"
		mdmNew     = "mdm_t02_new.hl7"
		mdmDelete  = "mdm_t04_delete.hl7"
	)
	// In newFlags, OBX 2 to 11 are the flags in the order of the volet (OBX 9
	// DESTMSSANTEPAT), OBX 12 and 13 the bodies, PRT 7 the REPLY.
	refusedTests := []struct {
		name string
		msg  *hl7.Message
		want refusal
	}{
		{"no document OBX", edit(t, newFlags, change{"OBX|1|", "|ED|", "|RP|"}, change{"OBX|1|", "^XML^", "^PDF^"}),
			refusal{"AE", "OBX^1^5", hl7.CodeRequiredField, "aucun OBX de type ED ne porte le document CDA"}},
		{"the document's OBX-2 is not ED", edit(t, newFlags, change{"OBX|1|", "|ED|", "|RP|"}),
			refusal{"AE", "OBX^1^2", hl7.CodeDataType, `OBX-2 (type de valeur) du document vaut "RP" : ED attendu`}},
		{"OBX-11 empty", edit(t, newFlags, change{"OBX|1|", "||||||F", ""}),
			refusal{"AE", "OBX^1^11", hl7.CodeRequiredField, "OBX-11 (statut) du document est vide"}},
		{"OBX-11 unknown", edit(t, newFlags, change{"OBX|1|", "||||||F", "||||||X"}),
			refusal{"AE", "OBX^1^11", hl7.CodeTableValue, `OBX-11 (statut) du document vaut "X"`}},
		{"XO is not the volet's RO", edit(t, correction, change{"ORC|", "ORC|RO|", "ORC|XO|"}),
			refusal{"AE", "ORC^1^1", hl7.CodeTableValue, `ORC-1 (demande) vaut "XO" mais OBX-11 C demande un remplacement : RO attendu`}},
		{"ORC-1 empty", edit(t, newFlags, change{"ORC|", "ORC|NW|", "ORC||"}),
			refusal{"AE", "ORC^1^1", hl7.CodeRequiredField, "ORC-1 (demande) est vide"}},
		{"deletion with ORC NW", edit(t, "oru_r01_deletion.hl7", change{"ORC|", "ORC|CA|", "ORC|NW|"}),
			refusal{"AE", "ORC^1^1", hl7.CodeTableValue, "CA attendu"}},
		{"MDM T04 with ORC NW", edit(t, mdmDelete, change{"ORC|", "ORC|CA", "ORC|NW"}),
			refusal{"AE", "ORC^1^1", hl7.CodeTableValue, `ORC-1 (demande) vaut "NW" mais l'événement MDM^T04 demande une suppression : CA attendu`}},
		{"no ORC", edit(t, newFlags, change{"ORC|", "ORC|", "NTE|"}),
			refusal{"AE", "ORC^1", hl7.CodeSegmentSequence, "le segment ORC est absent : ORC-1 doit valoir NW pour un nouveau document"}},
		{"OBR-25 preliminary", edit(t, newFlags, change{"OBR|", "||F", "||P"}),
			refusal{"AE", "OBR^1^25", hl7.CodeTableValue, `OBR-25 (statut du résultat) vaut "P"`}},
		{"no TXA", edit(t, mdmNew, change{"TXA|", "TXA|", "NTE|"}),
			refusal{"AE", "TXA^1", hl7.CodeSegmentSequence, "le segment TXA est absent"}},
		{"TXA-17 empty", edit(t, mdmNew, change{"TXA|", "|AU|", "||"}),
			refusal{"AE", "TXA^1^17", hl7.CodeRequiredField, "TXA-17 (statut de complétude) est vide"}},
		{"TXA-13 is not the CDA parent", edit(t, "mdm_t10_replace.hl7", change{"TXA|", "|1.2.250.1.999.77.3.20240104.1|", "|1.2.250.1.999.77.3.20240104.9|"}),
			refusal{"AE", "TXA^1^13", hl7.CodeDataType, `TXA-13 (document remplacé) "1.2.250.1.999.77.3.20240104.9" n'est pas le relatedDocument/parentDocument/id du CDA "1.2.250.1.999.77.3.20240104.1"`}},
		{"ORU deletion without the CDA", edit(t, "oru_r01_deletion.hl7", change{"OBX|1|", "^Base64^", "^Base64^||||||D|"}),
			refusal{"AE", "OBX^1^5", hl7.CodeRequiredField, "OBX-5.5 (données) du document est vide"}},
		{"document not Base64", edit(t, newFlags, change{"OBX|1|", "^Base64^", "^A^"}),
			refusal{"AE", "OBX^1^5", hl7.CodeDataType, `OBX-5.4 (encodage) du document vaut "A" : Base64 attendu`}},
		{"document not XML", edit(t, newFlags, change{"OBX|1|", "^XML^", "^PDF^"}),
			refusal{"AE", "OBX^1^5", hl7.CodeDataType, `OBX-5.3 (sous-type) du document vaut "PDF"`}},
		{"bad base64", edit(t, newFlags, change{"OBX|1|", "^Base64^", "^Base64^!!"}),
			refusal{"AE", "OBX^1^5", hl7.CodeDataType, "OBX-5.5 (données) du document n'est pas du base64"}},
		{"not a CDA", edit(t, newFlags, change{"OBX|1|", "^Base64^", "^Base64^PGh0bWw+PC9odG1sPg==||||||F|"}),
			refusal{"AE", "OBX^1^5", hl7.CodeDataType, "OBX-5.5 n'est pas un document CDA R2"}},
		{"a PRT naming no one but by an unusable address", edit(t, newFlags, change{"PRT||UC||RCT^Result Copies To^participation||||||12", "appli-dossier@", "appli@dossier@"}),
			refusal{"AE", "PRT^5^15", hl7.CodeDataType, "PRT-15 du PRT 5 (RCT) : adresse de messagerie invalide : plus d'un @ ; et le PRT ne nomme personne d'autre"}},
		{"flag empty", edit(t, newFlags, change{"OBX|9|", "||Y^^", "||^^"}),
			refusal{"AE", "OBX^9^5", hl7.CodeRequiredField, "OBX-5 (valeur) de DESTMSSANTEPAT est vide : Y ou N attendu"}},
		{"flag given twice, Y and N", edit(t, newFlags, change{"OBX|3|", "INVISIBLE_PATIENT^", "DESTMSSANTEPAT^"}),
			refusal{"AE", "OBX^9^5", hl7.CodeTableValue, "DESTMSSANTEPAT est donné deux fois, Y et N"}},
		{"a flag the service needs is missing", edit(t, newFlags, change{"OBX|3|", "INVISIBLE_PATIENT^", "AUTRE^"}),
			refusal{"AE", "OBX^2^3", hl7.CodeRequiredField, "l'OBX de la métadonnée INVISIBLE_PATIENT est absent"}},
		{"PID-5 empty", edit(t, newFlags, change{"PID|", "||DUPONT^Marie^Marie Louise^^^^L~MARTIN-TEST^Marie", "||"}),
			refusal{"AE", "PID^1^5", hl7.CodeRequiredField, "PID-5 (nom du patient) est vide"}},
		{"PID-3 empty", edit(t, newFlags, change{"PID|", "280017512345678^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS^^20200101~IPP0012345^^^CH_TEST&1.2.250.1.999.42.1.1&ISO^PI", ""}),
			refusal{"AE", "PID^1^3", hl7.CodeRequiredField, "PID-3 (identifiants du patient) est vide"}},
		{"HL7 version 3", edit(t, newFlags, change{"MSH|", "|P|2.5|", "|P|3.0|"}),
			refusal{"AE", "MSH^1^12", hl7.CodeUnsupportedVersion, `MSH-12 : la version HL7 "3.0" n'est pas prise en charge`}},
		{"a third document", edit(t, newFlags, change{"OBX|12|", "CORPSMAIL_PS^Corps du mail pour un PS^MetaDMPMSS||^TEXT^^Base64^", "11490-0^Lettre de sortie^LN||^TEXT^XML^Base64^"},
			change{"OBX|13|", "CORPSMAIL_PATIENT^Corps du mail pour le patient^MetaDMPMSS||^TEXT^^Base64^", "11490-0^Lettre de sortie^LN||^TEXT^XML^Base64^"}),
			refusal{"AE", "OBX^13^5", hl7.CodeSegmentSequence, "l'OBX 13 est le document n°3 du message : un message ORU porte un ou deux documents"}},
		{"two documents in an MDM", edit(t, mdmNew, change{"OBX|12|", "CORPSMAIL_PS^Corps du mail pour un PS^MetaDMPMSS||^text^^Base64^", "11490-0^Lettre de sortie^LN||^text^XML^Base64^"}),
			refusal{"AE", "OBX^12^5", hl7.CodeSegmentSequence, "un message MDM porte un seul document"}},
	}
	for _, tt := range refusedTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := toReport(tt.msg)
			requireRefusal(t, err, tt.want)
		})
	}

	acceptedTests := []struct {
		name string
		msg  *hl7.Message
		// warned is the warning the ACK carries (ERR-2 and a part of
		// ERR-8), empty for none beyond those of the unedited message.
		warned refusal
		check  func(t *testing.T, r dispatch.Report)
	}{
		{"correction with OBR-25 C", edit(t, correction, change{"OBR|", "||F", "||C"}), refusal{}, func(t *testing.T, r dispatch.Report) {
			require.Equal(t, dispatch.ActionReplace, r.Action)
			require.Equal(t, "1.2.250.1.999.77.3.20240104.1", r.Document.ParentID)
		}},
		{"OBR-25 empty: optional", edit(t, newFlags, change{"OBR|", "||F", "||"}), refusal{}, func(t *testing.T, r dispatch.Report) {
			require.Equal(t, dispatch.ActionNew, r.Action)
		}},
		{"OBR-25 C for a new document: the volet's examples write F or C whatever OBX-11", edit(t, newFlags, change{"OBR|", "||F", "||C"}), refusal{},
			func(t *testing.T, r dispatch.Report) { require.Equal(t, dispatch.ActionNew, r.Action) }},
		{"no OBR: warned", edit(t, newFlags, change{"OBR|", "OBR|", "NTE|"}),
			refusal{"W", "OBR^1", hl7.CodeSegmentSequence, "le segment OBR, requis par le volet, est absent"},
			func(t *testing.T, r dispatch.Report) { require.Equal(t, "11490-0", r.Document.Code) }},
		{"OBR-4 empty: the CDA's code", edit(t, newFlags, change{"OBR|", "11490-0^Lettre de sortie^LN", ""}),
			refusal{"W", "OBR^1^4", hl7.CodeRequiredField, "OBR-4 (code du document), requis par le volet, est vide : le code du CDA"},
			func(t *testing.T, r dispatch.Report) { require.Equal(t, "11490-0", r.Document.Code) }},
		{"MSH-21 empty", edit(t, newFlags, change{"MSH|", "|||2.1^CISIS_CDA_HL7_V2", ""}),
			refusal{"W", "MSH^1^21", hl7.CodeRequiredField, "MSH-21 (profil (2.1^CISIS_CDA_HL7_V2)), requis par le volet, est vide"}, nil},
		{"ORU in 2.6", edit(t, newFlags, change{"MSH|", "|P|2.5|", "|P|2.6|"}),
			refusal{"W", "MSH^1^12", hl7.CodeUnsupportedVersion, "MSH-12 : version 2.6, le volet utilise 2.5 pour ORU^R01"}, nil},
		{"an unknown metadata code", edit(t, newFlags, change{"OBX|10|", "ACK_RECEPTION^", "ACK_NOUVEAU^"}),
			refusal{"W", "OBX^10^3", hl7.CodeTableValue, `OBX-3 : "ACK_NOUVEAU" n'est pas une métadonnée MetaDMPMSS du volet : ignorée`},
			func(t *testing.T, r dispatch.Report) { require.False(t, r.Flags.DeliveryAck) }},
		{"a flag the service can do without is missing", edit(t, newFlags, change{"OBX|7|", "DESTDMP^", "AUTRE^"}),
			refusal{"W", "OBX^2^3", hl7.CodeRequiredField, "l'OBX de la métadonnée DESTDMP, requis par le volet, est absent : N retenu"},
			func(t *testing.T, r dispatch.Report) { require.False(t, r.Flags.ToDMP) }},
		{"no flag at all: the professionals only", edit(t, "oru_r01.hl7"), refusal{"W", "OBX^1^3", hl7.CodeRequiredField, "aucune métadonnée MetaDMPMSS"},
			func(t *testing.T, r dispatch.Report) { require.Equal(t, dispatch.DefaultFlags, r.Flags) }},
		{"REPLY without address: ignored", edit(t, newFlags, change{"PRT||UC||REPLY", "^^X.400^Secretariat.Cardio@ch-test.mssante.fr", "^PRN^PH^^^^0100000000"}),
			refusal{"W", "PRT^7^15", hl7.CodeRequiredField, "le PRT 7 (REPLY) n'a pas d'adresse en PRT-15"},
			func(t *testing.T, r dispatch.Report) { require.Empty(t, r.ReplyTo) }},
		{"PRT-15 carrying a CRLF and a Bcc: left out", edit(t, newFlags, change{"PRT||UC||RCT^Result Copies To^participation|899900000007", "Julie.Roux@medecin-demo.mssante.fr", `Julie.Roux@medecin-demo.mssante.fr\X0D0A\bcc:evil@attacker.example`}),
			refusal{"W", "PRT^3^15", hl7.CodeDataType, "PRT-15 du PRT 3 : adresse de messagerie invalide : plus d'un @ ; elle est ignorée"},
			func(t *testing.T, r dispatch.Report) {
				require.Equal(t, "ROUX", r.Recipients[1].Family, "the recipient stays, by RPPS")
				require.Empty(t, r.Recipients[1].Address)
			}},
		{"REPLY address with a space: none", edit(t, newFlags, change{"PRT||UC||REPLY", "Secretariat.Cardio@", "Secretariat Cardio@"}),
			refusal{"W", "PRT^7^15", hl7.CodeDataType, "PRT-15 du PRT 7 : adresse de messagerie invalide"},
			func(t *testing.T, r dispatch.Report) { require.Empty(t, r.ReplyTo) }},
		{"PRT-15 in capitals: lower-cased", edit(t, newFlags), refusal{}, func(t *testing.T, r dispatch.Report) {
			require.Equal(t, "julie.roux@medecin-demo.mssante.fr", r.Recipients[1].Address)
			require.Equal(t, "secretariat.cardio@ch-test.mssante.fr", r.ReplyTo)
		}},
		{"body of another type: the default body", edit(t, newFlags, change{"OBX|12|", "|ED|", "|NM|"}),
			refusal{"W", "OBX^12^5", hl7.CodeDataType, `CORPSMAIL_PS illisible (OBX-2 (type de valeur) de CORPSMAIL_PS vaut "NM", ED attendu)`},
			func(t *testing.T, r dispatch.Report) { require.Empty(t, r.BodyProfessional) }},
		{"second CORPSMAIL_PS: ignored", edit(t, newFlags, change{"OBX|13|", "CORPSMAIL_PATIENT^", "CORPSMAIL_PS^"}),
			refusal{"W", "OBX^13^3", hl7.CodeSegmentSequence, "un second OBX CORPSMAIL_PS"},
			func(t *testing.T, r dispatch.Report) {
				require.NotEmpty(t, r.BodyProfessional)
				require.Empty(t, r.BodyPatient)
			}},
		{"NTE FIN of DESTMSSANTEPAT", edit(t, newFlags), refusal{}, func(t *testing.T, r dispatch.Report) {
			require.True(t, r.Flags.PatientNoReply)
		}},
		{"NTE without FIN", edit(t, newFlags, change{"NTE|", "|||FIN", "|||RE"}), refusal{}, func(t *testing.T, r dispatch.Report) {
			require.False(t, r.Flags.PatientNoReply)
		}},
		{"flags in lower case and spaces", edit(t, newFlags, change{"OBX|2|", "||N^^", "|| y ^^"}), refusal{}, func(t *testing.T, r dispatch.Report) {
			require.True(t, r.Flags.MaskedForPros)
		}},
		{"flags without coding system", edit(t, newFlags, change{"OBX|", "^MetaDMPMSS|", "|"}), refusal{}, func(t *testing.T, r dispatch.Report) {
			require.True(t, r.Flags.Present)
			require.True(t, r.Flags.ToPatient)
			require.Equal(t, "Bonjour,\nvoici votre lettre de liaison de sortie.\nLe service de cardiologie.", r.BodyPatient)
		}},
		{"MDM T04 with an empty document", edit(t, mdmDelete, change{"OBX|1|", "^Base64^", "^Base64^||||||D|"}), refusal{}, func(t *testing.T, r dispatch.Report) {
			require.Equal(t, dispatch.ActionDelete, r.Action)
			require.Equal(t, "1.2.250.1.999.42.1.4^LDL-20240312-000123", r.Document.ID)
			require.Empty(t, r.Document.CDA)
			require.Equal(t, "11490-0", r.Document.Code)
		}},
		{"MDM T04 without CDA nor TXA-2: the type of OBR-4", edit(t, "mdm_t04_delete_no_document.hl7", change{"TXA|", "|18748-4^CR d'imagerie médicale^LN|", "||"}),
			refusal{"W", "TXA^1^2", hl7.CodeRequiredField, "TXA-2 (type de document), requis par le volet, est vide"},
			func(t *testing.T, r dispatch.Report) {
				require.Equal(t, "18748-4", r.Document.Code)
				require.Equal(t, "CR d'imagerie médicale", r.Document.Title)
			}},
		{"MDM without TXA-12 takes the CDA id", edit(t, mdmNew, change{"TXA|", "LDL-20240312-000123^^1.2.250.1.999.42.1.4^ISO", ""}), refusal{}, func(t *testing.T, r dispatch.Report) {
			require.Equal(t, "1.2.250.1.999.42.1.4^LDL-20240312-000123", r.Document.ID)
		}},
		{"MDM T10 without TXA-13 takes the CDA parent", edit(t, "mdm_t10_replace.hl7", change{"TXA|", "|1.2.250.1.999.77.3.20240104.1|", "||"}), refusal{}, func(t *testing.T, r dispatch.Report) {
			require.Equal(t, "1.2.250.1.999.77.3.20240104.1", r.Document.ParentID)
		}},
		{"PID-32 PROV: the INS is not qualified",
			edit(t, "oru_r01.hl7", change{"PID|", "|VALI", "|PROV"}), refusal{}, func(t *testing.T, r dispatch.Report) {
				require.Equal(t, "280017512345678", r.Patient.INS)
				require.False(t, r.Patient.INSQualified)
			}},
		{"RPPS without its prefix", edit(t, "oru_r01.hl7", change{"PRT|1|", "899900000002^", "99900000002^"}), refusal{}, func(t *testing.T, r dispatch.Report) {
			require.Equal(t, "899900000002", r.Recipients[0].NationalID)
			require.Equal(t, "99900000002", r.Recipients[0].RPPS)
		}},
		{"a local id is not a national id", edit(t, "oru_r01.hl7", change{"PRT|1|", "^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^L^^^IDNPS", "^CH_TEST&1.2.250.1.999.42.3&ISO^L^^^EI"}), refusal{},
			func(t *testing.T, r dispatch.Report) {
				require.Equal(t, dispatch.Recipient{Role: dispatch.RoleResultCopiesTo, Kind: dispatch.KindProfessional, Family: "DUPONT-DEMO", Given: "Claire"}, r.Recipients[0])
			}},
	}
	for _, tt := range acceptedTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, warnings, err := toReport(tt.msg)
			require.NoError(t, err)
			if tt.warned.ack != "" {
				i := slices.IndexFunc(warnings, func(w hl7.ErrDetail) bool { return where(w) == tt.warned.at })
				require.GreaterOrEqual(t, i, 0, "no warning at %s in %+v", tt.warned.at, warnings)
				require.Equal(t, "W", warnings[i].Severity)
				require.Equal(t, tt.warned.code, warnings[i].Code)
				require.Contains(t, warnings[i].Msg, tt.warned.msg)
				require.Contains(t, r.Warnings, dispatch.Warning{Msg: warnings[i].Msg}, "the report keeps it for its history")
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestLocate(t *testing.T) {
	t.Parallel()
	msg := func(name string) *hl7.Message { return parseMessage(t, loadMessage(t, name)) }
	tests := []struct {
		msg   *hl7.Message
		field string
		at    string
		code  int
	}{
		{msg("oru_r01_new_flags.hl7"), "control_id", "MSH^1^10", hl7.CodeRequiredField},
		{msg("oru_r01_new_flags.hl7"), "document.id", "OBX^1^5", hl7.CodeRequiredField},
		{msg("oru_r01_new_flags.hl7"), "document.cda", "OBX^1^5", hl7.CodeRequiredField},
		{msg("oru_r01_new_flags.hl7"), "action", "OBX^1^11", hl7.CodeTableValue},
		{msg("oru_r01_correction.hl7"), "document.parent_id", "OBX^1^5", hl7.CodeRequiredField},
		{msg("mdm_t10_replace.hl7"), "document.id", "TXA^1^12", hl7.CodeRequiredField},
		{msg("mdm_t10_replace.hl7"), "document.parent_id", "TXA^1^13", hl7.CodeRequiredField},
		{msg("mdm_t10_replace.hl7"), "action", "MSH^1^9", hl7.CodeUnsupportedEvent},
		{msg("mdm_t04_delete_no_document.hl7"), "document.cda", "OBX^1^5", hl7.CodeRequiredField},
		{msg("oru_r01_new_flags.hl7"), "flags.MASQUE_PS", "OBX^2^5", hl7.CodeTableValue},
		{msg("oru_r01_new_flags.hl7"), "flags.DESTMSSANTEPAT", "OBX^9^5", hl7.CodeTableValue},
		{msg("oru_r01_new_flags.hl7"), "flags.ACK_LECTURE_MSS", "OBX^11^5", hl7.CodeTableValue}, // sent as ACK_LECTURE
		{msg("mdm_t02_new.hl7"), "flags.INVISIBLE_REP_LEGAUX", "OBX^4^5", hl7.CodeTableValue},
		{msg("oru_r01.hl7"), "flags.DESTMSSANTEPS", "OBX^1^3", hl7.CodeRequiredField},
		{msg("oru_r01_new_flags.hl7"), "patient.mailbox", "PRT^6^15", hl7.CodeTableValue},
		{msg("oru_r01.hl7"), "patient.mailbox", "PID^1^3", hl7.CodeTableValue},
		{msg("oru_r01.hl7"), "patient.ins", "PID^1^32", hl7.CodeTableValue},
		{edit(t, "oru_r01.hl7", change{"PID|", "^INS~", "^XX~"}), "patient.ins", "PID^1^3", hl7.CodeRequiredField},
		{msg("oru_r01.hl7"), "flags.UNKNOWN", "", hl7.CodeInternal},
		{msg("oru_r01.hl7"), "recipients[0].kind", "", hl7.CodeInternal},
		{msg("oru_r01.hl7"), "", "", hl7.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			d := locate(tt.msg, tt.field)
			require.Equal(t, tt.at, where(d))
			require.Equal(t, tt.code, d.Code)
		})
	}
}

// TestLocateDomainErrors checks that the domain's errors on mapped reports
// point at the OBX that carries the offending flag.
func TestLocateDomainErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		msg   *hl7.Message
		field string
		at    string
	}{
		{"masked to professionals but sent to them", edit(t, "oru_r01_new_flags.hl7", change{"OBX|2|", "||N^^", "||Y^^"}), "flags.MASQUE_PS", "OBX^2^5"},
		{"secret connection for the patient alone", edit(t, "oru_r01_new_flags.hl7", change{"OBX|5|", "||N^^", "||Y^^"}, change{"OBX|8|", "||Y^^", "||N^^"},
			change{"OBX|7|", "||Y^^", "||N^^"}), "flags.CONNEXION_SECRETE", "OBX^5^5"},
		{"nothing to send", edit(t, "oru_r01_correction.hl7", change{"OBX|8|", "||Y^^", "||N^^"}), "flags.DESTMSSANTEPS", "OBX^8^5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, _, err := toReport(tt.msg)
			require.NoError(t, err)
			var invalid *dispatch.InvalidError
			require.ErrorAs(t, r.Flags.Validate(), &invalid)
			require.Equal(t, tt.field, invalid.Field)
			require.Equal(t, tt.at, where(locate(tt.msg, invalid.Field)))
		})
	}
}

// TestProfessionalID pins which person ids become national ids, and RPPS.
func TestProfessionalID(t *testing.T) {
	t.Parallel()
	rpps := hl7.HD{UniversalID: cda.OIDRPPS, UniversalIDType: "ISO"}
	for _, tc := range []struct {
		id, typ        string
		authority      hl7.HD
		national, rpps string
	}{
		{"810001234567", "IDNPS", rpps, "810001234567", "10001234567"},
		{" 810001234567 ", "IDNPS", hl7.HD{}, "810001234567", "10001234567"},
		{"0751234567", "IDNPS", rpps, "0751234567", ""},
		{"10001234567", "RPPS", hl7.HD{}, "810001234567", "10001234567"},
		{"10001234567", "", rpps, "810001234567", "10001234567"},
		{"10001234567", "ADELI", hl7.HD{}, "10001234567", ""}, // not an ADELI: kept as given
		{"751234567", "ADELI", hl7.HD{}, "0751234567", ""},
		{"751234567", "IDNPS", rpps, "751234567", ""}, // a bare ADELI only when typed ADELI
		{"8100012345X7", "IDNPS", rpps, "8100012345X7", ""},
		{"810001234567", "EI", hl7.HD{NamespaceID: "CH_TEST"}, "", ""}, // a local id
		{"", "IDNPS", rpps, "", ""},
	} {
		national, rpps := professionalID(hl7.XCN{ID: tc.id, TypeCode: tc.typ, AssigningAuthority: tc.authority})
		require.Equal(t, [2]string{tc.national, tc.rpps}, [2]string{national, rpps}, "%q %s %+v", tc.id, tc.typ, tc.authority)
	}
	for id, want := range map[string][2]string{
		"810001234567":  {"810001234567", "10001234567"},
		" 0751234567":   {"0751234567", ""},
		"10001234567":   {"10001234567", ""},
		"8100012345X7":  {"8100012345X7", ""},
		"8100012345678": {"8100012345678", ""},
	} {
		national, rpps := nationalID(id)
		require.Equal(t, want, [2]string{national, rpps}, "nationalID(%q)", id)
	}
}

// TestLocateDomainFields checks that the HL7 edge points at every field the
// domain may name in an InvalidError or a Warning (dispatch.LocatedFields,
// and each flag of dispatch.Flags as dispatch.FieldFlag names it), in an ORU
// and in an MDM: a field renamed on one side only would turn a precise ERR
// into code 207.
func TestLocateDomainFields(t *testing.T) {
	t.Parallel()
	fields := slices.Clone(dispatch.LocatedFields)
	flags := reflect.TypeFor[dispatch.Flags]()
	for i := range flags.NumField() {
		if name, _, _ := strings.Cut(flags.Field(i).Tag.Get("json"), ","); name != "present" && name != "FIN" {
			fields = append(fields, dispatch.FieldFlag(name))
		}
	}
	for _, file := range []string{"oru_r01.hl7", "mdm_t02_new.hl7"} {
		msg, err := hl7.Parse(loadMessage(t, file), hl7.ParseOptions{})
		require.NoError(t, err)
		for _, f := range fields {
			d := locate(msg, f)
			require.NotEqual(t, hl7.CodeInternal, d.Code, "%s: %s is not located", file, f)
			require.NotEmpty(t, d.Segment, "%s: %s", file, f)
		}
		require.Equal(t, hl7.CodeInternal, locate(msg, "patient.shoe_size").Code, "an unknown field")
	}
}
