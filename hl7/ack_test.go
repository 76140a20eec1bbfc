package hl7

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with testdata/golden/name, or rewrites the file with -update.
// ACKs are stored with "\n" instead of the "\r" segment terminator to stay
// readable in diffs (Encode never writes "\n" inside a value).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	readable := strings.ReplaceAll(string(got), "\r", "\n")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(readable), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run %s -update to create the golden file", t.Name())
	require.Equal(t, string(want), readable)
}

func TestNewACK(t *testing.T) {
	t.Parallel()

	now := time.Date(2024, 3, 12, 9, 31, 5, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name  string
		build func(t *testing.T) *Message
	}{
		{
			name: "aa_oru_r01.hl7",
			build: func(t *testing.T) *Message {
				orig := mustParse(t, readTestdata(t, "oru_r01_cr_bio_8859-15.hl7"))
				return NewACK(orig, AckAccept, "ACK-0001", now)
			},
		},
		{
			name: "ae_mdm_t02_errors.hl7",
			build: func(t *testing.T) *Message {
				orig := mustParse(t, readTestdata(t, "mdm_t02_cr_imagerie_utf8_lf.hl7"))
				return NewACK(orig, AckError, "ACK-0002", now,
					ErrDetail{Segment: "PID", Sequence: 3, Field: 32, Code: CodeTableValue, Msg: "identité non qualifiée: INS inutilisable"},
					ErrDetail{Segment: "PRT", Sequence: 10, Field: 15, Code: CodeRequiredField, Severity: "W", Msg: "adresse MSSanté absente | courrier papier"},
				)
			},
		},
		{
			name: "ar_unsupported_charset.hl7",
			build: func(t *testing.T) *Message {
				orig, err := Parse([]byte(`MSH|^~\&|RIS|CH|PFI|CH|20240405||MDM^T02^MDM_T02|RIS-77|P^T|2.6|||||FRA|UNICODE UTF-16`), ParseOptions{})
				pe := parseError(t, err)
				return NewACK(orig, AckReject, "ACK-0003", now, pe.Detail())
			},
		},
		{
			name: "ar_unparseable.hl7",
			build: func(t *testing.T) *Message {
				raw := []byte("\x00garbage MSH?^~\\&?APP?FAC?X?Y?2024??ORU^R01?CTRL-42?P?2.5\rPID|1")
				_, err := Parse(raw, ParseOptions{})
				pe := parseError(t, err)
				return NewACKFor(ControlIDOf(raw), AckReject, "ACK-0004", now, pe.Detail())
			},
		},
		{
			name: "ae_salvaged_header.hl7",
			build: func(t *testing.T) *Message {
				raw := []byte("MSH|^~|&|DPI|CH-X|PFI|CH-X|20240405||ORU^R01^ORU_R01|DPI-99|P|2.5|||||FRA|8859/15\rPID|1")
				orig, err := Parse(raw, ParseOptions{})
				pe := parseError(t, err)
				require.Nil(t, orig)
				return NewACK(SalvageHeader(raw), AckError, "ACK-0006", now, pe.Detail())
			},
		},
		{
			name: "ae_nul_in_msh.hl7",
			build: func(t *testing.T) *Message {
				raw := []byte("MSH|^~\\&|DPI|CH-X|PFI|CH-X|20240405||MDM^T02^MDM_T02|DPI-100|P|2.6|||||FRA|UNICODE UTF-8\x00\rPID|1")
				orig, err := Parse(raw, ParseOptions{})
				pe := parseError(t, err)
				require.Nil(t, orig)
				return NewACK(SalvageHeader(raw), AckError, "ACK-0007", now, pe.Detail())
			},
		},
		{
			name: "aa_defaults.hl7",
			build: func(t *testing.T) *Message {
				orig := &Message{}
				msh := NewSegment("MSH")
				msh.Set(3, Comps("APP", "1.2.3", "ISO"))
				msh.Set(9, Comps("ORU", "R01"))
				msh.Set(10, Text("X1"))
				orig.Add(msh)
				return NewACK(orig, AckAccept, "ACK-0005", now, ErrDetail{Code: CodeAccepted, Severity: "I", Msg: "déjà reçu"})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ack := tt.build(t)
			enc := ack.Encode()
			golden(t, tt.name, enc)

			// The ACK parses back to itself.
			back, err := Parse(enc, ParseOptions{})
			require.NoError(t, err)
			require.Equal(t, ack, back)
			code, _, structure := back.Type()
			require.Equal(t, "ACK", code)
			require.Equal(t, "ACK", structure)
		})
	}
}

