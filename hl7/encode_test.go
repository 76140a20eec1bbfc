package hl7

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestEncode(t *testing.T) {
	t.Parallel()

	msh := NewSegment("MSH")
	msh.Set(3, Text("APP"))
	msh.Set(9, Comps("ORU", "R01", "ORU_R01"))
	msh.Set(10, Text("1"))
	msh.Set(11, Text("P"))
	msh.Set(12, Text("2.5"))
	nte := NewSegment("NTE")
	nte.Set(1, Text("1"))
	nte.Set(3, Text("a|b^c~d\\e&f\nline\r\x01\tz"))
	nte.Set(4, Field{Repetition{Component{"x", "", "y", ""}, nil, Component{""}}, nil, Repetition{Component{""}}})
	nte.Set(6, Text(""))
	nte.Set(9, Field{nil})
	obx := NewSegment("OBX")
	obx.Set(2, Comps("", "B", "", ""))
	m := &Message{}
	m.Add(msh)
	m.Add(nte)
	m.Add(obx)

	want := `MSH|^~\&|APP||||||ORU^R01^ORU_R01|1|P|2.5` + "\r" +
		`NTE|1||a\F\b\S\c\R\d\E\e\T\f\.br\line\X0D\\X01\` + "\tz|x&&y\r" +
		"OBX||^B\r"
	require.Equal(t, want, string(m.Encode()))
}

func TestEncodeDelimiters(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		delims Delimiters
		value  string
		want   string
	}{
		{"custom", Delimiters{'#', '$', '*', '!', '@', 0}, "a#b$c*d!e@f|g\nh", "MSH#$*!@#1\rNTE#a!F!b!S!c!R!d!E!e!T!f|g!.br!h\r"},
		{"truncation", Delimiters{'|', '^', '~', '\\', '&', '#'}, "50#", "MSH|^~\\&#|1\rNTE|50\\P\\\r"},
		{"dot delimiter uses hex for newline", Delimiters{'|', '.', '~', '\\', '&', 0}, "a\nb.c", "MSH|.~\\&|1\rNTE|a\\X0A\\b\\S\\c\r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msh := NewSegment("MSH")
			msh.Set(3, Text("1"))
			nte := NewSegment("NTE")
			nte.Set(1, Text(tt.value))
			m := &Message{Delims: tt.delims, Segments: []*Segment{msh, nte}}
			require.Equal(t, tt.want, string(m.Encode()))
		})
	}
}

func TestEncodeCharset(t *testing.T) {
	t.Parallel()

	t.Run("8859/15 becomes UTF-8", func(t *testing.T) {
		t.Parallel()
		m := mustParse(t, readTestdata(t, "oru_r01_cr_bio_8859-15.hl7"))
		out := m.Encode()
		require.True(t, utf8.Valid(out))
		require.Contains(t, string(out), "|FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2\r")
		require.Contains(t, string(out), "12 rue de l'Église")
		require.Contains(t, string(out), `Résultats validés \T\ signés\.br\Coût : 12 €`)
	})
	t.Run("no charset stays absent", func(t *testing.T) {
		t.Parallel()
		m := mustParse(t, build("", "PID|1"))
		require.Equal(t, testMSH+"\rPID|1\r", string(m.Encode()))
	})
	t.Run("charset written even when MSH is short", func(t *testing.T) {
		t.Parallel()
		m := &Message{Charset: "8859/1", Segments: []*Segment{NewSegment("MSH")}}
		require.Equal(t, "MSH|^~\\&||||||||||||||||UNICODE UTF-8\r", string(m.Encode()))
	})
}

// normalizeForRoundTrip applies to m what Encode changes on purpose: MSH-18
// becomes "UNICODE UTF-8" when the message had a charset.
func normalizeForRoundTrip(m *Message) {
	msh := m.Segment("MSH")
	if m.Charset != "" || !isEmptyField(msh.Field(18)) {
		msh.Set(18, Text(CharsetUTF8))
		m.Charset = CharsetUTF8
	}
}

// requireRoundTrip checks that Parse(Encode(m)) equals m, m being a parsed message.
func requireRoundTrip(t testing.TB, m *Message) {
	t.Helper()
	enc := m.Encode()
	m2, err := Parse(enc, ParseOptions{})
	require.NoError(t, err, "re-parse of %q", enc)
	normalizeForRoundTrip(m)
	require.Equal(t, m, m2, "encoded: %q", enc)
	require.Equal(t, string(enc), string(m2.Encode()), "encoding is stable")
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()

	inputs := map[string][]byte{
		"escapes":      build("", "NTE|1||"+`a\F\b\S\c\T\d\R\e\E\f\.br\g\X0D0A\h\Zx\i\H\j\N\`+"|\x01\x7F"),
		"latin-1 hex":  build("8859/1", `NTE|1||caf\XE9\ cr`+"\xe8me"),
		"structure":    build("", "ZZZ|a~~b^^c&&d~|^x&|&y||", "NTE"),
		"truncation":   []byte(`MSH|^~\&#|A|B|C|D|1||ACK|1|P|2.7` + "\rNTE|a#b\\P\\"),
		"custom":       []byte("MSH#$*!@#A##C##1##ACK#1#P#2.5\rNTE#a|b^c~d\\e&f!F!"),
		"dot":          []byte("MSH|.~\\&|A|B|C|D|1||ACK|1|P|2.5\rNTE|a\\.br\\b\\X0A\\c"),
		"wrapped b64":  readTestdata(t, "oru_r01_wrapped_base64.hl7"),
		"unknown esc":  build("", `NTE|\\|\X\|\.sp\|C:\dir`),
		"lying latin1": readTestdata(t, "mdm_t04_suppression_lying_latin1_crlf.hl7"),
	}
	for name, data := range testdataMessages(t) {
		inputs[name] = data
	}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			requireRoundTrip(t, mustParse(t, data))
		})
	}
}

func TestTextAndComps(t *testing.T) {
	t.Parallel()

	require.Nil(t, Text(""))
	require.Equal(t, Field{Repetition{Component{"a"}}}, Text("a"))
	require.Nil(t, Comps())
	require.Nil(t, Comps("", ""))
	require.Equal(t, Field{Repetition{Component{"ACK"}, nil, Component{"ACK"}}}, Comps("ACK", "", "ACK", ""))

	f := Field{Repetition{Component{"a", "b"}}, nil}
	c := f.Clone()
	require.Equal(t, f, c)
	c[0][0][0] = "changed"
	require.Equal(t, "a", f[0][0][0])
	require.Nil(t, Field(nil).Clone())

	s := NewSegment("ZZZ")
	s.Set(0, Text("ignored"))
	s.Set(3, Text("c"))
	require.Equal(t, 3, s.NumFields())
	require.Equal(t, "c", s.Get(3))
	require.Equal(t, "", s.Get(1))
	var nilSeg *Segment
	require.Equal(t, "", nilSeg.Get(1))
	require.Equal(t, 0, nilSeg.NumFields())
	var nilMsg *Message
	require.Equal(t, "", nilMsg.ControlID())
}

func TestEncodeLargeValueUnchanged(t *testing.T) {
	t.Parallel()

	b64 := strings.Repeat("QUJD", 25_000)
	m := mustParse(t, build("", "OBX|1|ED|X||^text^XML^Base64^"+b64+"||||||F"))
	require.Equal(t, b64, m.Segment("OBX").Component(5, 5))
	requireRoundTrip(t, m)
}
