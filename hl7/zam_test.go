package hl7

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// goldenZAM compares got with testdata/zam/name, or rewrites the file with
// -update; segments are stored one a line ("\n" for the "\r" terminator).
func goldenZAM(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "zam", name)
	readable := strings.ReplaceAll(string(got), "\r", "\n")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(readable), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run %s -update to create the golden file", t.Name())
	require.Equal(t, string(want), readable)
}

// testZAM is a delivery acknowledgement of the volet's example: the PFI-X of
// Organisation-X answers SIL-Y of labo about its message 015.
func testZAM() ZAM {
	paris := time.FixedZone("CEST", 2*3600)
	return ZAM{
		Event:                ZAMDelivery,
		ControlID:            "018",
		Time:                 time.Date(2021, 6, 6, 9, 34, 0, 0, paris),
		SendingApplication:   HD{NamespaceID: "PFI-X"},
		SendingFacility:      HD{NamespaceID: "Organisation-X"},
		ReceivingApplication: HD{NamespaceID: "SIL-Y"},
		ReceivingFacility:    HD{NamespaceID: "labo"},
		EventTime:            time.Date(2021, 10, 5, 15, 29, 8, 0, paris),
		OriginalControlID:    "015",
		RecipientAddress:     "adam.hoda@medecin.mssante.fr",
		RecipientID:          "801234567897",
	}
}

func TestBuildZAMGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*ZAM)
	}{
		{"z02_delivered.hl7", func(*ZAM) {}},
		{"z03_read.hl7", func(z *ZAM) { z.Event, z.ControlID = ZAMRead, "019" }},
		{"z02_failed.hl7", func(z *ZAM) { z.Error = &ZAMError{Code: "550"} }},
		{"z03_failed.hl7", func(z *ZAM) {
			z.Event, z.ControlID = ZAMRead, "020"
			z.Error = &ZAMError{Code: "902", Text: "patient inconnu | INS absent"}
		}},
		{"z02_failed_no_code.hl7", func(z *ZAM) { z.Error = &ZAMError{Text: "DSN failed 5.4.4"} }},
		{"z03_failed_no_code.hl7", func(z *ZAM) {
			z.Event, z.ControlID = ZAMRead, "021"
			z.Error = &ZAMError{}
		}},
		{"z02_full_hd_test_processing.hl7", func(z *ZAM) {
			z.SendingApplication = HD{NamespaceID: "MSSDISPATCH", UniversalID: "1.2.250.1.999.1", UniversalIDType: "ISO"}
			z.SendingFacility = HD{NamespaceID: "CH-DEMO", UniversalID: "1.2.250.1.999", UniversalIDType: "ISO"}
			z.ProcessingID = "T"
			z.RecipientID = ""
			z.EventTime = time.Time{}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			z := testZAM()
			tt.mutate(&z)
			m, err := BuildZAM(z)
			require.NoError(t, err)
			goldenZAM(t, tt.name, m.Encode())
		})
	}
}

// TestBuildZAMVoletExamples checks the built messages against the official
// examples of ansforge/hl7V2-exemples (Vague 2, TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1,
// ORU/Transmission initiale ORU, "Message metier reception MSS" and
// "Message metier lecture MSS"), up to what Encode normalises (no trailing
// empty field) and the choices the volet leaves open: MSH-7 has seconds,
// MSH-18 is always UNICODE UTF-8, and OBX-5.3 is expandedYes-NoIndicator as
// the volet's constraints say (the Z03 example writes HL70136).
func TestBuildZAMVoletExamples(t *testing.T) {
	t.Parallel()
	z02 := "MSH|^~\\&|PFI-X|Organisation-X|SIL-Y|labo|202106060934||ZAM^Z02^ZAM_Z01|018|P|2.6|||||FRA|8859/15|||2.1^CISIS_CDA_HL7_V2\n" +
		"EVN||20211005152908\n" +
		"OBX|1|CWE|ACK_RECEPTION_MSS^Accusé de réception MSSanté^AckMetierZAM|015|Y^^expandedYes-NoIndicator||||||F|\n" +
		"OBX|2|XTN|DESTINATAIRE_MSS^Destinataire MSSanté^AckMetierZAM|801234567897|^^X.400^adam.hoda@medecin.mssante.fr||||||F|\n"
	z03 := "MSH|^~\\&|PFI-X|Organisation-X|SIL-Y|labo|202106070933||ZAM^Z03^ZAM_Z01|019|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2\n" +
		"EVN||20211005152908\n" +
		"OBX|1|CWE|ACK_LECTURE_MSS^Accusé de lecture^AckMetierZAM|015|Y^^HL70136||||||F|\n" +
		"OBX|2|XTN|LECTEUR_MSS^Lecteur du courriel MSSanté^AckMetierZAM|801234567897|^^X.400^adam.hoda@medecin.mssante.fr||||||F|\n"
	normalise := func(s string) string {
		s = strings.ReplaceAll(s, "|F|\n", "|F\n")
		s = strings.ReplaceAll(s, "8859/15", CharsetUTF8)
		s = strings.Replace(s, "0934||ZAM", "093400||ZAM", 1)
		s = strings.Replace(s, "0933||ZAM", "093300||ZAM", 1)
		return strings.ReplaceAll(s, "Y^^HL70136", "Y^^expandedYes-NoIndicator")
	}

	z := testZAM()
	m, err := BuildZAM(z)
	require.NoError(t, err)
	require.Equal(t, normalise(z02), strings.ReplaceAll(string(m.Encode()), "\r", "\n"))

	z.Event, z.ControlID = ZAMRead, "019"
	z.Time = time.Date(2021, 6, 7, 9, 33, 0, 0, z.Time.Location())
	m, err = BuildZAM(z)
	require.NoError(t, err)
	require.Equal(t, normalise(z03), strings.ReplaceAll(string(m.Encode()), "\r", "\n"))
}

