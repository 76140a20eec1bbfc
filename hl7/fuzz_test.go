package hl7

import (
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
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, ParseOptions{MaxSize: 1 << 20})
		if err != nil {
			pe, ok := err.(*ParseError)
			require.True(t, ok, "error %T is not a *ParseError", err)
			require.NotEmpty(t, pe.Msg)
			if m != nil {
				require.NotEmpty(t, m.Segments)
				require.Equal(t, "MSH", m.Segments[0].Name)
				// An ACK can always be built and parsed back.
				ack := NewACK(m, AckReject, "1", testNow, pe.Detail())
				_, err := Parse(ack.Encode(), ParseOptions{})
				require.NoError(t, err)
			}
			_ = ControlIDOf(data)
			return
		}
		require.NotNil(t, m)
		for _, seg := range m.Segments {
			for _, fld := range seg.fields {
				for _, r := range fld {
					for _, c := range r {
						for _, s := range c {
							require.True(t, utf8.ValidString(s), "value %q is not UTF-8", s)
						}
					}
				}
			}
		}
		requireRoundTrip(t, m)
	})
}
