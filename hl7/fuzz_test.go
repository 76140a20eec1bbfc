package hl7

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// FuzzParse checks that Parse never panics, that errors are *ParseError with
// a partial message only when MSH was parsed, and that successful parses
// survive Encode then Parse unchanged.
func FuzzParse(f *testing.F) {
	for _, data := range testdataMessages(f) {
		f.Add(data)
	}
	for _, s := range []string{
		"",
		testMSH,
		testMSH + "\rNTE|1||\\X0D0A\\\\E\\\\.br\\\\H\\x\\N\\\\Zq\\\\XE9\\",
		testMSH + "|||||FRA|8859/15\rPID|||1^^^A&B&C~2||\xbc\xa4",
		testMSH + "|||||FRA|UNICODE UTF-8\rPID|||\xe9",
		"MSH#$*!@#A#B#C#D#1##ACK#1#P#2.5\rNTE#a|b!F!",
		`MSH|^~\&#|A|B|C|D|1||ACK|1|P|2.7` + "\rNTE|a#\\P\\",
		testMSH + "\rOBX|1|ED|X||^text^XML^Base64^QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk\r\nQUJD==|F",
		"\xEF\xBB\xBF\n" + testMSH + "\n\nPID|1\r\n",
		testMSH + "\rMSH|^~\\&",
		testMSH + "\rPID|1||a\x00b",
		testMSH + "\rNTE|1||\\X410042\\",
		"MSH|^~|&|A|B|C|D|1||ORU^R01|ID|P|2.5\rPID|1",
		"MSH|^~\\&|A\x00|B|C|D|1||ORU^R01|ID|P|2.5",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, ParseOptions{MaxSize: 1 << 20})
		if err != nil {
			var pe *ParseError
			require.True(t, errors.As(err, &pe), "error %T is not a *ParseError", err)
			require.NotEmpty(t, pe.Msg)
			if m != nil {
				require.NotEmpty(t, m.Segments)
				require.Equal(t, "MSH", m.Segments[0].Name)
				// An ACK can always be built and parsed back.
				ack := NewACK(m, AckReject, "1", testNow, pe.Detail())
				_, err := Parse(ack.Encode(), ParseOptions{})
				require.NoError(t, err)
			}
			if m == nil {
				// The header could not be read: the ACK mirrors what SalvageHeader recovers.
				ack := NewACK(SalvageHeader(data), AckError, "1", testNow, pe.Detail())
				back, err := Parse(ack.Encode(), ParseOptions{})
				require.NoError(t, err)
				require.Equal(t, ControlIDOf(data), back.Segment("MSA").Get(2))
			}
			return
		}
		require.NotNil(t, m)
		for _, seg := range m.Segments {
			for _, fld := range seg.fields {
				for _, r := range fld {
					for _, c := range r {
						for _, s := range c {
							require.True(t, utf8.ValidString(s), "value %q is not UTF-8", s)
							require.NotContains(t, s, "\x00", "a NUL is a parse error")
						}
					}
				}
			}
		}
		requireRoundTrip(t, m)
	})
}

// FuzzSalvageHeader checks that SalvageHeader never panics, finds a header
// exactly when raw holds "MSH", keeps only short printable UTF-8 values, and
// that the ACK built from it parses back with MSA-2 = ControlIDOf(raw).
func FuzzSalvageHeader(f *testing.F) {
	for _, data := range testdataMessages(f) {
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"MSH",
		testMSH,
		"MSH|^~|&|DPI|CH|PFI|CH|2024||ORU^R01^ORU_R01|ID-1|P|2.5|||||FRA",
		"MSH||^~\\&|DPI|CH",
		"MSH\x00^~\\&|DPI|CH|PFI|CH|2024||ORU^R01|ID-3|P|2.5",
		"MSH|^^\\&|DPI|CH|PFI|CH|2024||MDM^T02|ID~2|P~T|2.6",
		"MSH|ab|DPI|CH|PFI|CH|2024||ORU^R01|ID-1&2|P|2.5",
		"MSH#$*!@#DPI#CH#PFI#CH#2024##ORU$R01#ID-9#P#2.5",
		"\x0bjunk MSH|^~\\&|D\x00PI|H\xd4PITAL|PFI\x85|CH|2024||ORU^R01|N\xb012|P|2.5\rPID|1",
		"MSH|^~\\&|" + strings.Repeat("\xc3\xa9", 600) + "|x",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := SalvageHeader(data)
		id := ControlIDOf(data)
		if !bytes.Contains(data, []byte("MSH")) {
			require.Nil(t, m)
			require.Empty(t, id)
			return
		}
		require.NotNil(t, m)
		require.Len(t, m.Segments, 1)
		require.Equal(t, id, m.ControlID())
		msh := m.Segments[0]
		for n := 3; n <= msh.NumFields(); n++ {
			for _, r := range msh.Field(n) {
				require.LessOrEqual(t, len(r), maxSalvagedComponents)
				for _, c := range r {
					for _, s := range c {
						require.True(t, utf8.ValidString(s), "MSH-%d %q is not UTF-8", n, s)
						require.LessOrEqual(t, len(s), maxControlIDLen)
						require.Equal(t, strings.TrimSpace(s), s)
						for _, r := range s {
							require.False(t, r < ' ' || (r >= 0x7F && r < 0xA0), "MSH-%d %q holds a control character", n, s)
						}
					}
				}
			}
		}
		ack := NewACK(m, AckError, "1", testNow, ErrDetail{Code: CodeDataType, Msg: "x"})
		back, err := Parse(ack.Encode(), ParseOptions{})
		require.NoError(t, err)
		require.Equal(t, ack, back)
		require.Equal(t, id, back.Segment("MSA").Get(2))
	})
}