// TestBuildZAMRoundTrip parses what BuildZAM encodes and reads every field
// the DPI needs back with the package's own parser and typed views.
func TestBuildZAMRoundTrip(t *testing.T) {
	t.Parallel()
	for _, event := range []string{ZAMDelivery, ZAMRead} {
		t.Run(event, func(t *testing.T) {
			t.Parallel()
			z := testZAM()
			z.Event = event
			z.RecipientAddress = "dr.o'brien|x@medecin.mssante.fr" // a delimiter in a value is escaped
			errCode := map[string]string{ZAMDelivery: "552", ZAMRead: "904"}[event]
			z.Error = &ZAMError{Code: errCode, Text: "INS ^ différent"}
			m, err := BuildZAM(z)
			require.NoError(t, err)
			raw := m.Encode()
			require.NotContains(t, string(raw), "\n")

			got, err := Parse(raw, ParseOptions{})
			require.NoError(t, err)
			require.Equal(t, m.Encode(), got.Encode(), "Parse(Encode(m)) encodes the same")
			code, ev, structure := got.Type()
			require.Equal(t, []string{"ZAM", event, "ZAM_Z01"}, []string{code, ev, structure})
			require.Equal(t, "018", got.ControlID())
			require.Equal(t, "2.6", got.Version())
			require.Equal(t, "P", got.ProcessingID())
			require.Equal(t, CharsetUTF8, got.Charset)
			msh := MSH{got.Segment("MSH")}
			require.Equal(t, "PFI-X", msh.SendingApplication().NamespaceID)
			require.Equal(t, "Organisation-X", msh.SendingFacility().NamespaceID)
			require.Equal(t, "SIL-Y", msh.Get(5))
			require.Equal(t, "labo", msh.Get(6))
			require.Equal(t, "2.1", msh.Component(21, 1))
			require.Equal(t, "CISIS_CDA_HL7_V2", msh.Component(21, 2))
			require.Equal(t, "20211005152908", EVN{got.Segment("EVN")}.RecordedDateTime())

			obx := got.SegmentsNamed("OBX")
			require.Len(t, obx, 2)
			status, who := OBX{obx[0]}, OBX{obx[1]}
			want := map[string][2]string{ZAMDelivery: {ZAMCodeDeliveryAck, ZAMCodeRecipient}, ZAMRead: {ZAMCodeReadAck, ZAMCodeReader}}[event]
			require.Equal(t, want[0], status.Identifier().Identifier)
			require.Equal(t, "AckMetierZAM", status.Identifier().CodingSystem)
			require.Equal(t, "015", status.Get(4))
			require.Equal(t, "N", status.CodedValue().Identifier)
			require.Equal(t, "F", status.Status())
			require.Equal(t, want[1], who.Identifier().Identifier)
			require.Equal(t, "XTN", who.ValueType())
			require.Equal(t, "801234567897", who.Get(4))
			require.Equal(t, XTN{EquipmentType: "X.400", Email: z.RecipientAddress}, xtn(who.Value().Rep(0)))

			errSeg := got.Segment("ERR")
			require.NotNil(t, errSeg)
			require.Equal(t, "207", errSeg.Component(3, 1))
			require.Equal(t, "E", errSeg.Get(4))
			require.Equal(t, errCode, errSeg.Component(5, 1))
			require.Equal(t, ZAMErrorText(event, errCode), errSeg.Component(5, 2))
			system := map[string]string{ZAMDelivery: "SMTPERRORCODE", ZAMRead: "applicationErrorCondition"}[event]
			require.Equal(t, system, errSeg.Component(5, 3))
			require.Equal(t, "INS ^ différent", errSeg.Get(8))
		})
	}
}