func TestNewACKFields(t *testing.T) {
	t.Parallel()

	now := time.Date(2024, 3, 12, 9, 31, 5, 0, time.UTC)
	orig := mustParse(t, readTestdata(t, "oru_r01_cr_bio_8859-15.hl7"))
	ack := NewACK(orig, AckAccept, "ACK-1", now)
	msh := ack.Segment("MSH")
	om := orig.Segment("MSH")
	require.Equal(t, om.Field(5), msh.Field(3))
	require.Equal(t, om.Field(6), msh.Field(4))
	require.Equal(t, om.Field(3), msh.Field(5))
	require.Equal(t, om.Field(4), msh.Field(6))
	require.Equal(t, "20240312093105", msh.Get(7))
	_, event, _ := ack.Type()
	require.Equal(t, "R01", event)
	require.Equal(t, "ACK-1", ack.ControlID())
	require.Equal(t, "P", ack.ProcessingID())
	require.Equal(t, "2.5", ack.Version())
	require.Equal(t, CharsetUTF8, msh.Get(18))
	require.Equal(t, "AA", ack.Segment("MSA").Get(1))
	require.Equal(t, "MSG00015", ack.Segment("MSA").Get(2))
	require.Nil(t, ack.Segment("ERR"))

	// The ACK does not share storage with the original.
	msh.Field(5)[0][0][0] = "changed"
	require.Equal(t, "SIL-TEST", om.Get(3))

	nilACK := NewACK(nil, AckReject, "ACK-2", now)
	require.Equal(t, "", nilACK.Segment("MSA").Get(2))
	require.Equal(t, "ACK", nilACK.Segment("MSH").Component(9, 1))
	require.Equal(t, "", nilACK.Segment("MSH").Component(9, 2))
}

func TestErrorCodeText(t *testing.T) {
	t.Parallel()

	require.Equal(t, "Segment sequence error", ErrorCodeText(CodeSegmentSequence))
	require.Equal(t, "Application internal error", ErrorCodeText(CodeInternal))
	require.Equal(t, "", ErrorCodeText(999))
}

func TestControlIDOf(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"valid", testMSH + "\rPID|1", "CTRL-1"},
		{"leading garbage", "\x0b\x00junk" + testMSH, "CTRL-1"},
		{"custom separators", "MSH#$*!@#A#B#C#D#2024##ORU$R01#ID-9$X#P#2.5", "ID-9"},
		{"spaces and control characters", "MSH|^~\\&|||||||ORU| ID\x01-7 |P", "ID-7"},
		{"latin-1", "MSH|^~\\&|||||||ORU|N\xb0123|P", "N°123"},
		{"LF terminated before MSH-10", "MSH|^~\\&|A|B\nPID|1|2|3|4|5|6|7|8|9", ""},
		{"too few fields", "MSH|^~\\&|A|B|C", ""},
		{"no MSH", "PID|1|2|3|4|5|6|7|8|9|10", ""},
		{"invalid separator", "MSHA^~\\&A1A2A3A4A5A6A7A8A9", ""},
		{"empty", "", ""},
		{"MSH at end", "xxMSH", ""},
		{"long", "MSH|^~\\&|||||||ORU|" + strings.Repeat("é", 150) + "|P", strings.Repeat("é", 99)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, ControlIDOf([]byte(tt.raw)))
		})
	}
}

// TestErrDetailLocation: where an error is, as logs carry it instead of
// the message, which may repeat the field's value.
func TestErrDetailLocation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		e    ErrDetail
		want string
	}{
		{ErrDetail{Segment: "PID", Sequence: 1, Field: 3, Msg: "INS 280017512345678"}, "PID^1^3"},
		{ErrDetail{Segment: "OBX", Sequence: 2}, "OBX^2^"},
		{ErrDetail{Segment: "MSH", Field: 10}, "MSH^^10"},
		{ErrDetail{Code: CodeInternal, Msg: "no location"}, ""},
	} {
		require.Equal(t, c.want, c.e.Location(), "%+v", c.e)
	}
}
