package hl7

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// testMSH is a minimal valid MSH segment (v2.5 ORU) without MSH-18.
const testMSH = `MSH|^~\&|SIL|LABO|PFI|CH|20240312093100||ORU^R01^ORU_R01|CTRL-1|P|2.5`

// build joins segments with "\r" after testMSH (with MSH-18 = charset when not empty).
func build(charset string, segs ...string) []byte {
	msh := testMSH
	if charset != "" {
		msh += "|||||FRA|" + charset
	}
	return []byte(strings.Join(append([]string{msh}, segs...), "\r") + "\r")
}

func mustParse(t *testing.T, data []byte) *Message {
	t.Helper()
	m, err := Parse(data, ParseOptions{})
	require.NoError(t, err)
	require.NotNil(t, m)
	return m
}

func parseError(t *testing.T, err error) *ParseError {
	t.Helper()
	require.Error(t, err)
	var pe *ParseError
	require.True(t, errors.As(err, &pe), "error %v is not a *ParseError", err)
	return pe
}

func TestParseDelimiters(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		input  string
		delims Delimiters
		msh2   string
		check  func(t *testing.T, m *Message)
	}{
		{
			name:   "default",
			input:  testMSH + "\rPID|||123^^^CH&1.2.3&ISO^PI~456^^^X^NH||DOE^JOHN",
			delims: DefaultDelimiters,
			msh2:   `^~\&`,
			check: func(t *testing.T, m *Message) {
				pid := m.Segment("PID")
				require.Equal(t, "123", pid.Get(3))
				require.Equal(t, "CH", pid.Field(3).Rep(0).Sub(4, 1))
				require.Equal(t, "1.2.3", pid.Field(3).Rep(0).Sub(4, 2))
				require.Equal(t, "ISO", pid.Field(3).Rep(0).Sub(4, 3))
				require.Equal(t, "NH", pid.Field(3).Rep(1).Comp(5))
				require.Equal(t, "JOHN", pid.Component(5, 2))
			},
		},
		{
			name:   "custom encoding characters",
			input:  "MSH#$*!@#SIL#LABO#PFI#CH#20240312##ORU$R01$ORU_R01#CTRL-1#P#2.5\rPID###123$$$CH@1.2.3@ISO$PI*456##DOE$JOHN!R!y$!Zx!",
			delims: Delimiters{Field: '#', Component: '$', Repetition: '*', Escape: '!', SubComponent: '@'},
			msh2:   `$*!@`,
			check: func(t *testing.T, m *Message) {
				code, event, structure := m.Type()
				require.Equal(t, []string{"ORU", "R01", "ORU_R01"}, []string{code, event, structure})
				pid := m.Segment("PID")
				require.Equal(t, "1.2.3", pid.Field(3).Rep(0).Sub(4, 2))
				require.Equal(t, "456", pid.Field(3).Rep(1).Comp(1))
				require.Equal(t, "JOHN*y", pid.Component(5, 2), "!R! is the repetition separator")
				require.Equal(t, "!Zx!", pid.Component(5, 3), "unknown escapes are kept")
			},
		},
		{
			name:   "v2.7 truncation character",
			input:  `MSH|^~\&#|SIL|LABO|PFI|CH|20240312||ORU^R01^ORU_R01|CTRL-1|P|2.7` + "\rNTE|1||50\\P\\ off#",
			delims: Delimiters{'|', '^', '~', '\\', '&', '#'},
			msh2:   `^~\&#`,
			check: func(t *testing.T, m *Message) {
				require.Equal(t, "50# off#", m.Segment("NTE").Get(3))
				require.Equal(t, "2.7", m.Version())
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := mustParse(t, []byte(tt.input))
			require.Equal(t, tt.delims, m.Delims)
			msh := m.Segment("MSH")
			require.Equal(t, string(tt.delims.Field), msh.Get(1))
			require.Equal(t, tt.msh2, msh.Get(2))
			require.Equal(t, "CTRL-1", m.ControlID())
			tt.check(t, m)
		})
	}
}