// TestBuildZAMVoletExamplesWithError checks a Z02 and a Z03 saying N against
// the same official examples and the volet's constraints on the ERR segment
// of ZAM_Z01 (profils-messages): present when the first OBX-5 is N, ERR-3
// "207^Application error^messageErrorCondition", ERR-4 the severity (E),
// ERR-5 required: "<SMTP code>^<label>^SMTPERRORCODE" for Z02,
// "<code>^<label>^applicationErrorCondition" (900–906) for Z03, the labels of
// the volet's tables (error-codes).
func TestBuildZAMVoletExamplesWithError(t *testing.T) {
	t.Parallel()
	z02 := "MSH|^~\\&|PFI-X|Organisation-X|SIL-Y|labo|20210606093400||ZAM^Z02^ZAM_Z01|018|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2\n" +
		"EVN||20211005152908\n" +
		"OBX|1|CWE|ACK_RECEPTION_MSS^Accusé de réception MSSanté^AckMetierZAM|015|N^^expandedYes-NoIndicator||||||F\n" +
		"OBX|2|XTN|DESTINATAIRE_MSS^Destinataire MSSanté^AckMetierZAM|801234567897|^^X.400^adam.hoda@medecin.mssante.fr||||||F\n" +
		"ERR|||207^Application error^messageErrorCondition|E|552^Action abandonnée - Allocation de stockage dépassée. La boîte aux lettres du destinataire a dépassé ses limites.^SMTPERRORCODE\n"
	z03 := "MSH|^~\\&|PFI-X|Organisation-X|SIL-Y|labo|20210607093300||ZAM^Z03^ZAM_Z01|019|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2\n" +
		"EVN||20211005152908\n" +
		"OBX|1|CWE|ACK_LECTURE_MSS^Accusé de lecture^AckMetierZAM|015|N^^expandedYes-NoIndicator||||||F\n" +
		"OBX|2|XTN|LECTEUR_MSS^Lecteur du courriel MSSanté^AckMetierZAM|801234567897|^^X.400^adam.hoda@medecin.mssante.fr||||||F\n" +
		"ERR|||207^Application error^messageErrorCondition|E|906^Erreur 'Autre'^applicationErrorCondition|||document illisible\n"

	z := testZAM()
	z.Error = &ZAMError{Code: "552"}
	m, err := BuildZAM(z)
	require.NoError(t, err)
	require.Equal(t, z02, strings.ReplaceAll(string(m.Encode()), "\r", "\n"))

	z.Event, z.ControlID = ZAMRead, "019"
	z.Time = time.Date(2021, 6, 7, 9, 33, 0, 0, z.Time.Location())
	z.Error = &ZAMError{Text: "document illisible"}
	m, err = BuildZAM(z)
	require.NoError(t, err)
	require.Equal(t, z03, strings.ReplaceAll(string(m.Encode()), "\r", "\n"))
}