func TestParseMSHFieldNumbering(t *testing.T) {
	t.Parallel()

	m := mustParse(t, []byte(testMSH+"|||||FRA|8859/1|||2.1^CISIS_CDA_HL7_V2\r"))
	msh := m.Segment("MSH")
	want := map[int]string{
		1: "|", 2: `^~\&`, 3: "SIL", 4: "LABO", 5: "PFI", 6: "CH", 7: "20240312093100", 8: "",
		9: "ORU", 10: "CTRL-1", 11: "P", 12: "2.5", 17: "FRA", 18: "8859/1", 21: "2.1", 22: "",
	}
	for n, v := range want {
		require.Equal(t, v, msh.Get(n), "MSH-%d", n)
	}
	require.Equal(t, "CISIS_CDA_HL7_V2", msh.Component(21, 2))
	require.Equal(t, 21, msh.NumFields())
	require.Nil(t, msh.Field(0))
	require.Nil(t, msh.Field(99))
	require.Equal(t, "8859/1", m.Charset)
	require.Equal(t, "P", m.ProcessingID())
	require.Equal(t, "2.5", m.Version())
}

func TestParseStructure(t *testing.T) {
	t.Parallel()

	m := mustParse(t, build("", "ZZZ|a~~b^^c&&d~|^x&|&y||", "NTE", "NTE|1"))
	z := m.Segment("ZZZ")
	// Empty values are nil and trailing empty ones are dropped.
	require.Equal(t, Field{
		Repetition{Component{"a"}},
		nil,
		Repetition{Component{"b"}, nil, Component{"c", "", "d"}},
	}, z.Field(1))
	require.Equal(t, Field{Repetition{nil, Component{"x"}}}, z.Field(2))
	require.Equal(t, Field{Repetition{Component{"", "y"}}}, z.Field(3))
	require.Equal(t, 3, z.NumFields())
	require.Nil(t, z.Field(4))

	ntes := m.SegmentsNamed("NTE")
	require.Len(t, ntes, 2)
	require.Equal(t, 0, ntes[0].NumFields())
	require.Equal(t, "1", ntes[1].Get(1))
	require.Nil(t, m.Segment("OBX"))
	require.Empty(t, m.SegmentsNamed("OBX"))
	require.Equal(t, "", z.Field(1).Rep(5).Comp(1))
	require.Equal(t, "", z.Field(1).Rep(2).Sub(3, 9))
	require.Equal(t, "", z.Field(1).Rep(2).Comp(0))
}