// TestBuildZAMErrorSegment checks every field of the ERR segment: ERR-5 is
// always filled, with the table's label, and ERR-8 carries an explanation
// that says more than the label.
func TestBuildZAMErrorSegment(t *testing.T) {
	t.Parallel()
	label554 := ZAMErrorText(ZAMDelivery, "554")
	tests := []struct {
		name  string
		event string
		err   ZAMError
		err5  [3]string // code, label, coding system
		err8  string
	}{
		{"Z02 code of the table", ZAMDelivery, ZAMError{Code: "550"},
			[3]string{"550", ZAMErrorText(ZAMDelivery, "550"), "SMTPERRORCODE"}, ""},
		{"Z02 code and its own label", ZAMDelivery, ZAMError{Code: "510", Text: " Mauvaise adresse courriel "},
			[3]string{"510", "Mauvaise adresse courriel", "SMTPERRORCODE"}, ""},
		{"Z02 code and an explanation", ZAMDelivery, ZAMError{Code: "552", Text: "DSN failed 5.2.2 smtp; 552 quota"},
			[3]string{"552", ZAMErrorText(ZAMDelivery, "552"), "SMTPERRORCODE"}, "DSN failed 5.2.2 smtp; 552 quota"},
		{"Z02 code outside the table", ZAMDelivery, ZAMError{Code: "499", Text: "gave up"},
			[3]string{"499", "gave up", "SMTPERRORCODE"}, ""},
		{"Z02 code outside the table, no text", ZAMDelivery, ZAMError{Code: "499"},
			[3]string{"499", "", "SMTPERRORCODE"}, ""},
		{"Z02 no code", ZAMDelivery, ZAMError{}, [3]string{"554", label554, "SMTPERRORCODE"}, ""},
		{"Z02 no code, an explanation", ZAMDelivery, ZAMError{Text: "DSN failed"},
			[3]string{"554", label554, "SMTPERRORCODE"}, "DSN failed"},
		{"Z03 code of the table", ZAMRead, ZAMError{Code: "902"},
			[3]string{"902", "Identifiant patient inconnu", "applicationErrorCondition"}, ""},
		{"Z03 other", ZAMRead, ZAMError{Code: "906"},
			[3]string{"906", "Erreur 'Autre'", "applicationErrorCondition"}, ""},
		{"Z03 no code", ZAMRead, ZAMError{}, [3]string{"906", "Erreur 'Autre'", "applicationErrorCondition"}, ""},
		{"Z03 no code, an explanation", ZAMRead, ZAMError{Text: "MDN processed/error"},
			[3]string{"906", "Erreur 'Autre'", "applicationErrorCondition"}, "MDN processed/error"},
		{"Z03 code and an explanation", ZAMRead, ZAMError{Code: "904", Text: "INS différent"},
			[3]string{"904", ZAMErrorText(ZAMRead, "904"), "applicationErrorCondition"}, "INS différent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			z := testZAM()
			z.Event = tt.event
			zerr := tt.err
			z.Error = &zerr
			m, err := BuildZAM(z)
			require.NoError(t, err)
			got, err := Parse(m.Encode(), ParseOptions{})
			require.NoError(t, err)
			require.Equal(t, m, got, "canonical: Parse(Encode(m)) equals m")
			require.Equal(t, "N", OBX{got.SegmentsNamed("OBX")[0]}.CodedValue().Identifier)
			e := got.Segment("ERR")
			require.NotNil(t, e)
			require.Nil(t, e.Field(1))
			require.Nil(t, e.Field(2))
			require.Equal(t, Comps("207", "Application error", "messageErrorCondition"), e.Field(3))
			require.Equal(t, "E", e.Get(4))
			require.Equal(t, tt.err5, [3]string{e.Component(5, 1), e.Component(5, 2), e.Component(5, 3)})
			require.Len(t, e.Field(5).Rep(0), 3)
			require.Nil(t, e.Field(6))
			require.Nil(t, e.Field(7))
			require.Equal(t, tt.err8, e.Get(8))
			require.LessOrEqual(t, e.NumFields(), 8)
		})
	}
}

func TestBuildZAMErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*ZAM)
		want   string
	}{
		{"no event", func(z *ZAM) { z.Event = "" }, `event ""`},
		{"DMP event", func(z *ZAM) { z.Event = "Z01" }, `event "Z01"`},
		{"no control id", func(z *ZAM) { z.ControlID = " " }, "MSH-10"},
		{"control id too long", func(z *ZAM) { z.ControlID = strings.Repeat("x", 200) }, "MSH-10"},
		{"no time", func(z *ZAM) { z.Time = time.Time{} }, "MSH-7"},
		{"bad processing id", func(z *ZAM) { z.ProcessingID = "X" }, "MSH-11"},
		{"no sending application", func(z *ZAM) { z.SendingApplication = HD{} }, "MSH-3"},
		{"no receiving application", func(z *ZAM) { z.ReceivingApplication = HD{UniversalIDType: "ISO"} }, "MSH-5"},
		{"no original control id", func(z *ZAM) { z.OriginalControlID = "" }, "OBX-4"},
		{"no address", func(z *ZAM) { z.RecipientAddress = "" }, "OBX-5.4"},
		{"not an address", func(z *ZAM) { z.RecipientAddress = "Dr Hoda" }, "OBX-5.4"},
		{"bad error code", func(z *ZAM) { z.Error = &ZAMError{Code: "5.1.1"} }, "ERR-5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			z := testZAM()
			tt.mutate(&z)
			m, err := BuildZAM(z)
			require.ErrorIs(t, err, ErrZAM)
			require.ErrorContains(t, err, tt.want)
			require.Nil(t, m)
		})
	}
}

func TestZAMErrorText(t *testing.T) {
	t.Parallel()
	require.Equal(t, "Mauvaise adresse courriel", ZAMErrorText(ZAMDelivery, "510"))
	require.Equal(t, "Identifiant patient inconnu", ZAMErrorText(ZAMRead, "902"))
	require.Equal(t, "Erreur 'Autre'", ZAMErrorText(ZAMRead, "906"))
	require.Equal(t, "Erreur 'Autre'", ZAMErrorText(ZAMRead, ZAMDefaultReadError))
	require.Contains(t, ZAMErrorText(ZAMDelivery, ZAMDefaultDeliveryError), "l'envoi a échoué")
	require.Empty(t, ZAMErrorText(ZAMRead, "550"), "an SMTP code is not a read error")
	require.Empty(t, ZAMErrorText(ZAMDelivery, "999"))
}