func TestParseEscapes(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		charset string
		raw     string // NTE-3 as sent (in the charset)
		want    string // UTF-8
	}{
		{"plain", "", "abc", "abc"},
		{"field separator", "", `a\F\b`, "a|b"},
		{"component separator", "", `a\S\b`, "a^b"},
		{"sub-component separator", "", `a\T\b`, "a&b"},
		{"repetition separator", "", `a\R\b`, "a~b"},
		{"escape character", "", `C:\E\dir`, `C:\dir`},
		{"all delimiters", "", `\F\\S\\T\\R\\E\`, `|^&~\`},
		{"highlight dropped", "", `\H\urgent\N\ result`, "urgent result"},
		{"line break", "", `line 1\.br\line 2`, "line 1\nline 2"},
		{"hex ascii", "", `\X4142\`, "AB"},
		{"hex lower case digits", "", `\X0d0a\`, "\r\n"},
		{"hex utf-8", "UNICODE UTF-8", `caf\XC3A9\`, "café"},
		{"hex latin-1 in 8859/1", "8859/1", `caf\XE9\`, "café"},
		{"hex euro in 8859/15", "8859/15", `12 \XA4\`, "12 €"},
		{"hex invalid utf-8 falls back to latin-1", "UNICODE UTF-8", `caf\XE9\`, "café"},
		{"hex odd length kept", "", `\X414\`, `\X414\`},
		{"hex bad digit kept", "", `\XZZ\`, `\XZZ\`},
		{"empty hex kept", "", `\X\`, `\X\`},
		{"unknown escape kept", "", `\Zlocal\`, `\Zlocal\`},
		{"formatting command kept", "", `\.sp2\`, `\.sp2\`},
		{"empty escape kept", "", `a\\b`, `a\\b`},
		{"unterminated escape kept", "", `C:\dir`, `C:\dir`},
		{"truncation escape without truncation character", "", `\P\`, `\P\`},
		{"raw 8859/1", "8859/1", "r\xe9sultat", "résultat"},
		{"raw 8859/15 euro", "8859/15", "12 \xa4", "12 €"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := mustParse(t, build(tt.charset, "NTE|1||"+tt.raw+"|X"))
			require.Equal(t, tt.want, m.Segment("NTE").Get(3))
			require.Equal(t, "X", m.Segment("NTE").Get(4), "escapes do not shift fields")
		})
	}
}

func TestParseSegmentTerminators(t *testing.T) {
	t.Parallel()

	segs := []string{testMSH, "PID|||123||DOE^JOHN", "OBX|1|ST|CODE||valeur"}
	want := mustParse(t, []byte(strings.Join(segs, "\r")))
	tests := map[string]string{
		"CR":                       strings.Join(segs, "\r") + "\r",
		"LF":                       strings.Join(segs, "\n") + "\n",
		"CRLF":                     strings.Join(segs, "\r\n") + "\r\n",
		"mixed":                    segs[0] + "\r\n" + segs[1] + "\n" + segs[2] + "\r",
		"blank lines":              segs[0] + "\r\r\n\n" + segs[1] + "\r  \r" + segs[2] + "\r\n\r\n",
		"no final terminator":      strings.Join(segs, "\r"),
		"leading BOM and space":    "\xEF\xBB\xBF \r\n" + strings.Join(segs, "\r"),
		"leading MLLP start block": "\x0b" + strings.Join(segs, "\r"),
		"trailing MLLP end block":  strings.Join(segs, "\r") + "\r\x1c\r",
		"trailing NULs":            strings.Join(segs, "\r") + "\r\x00\x00",
		"indented segments":        segs[0] + "\r  " + segs[1] + "\r\t" + segs[2],
	}
	for name, input := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := mustParse(t, []byte(input))
			require.Equal(t, want, m)
		})
	}
}

func TestParseCharsets(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		charset  string // MSH-18
		defaults string // ParseOptions.DefaultCharset
		name5    string // PID-5.1 bytes as sent
		want     string
	}{
		{"utf-8", "UNICODE UTF-8", "", "BÉNÉDICTE", "BÉNÉDICTE"},
		{"unicode", "UNICODE", "", "BÉNÉDICTE", "BÉNÉDICTE"},
		{"utf-8 short label, lower case", "utf-8", "", "BÉNÉDICTE", "BÉNÉDICTE"},
		{"8859/1", "8859/1", "", "B\xc9N\xc9DICTE", "BÉNÉDICTE"},
		{"8859/15", "8859/15", "", "\xbcLE \xa4", "ŒLE €"},
		{"8859/1 with spaces", " 8859/1 ", "", "B\xc9N\xc9DICTE", "BÉNÉDICTE"},
		{"utf-8 label but latin-1 bytes", "UNICODE UTF-8", "", "B\xc9N\xc9DICTE", "BÉNÉDICTE"},
		{"no label, default utf-8", "", "", "BÉNÉDICTE", "BÉNÉDICTE"},
		{"no label, latin-1 bytes", "", "", "B\xc9N\xc9DICTE", "BÉNÉDICTE"},
		{"no label, default 8859/15", "", "8859/15", "\xbcLE \xa4", "ŒLE €"},
		{"label wins over default", "UNICODE UTF-8", "8859/15", "ŒLE €", "ŒLE €"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := Parse(build(tt.charset, "PID|||123||"+tt.name5+"^JEAN"), ParseOptions{DefaultCharset: tt.defaults})
			require.NoError(t, err)
			require.Equal(t, tt.want, m.Segment("PID").Get(5))
			require.Equal(t, strings.TrimSpace(tt.charset), m.Charset)
		})
	}
}

func TestKnownCharset(t *testing.T) {
	t.Parallel()

	for _, name := range []string{"", "UNICODE UTF-8", "unicode utf-8", "8859/1", "8859/15", "ASCII"} {
		require.True(t, KnownCharset(name), name)
	}
	for _, name := range []string{"UNICODE UTF-16", "ISO IR87", "8859/99", "latin-1"} {
		require.False(t, KnownCharset(name), name)
	}
}

func TestParseBase64Continuation(t *testing.T) {
	t.Parallel()

	payload := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=", 1)
	long := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("Compte rendu fictif. ", 30)))
	wrap := func(s string, width int, eol string) string {
		var parts []string
		for len(s) > width {
			parts = append(parts, s[:width])
			s = s[width:]
		}
		return strings.Join(append(parts, s), eol)
	}

	t.Run("wrapped at 76 with CRLF", func(t *testing.T) {
		t.Parallel()
		m := mustParse(t, build("", "OBX|1|ED|11502-2^CR^LN||^text^XML^Base64^"+wrap(long, 76, "\r\n")+"||||||F", "PRT||UC"))
		obx := m.Segment("OBX")
		require.Equal(t, long, obx.Component(5, 5))
		require.Equal(t, "F", obx.Get(11))
		require.Equal(t, "PRT", m.Segments[2].Name)
	})
	t.Run("wrapped at 64 with LF, last line alone", func(t *testing.T) {
		t.Parallel()
		m := mustParse(t, build("", "OBX|1|ED|11502-2^CR^LN||^text^XML^Base64^"+wrap(long, 64, "\n")))
		require.Equal(t, long, m.Segment("OBX").Component(5, 5))
	})
	t.Run("testdata file", func(t *testing.T) {
		t.Parallel()
		m := mustParse(t, readTestdata(t, "oru_r01_wrapped_base64.hl7"))
		xml, err := base64.StdEncoding.DecodeString(m.Segment("OBX").Component(5, 5))
		require.NoError(t, err)
		require.Contains(t, string(xml), "<ClinicalDocument")
		require.Equal(t, "F", m.Segment("OBX").Get(11))
	})
	t.Run("short run is not a payload", func(t *testing.T) {
		t.Parallel()
		_, err := Parse(build("", "OBX|1|ED|X||^text^XML^Base64^"+payload[:8], payload[8:]), ParseOptions{})
		pe := parseError(t, err)
		require.Equal(t, CodeSegmentSequence, pe.Code)
		require.Equal(t, 3, pe.Sequence)
	})
	t.Run("free text line is not a continuation", func(t *testing.T) {
		t.Parallel()
		_, err := Parse(build("", "NTE|1||"+strings.Repeat("A", 40), "suite du texte"), ParseOptions{})
		pe := parseError(t, err)
		require.Equal(t, CodeSegmentSequence, pe.Code)
		require.Equal(t, "", pe.Segment)
		require.Equal(t, `nom de segment "sui" invalide`, pe.Msg)
	})
}

func TestParseErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		input   string
		opt     ParseOptions
		code    int
		segment string
		seq     int
		field   int
		partial int // number of segments in the partial message; -1 for none
	}{
		{"empty", "", ParseOptions{}, CodeSegmentSequence, "", 1, 0, -1},
		{"blank", " \r\n ", ParseOptions{}, CodeSegmentSequence, "", 1, 0, -1},
		{"not MSH", "PID|1||123", ParseOptions{}, CodeSegmentSequence, "PID", 1, 0, -1},
		{"batch header", "FHS|^~\\&|X", ParseOptions{}, CodeSegmentSequence, "FHS", 1, 0, -1},
		{"garbage", "garbage", ParseOptions{}, CodeSegmentSequence, "", 1, 0, -1},
		{"MSH alone", "MSH", ParseOptions{}, CodeDataType, "MSH", 1, 1, -1},
		{"alphanumeric field separator", "MSHA^~\\&A", ParseOptions{}, CodeDataType, "MSH", 1, 1, -1},
		{"three encoding characters", "MSH|^~\\|X", ParseOptions{}, CodeDataType, "MSH", 1, 2, -1},
		{"six encoding characters", "MSH|^~\\&#$|X", ParseOptions{}, CodeDataType, "MSH", 1, 2, -1},
		{"duplicate encoding characters", "MSH|^~^&|X", ParseOptions{}, CodeDataType, "MSH", 1, 2, -1},
		{"missing message type", `MSH|^~\&|A|B|C|D|20240101||||P|2.5`, ParseOptions{}, CodeRequiredField, "MSH", 1, 9, 1},
		{"missing control id", `MSH|^~\&|A|B|C|D|20240101||ORU^R01|||2.5`, ParseOptions{}, CodeRequiredField, "MSH", 1, 10, 1},
		{"unknown charset", testMSH + "|||||FRA|UNICODE UTF-16\rPID|1", ParseOptions{}, CodeDataType, "MSH", 1, 18, 1},
		{"invalid default charset", testMSH + "\rPID|1", ParseOptions{DefaultCharset: "EBCDIC"}, CodeInternal, "MSH", 1, 18, 1},
		{"too large", testMSH + "\rNTE|1||" + strings.Repeat("x", 200), ParseOptions{MaxSize: 100}, CodeInternal, "", 0, 0, 1},
		{"lower-case segment", testMSH + "\rPID|1\rpv1|1", ParseOptions{}, CodeSegmentSequence, "", 3, 0, 2},
		{"short segment name", testMSH + "\rPI|1", ParseOptions{}, CodeSegmentSequence, "", 2, 0, 1},
		{"name not followed by separator", testMSH + "\rPID1|1", ParseOptions{}, CodeSegmentSequence, "PID", 2, 0, 1},
		{"digit first", testMSH + "\r1AB|1", ParseOptions{}, CodeSegmentSequence, "1AB", 2, 0, 1},
		{"control characters", testMSH + "\r\x01\x02X|1", ParseOptions{}, CodeSegmentSequence, "", 2, 0, 1},
		{"second message", testMSH + "\rPID|1\r" + testMSH, ParseOptions{}, CodeSegmentSequence, "MSH", 3, 0, 2},
		{"NUL in a value", testMSH + "\rPID|1||12\x003", ParseOptions{}, CodeDataType, "PID", 2, 3, 1},
		{"NUL in a component", testMSH + "\rPID|1\rPV1|1|I|^^\x00", ParseOptions{}, CodeDataType, "PV1", 3, 3, 2},
		{"NUL at the end of a segment", testMSH + "\rPID|1|\x00\rPV1|1", ParseOptions{}, CodeDataType, "PID", 2, 2, 1},
		{"NUL in 8859/15", testMSH + "|||||FRA|8859/15\rNTE|1||\xa4\x00", ParseOptions{}, CodeDataType, "NTE", 2, 3, 1},
		{"NUL in a segment name", testMSH + "\rPI\x00|1", ParseOptions{}, CodeDataType, "", 2, 0, 1},
		{"NUL starting a line", testMSH + "\r\x00PID|1", ParseOptions{}, CodeDataType, "", 2, 0, 1},
		{"NUL in MSH", "MSH|^~\\&|A|B\x00|C|D|20240101||ORU^R01|1|P|2.5\rPID|1", ParseOptions{}, CodeDataType, "MSH", 1, 4, -1},
		{"NUL in MSH-18", testMSH + "|||||FRA|8859/1\x00\rPID|1", ParseOptions{}, CodeDataType, "MSH", 1, 18, -1},
		{"NUL in MSH-2", "MSH|^~\\\x00|A", ParseOptions{}, CodeDataType, "MSH", 1, 2, -1},
		{"escaped NUL", testMSH + "\rNTE|1||a\\X00\\b|X", ParseOptions{}, CodeDataType, "NTE", 2, 3, 1},
		{"escaped NUL among other bytes", testMSH + "\rNTE|1||\\X410042\\", ParseOptions{}, CodeDataType, "NTE", 2, 3, 1},
		{"escaped NUL in a sub-component", testMSH + "\rPID|1\rPID|1||1~2^^^A&\\X00\\", ParseOptions{}, CodeDataType, "PID", 3, 3, 2},
		{"escaped NUL in MSH", `MSH|^~\&|A|B|C|D|20240101||ORU^R01|\X00\|P|2.5`, ParseOptions{}, CodeDataType, "MSH", 1, 10, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := Parse([]byte(tt.input), tt.opt)
			pe := parseError(t, err)
			require.Equal(t, tt.code, pe.Code, pe.Error())
			require.Equal(t, tt.segment, pe.Segment)
			require.Equal(t, tt.seq, pe.Sequence)
			require.Equal(t, tt.field, pe.Field)
			require.NotEmpty(t, pe.Msg)
			if tt.partial < 0 {
				require.Nil(t, m)
				return
			}
			require.NotNil(t, m)
			require.Len(t, m.Segments, tt.partial)
			require.Equal(t, "MSH", m.Segments[0].Name)
		})
	}
}

// TestParseNULIgnored checks that NUL bytes where Parse ignores everything
// (before MSH, lines of control characters) are ignored too.
func TestParseNULIgnored(t *testing.T) {
	t.Parallel()

	m := mustParse(t, []byte("\x00\x00"+testMSH+"\r\x00\rPID|1\r\x00 \x00\r"))
	require.Len(t, m.Segments, 2)
	require.Equal(t, "1", m.Segment("PID").Get(1))
}

// TestParseNULError checks what the error of a NUL says (no message content)
// and that the ACK of the partial message mirrors its header.
// TestParseWithoutProcessingIDOrVersion checks that a message without
// MSH-11 or MSH-12 is read: the application decides what they mean.
func TestParseWithoutProcessingIDOrVersion(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{`MSH|^~\&|A|B|C|D|20240101||ORU^R01|1||2.5`, `MSH|^~\&|A|B|C|D|20240101||ORU^R01|1|P`} {
		m, err := Parse([]byte(raw+"\rPID|1"), ParseOptions{})
		require.NoError(t, err, raw)
		require.Equal(t, "1", m.ControlID())
	}
}

func TestParseNULError(t *testing.T) {
	t.Parallel()

	m, err := Parse([]byte(testMSH+"\rPID|1||SECRET\x00NAME"), ParseOptions{})
	pe := parseError(t, err)
	require.Equal(t, "hl7: PID-3 (segment 2): caractère NUL (0x00) dans les données : un texte HL7 ne peut pas en contenir (102 Data type error)", pe.Error())
	require.NotContains(t, pe.Error(), "SECRET")
	ack := NewACK(m, AckError, "A1", testNow, pe.Detail())
	require.Equal(t, "CTRL-1", ack.Segment("MSA").Get(2))
	require.Equal(t, "SIL", ack.Segment("MSH").Get(5))
	require.Equal(t, "PID^2^3", strings.Join([]string{ack.Segment("ERR").Component(2, 1),
		ack.Segment("ERR").Component(2, 2), ack.Segment("ERR").Component(2, 3)}, "^"))

	_, err = Parse([]byte(testMSH+"\rNTE|1||SECRET\\X00\\"), ParseOptions{})
	pe = parseError(t, err)
	require.Equal(t, `hl7: NTE-3 (segment 2): une séquence d'échappement \X..\ donne un caractère NUL (0x00) : un texte HL7 ne peut pas en contenir (102 Data type error)`, pe.Error())
}

func TestParseErrorPartialHeaderForACK(t *testing.T) {
	t.Parallel()

	// An unsupported charset still yields the header fields an ACK mirrors.
	m, err := Parse([]byte(testMSH+"|||||FRA|UNICODE UTF-16\rPID|1"), ParseOptions{})
	_ = parseError(t, err)
	require.Equal(t, "CTRL-1", m.ControlID())
	require.Equal(t, "SIL", m.Segment("MSH").Get(3))
	require.Equal(t, "UNICODE UTF-16", m.Charset)
}

func TestParseErrorMessage(t *testing.T) {
	t.Parallel()

	err := &ParseError{Segment: "MSH", Sequence: 1, Field: 18, Code: CodeDataType, Msg: `unsupported character set "X"`}
	require.Equal(t, `hl7: MSH-18 (segment 1): unsupported character set "X" (102 Data type error)`, err.Error())
	err = &ParseError{Segment: "PV1", Sequence: 3, Code: CodeSegmentSequence, Msg: "invalid segment name"}
	require.Equal(t, "hl7: PV1 (segment 3): invalid segment name (100 Segment sequence error)", err.Error())
	err = &ParseError{Code: CodeInternal, Msg: "too large"}
	require.Equal(t, "hl7: too large (207 Application internal error)", err.Error())
	require.Equal(t, ErrDetail{Segment: "PV1", Sequence: 3, Code: 100, Severity: "E", Msg: "invalid segment name"},
		(&ParseError{Segment: "PV1", Sequence: 3, Code: CodeSegmentSequence, Msg: "invalid segment name"}).Detail())
}

func TestParseTestdata(t *testing.T) {
	t.Parallel()

	t.Run("ORU R01 in 8859/15", func(t *testing.T) {
		t.Parallel()
		m := mustParse(t, readTestdata(t, "oru_r01_cr_bio_8859-15.hl7"))
		code, event, structure := m.Type()
		require.Equal(t, "ORU R01 ORU_R01", code+" "+event+" "+structure)
		require.Equal(t, "MSG00015", m.ControlID())
		require.Equal(t, "8859/15", m.Charset)
		require.Equal(t, "2.1", m.Segment("MSH").Component(21, 1))

		pid := m.Segment("PID")
		ins := pid.Field(3).Rep(0)
		require.Equal(t, "248017512345648", ins.Comp(1))
		require.Equal(t, "ASIP-SANTE-INS-NIR", ins.Sub(4, 1))
		require.Equal(t, "1.2.250.1.213.1.4.10", ins.Sub(4, 2))
		require.Equal(t, "INS", ins.Comp(5))
		require.Equal(t, "PI", pid.Field(3).Rep(1).Comp(5))
		require.Equal(t, "12 rue de l'Église", pid.Component(11, 1))
		require.Equal(t, "VALI", pid.Get(32))

		obxs := m.SegmentsNamed("OBX")
		require.Len(t, obxs, 7)
		require.Equal(t, "ED", obxs[0].Get(2))
		xml, err := base64.StdEncoding.DecodeString(obxs[0].Component(5, 5))
		require.NoError(t, err)
		require.Contains(t, string(xml), "<ClinicalDocument")
		require.Equal(t, "Masqué aux professionnels de Santé", obxs[1].Component(3, 2))

		prts := m.SegmentsNamed("PRT")
		require.Equal(t, "RCT", prts[1].Get(4))
		require.Equal(t, "paul.medecin@test.mssante.fr", prts[1].Component(15, 4))
		require.Equal(t, "1.2.250.1.71.4.2.1", prts[1].Field(5).Rep(0).Sub(9, 2))

		require.Equal(t, "Résultats validés & signés\nCoût : 12 €", m.Segment("NTE").Get(3))
	})
	t.Run("MDM T02 in UTF-8 with LF", func(t *testing.T) {
		t.Parallel()
		m := mustParse(t, readTestdata(t, "mdm_t02_cr_imagerie_utf8_lf.hl7"))
		code, event, _ := m.Type()
		require.Equal(t, "MDM T02", code+" "+event)
		require.Equal(t, "2.6", m.Version())
		require.Equal(t, "AU", m.Segment("TXA").Get(17))
		require.Equal(t, "1.2.250.1.71.4.2.2.990000001.RIS.42", m.Segment("TXA").Get(12))
		require.Len(t, m.SegmentsNamed("PRT"), 3)
		require.Equal(t, "Accusé de lecture", m.SegmentsNamed("OBX")[4].Component(3, 2))
	})
	t.Run("MDM T04 labelled UTF-8 but Latin-1, CRLF", func(t *testing.T) {
		t.Parallel()
		m := mustParse(t, readTestdata(t, "mdm_t04_suppression_lying_latin1_crlf.hl7"))
		require.Equal(t, "UNICODE UTF-8", m.Charset)
		require.Equal(t, "CR d'imagerie médicale", m.Segment("OBR").Component(4, 2))
		require.Equal(t, "D", m.Segment("OBX").Get(11))
		require.Equal(t, "CA", m.Segment("ORC").Get(1))
	})
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// testdataMessages returns the example messages of testdata/.
func testdataMessages(t testing.TB) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "*.hl7"))
	require.NoError(t, err)
	require.NotEmpty(t, names)
	out := make(map[string][]byte, len(names))
	for _, n := range names {
		out[filepath.Base(n)] = readTestdata(t, filepath.Base(n))
	}
	return out
}
