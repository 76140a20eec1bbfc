package hl7

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// salvaged is what SalvageHeader recovered, one string per field NewACK
// mirrors, components joined with '^'.
type salvaged struct {
	app, fac, recvApp, recvFac  string // MSH-3 to MSH-6
	typ, control, proc, version string // MSH-9, -10, -11, -12
	country                     string // MSH-17
}

func salvagedOf(m *Message) salvaged {
	msh := m.Segment("MSH")
	f := func(n int) string {
		r := msh.Field(n).Rep(0)
		parts := make([]string, len(r))
		for i := range r {
			parts[i] = r.Comp(i + 1)
		}
		return strings.Join(parts, "^")
	}
	return salvaged{f(3), f(4), f(5), f(6), f(9), f(10), f(11), f(12), f(17)}
}

func TestSalvageHeader(t *testing.T) {
	t.Parallel()

	full := salvaged{"DPI", "CH-X^1.2.250.1.1^ISO", "PFI", "CH-X", "ORU^R01^ORU_R01", "DPI-99", "P", "2.5", "FRA"}
	tests := []struct {
		name string
		raw  string
		want salvaged
	}{
		{"valid header", `MSH|^~\&|DPI|CH-X^1.2.250.1.1^ISO|PFI|CH-X|20240405||ORU^R01^ORU_R01|DPI-99|P|2.5|||||FRA|8859/15` + "\rPID|1", full},
		{"encoding characters split by the field separator",
			`MSH|^~|&|DPI|CH-X^1.2.250.1.1^ISO|PFI|CH-X|20240405||ORU^R01^ORU_R01|DPI-99|P|2.5|||||FRA|8859/15`, full},
		{"field separator first in MSH-2",
			`MSH||^~\&|DPI|CH-X|PFI|CH-X|20240405||ORU^R01^ORU_R01|DPI-99|P|2.5|||||FRA`,
			salvaged{"DPI", "CH-X", "PFI", "CH-X", "ORU", "DPI-99", "P", "2.5", "FRA"}},
		{"repeated encoding characters", `MSH|^^\&|DPI|CH-X|PFI|CH-X|20240405||MDM^T02^MDM_T02|ID~2|P~T|2.6`,
			salvaged{"DPI", "CH-X", "PFI", "CH-X", "MDM^T02^MDM_T02", "ID~2", "P~T", "2.6", ""}},
		{"three encoding characters", `MSH|^~\|DPI|CH-X|PFI|CH-X|20240405||MDM^T10|ID-1~ID-2|T^I|2.6^FRA^x^y`,
			salvaged{"DPI", "CH-X", "PFI", "CH-X", "MDM^T10", "ID-1", "T^I", "2.6^FRA^x", ""}},
		{"unusable MSH-2", `MSH|ab|DPI|CH-X|PFI|CH-X|20240405||ORU^R01^ORU_R01|ID-1&2|P|2.5`,
			salvaged{"DPI", "CH-X", "PFI", "CH-X", "ORU", "ID-1", "P", "2.5", ""}},
		{"custom delimiters", "MSH#$*!@#DPI#CH-X#PFI#CH-X#2024##ORU$R01#ID-9$X*Y#P#2.5",
			salvaged{"DPI", "CH-X", "PFI", "CH-X", "ORU^R01", "ID-9^X", "P", "2.5", ""}},
		{"invalid field separator", "MSH\x00^~\\&|DPI|CH-X|PFI|CH-X|2024||ORU^R01|ID-3|P|2.5",
			salvaged{"DPI", "CH-X", "PFI", "CH-X", "ORU^R01", "ID-3", "P", "2.5", ""}},
		{"MSH-1 missing", "MSH^~\\&|DPI|CH-X", salvaged{}}, // '^' is taken for the field separator
		{"NUL in MSH", "MSH|^~\\&|D\x00PI|CH-X|PFI|CH-X|2024||ORU^R01|ID\x00-4|P|2.5\rPID|1",
			salvaged{"DPI", "CH-X", "PFI", "CH-X", "ORU^R01", "ID-4", "P", "2.5", ""}},
		{"truncated line", "MSH|^~\\&|DPI|CH", salvaged{app: "DPI", fac: "CH"}},
		{"truncated before MSH-10", "MSH|^~\\&|DPI|CH-X\nPID|1|2|3|4|5|6|7|8|9", salvaged{app: "DPI", fac: "CH-X"}},
		{"latin-1 bytes", "MSH|^~\\&|DPI|H\xd4PITAL|PFI|CH|2024||ORU^R01|N\xb012|P|2.5",
			salvaged{"DPI", "HÔPITAL", "PFI", "CH", "ORU^R01", "N°12", "P", "2.5", ""}},
		{"control characters and spaces", "MSH|^~\\&| DPI\x01 |\x7f|PFI\x85|CH|2024||ORU^ R01 | ID-5\t|P|2.5",
			salvaged{"DPI", "", "PFI", "CH", "ORU^R01", "ID-5", "P", "2.5", ""}},
		{"leading garbage", "\x0b\x00junk MSH|^~\\&|DPI|CH|PFI|CH|2024||ORU^R01|ID-6|P|2.5",
			salvaged{"DPI", "CH", "PFI", "CH", "ORU^R01", "ID-6", "P", "2.5", ""}},
		{"escape sequences kept", `MSH|^~\&|D\T\PI|CH|PFI|CH|2024||ORU^R01|\X41\|P|2.5`,
			salvaged{`D\T\PI`, "CH", "PFI", "CH", "ORU^R01", `\X41\`, "P", "2.5", ""}},
		{"long values", "MSH|^~\\&|" + strings.Repeat("é", 150) + "|" + strings.Repeat("x", 5000) + "^y",
			salvaged{app: strings.Repeat("é", 99), fac: strings.Repeat("x", 199)}},
		{"MSH alone", "MSH", salvaged{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := []byte(tt.raw)
			m := SalvageHeader(raw)
			require.NotNil(t, m)
			require.Equal(t, tt.want, salvagedOf(m))
			require.Equal(t, tt.want.control[:strings.IndexByte(tt.want.control+"^", '^')], ControlIDOf(raw))
			require.Equal(t, DefaultDelimiters, m.Delims)

			// The ACK mirrors the salvaged header and parses back.
			ack := NewACK(m, AckError, "ACK-1", testNow)
			back, err := Parse(ack.Encode(), ParseOptions{})
			require.NoError(t, err)
			require.Equal(t, ack, back)
			require.Equal(t, ControlIDOf(raw), back.Segment("MSA").Get(2))
			msh := back.Segment("MSH")
			require.Equal(t, m.Segment("MSH").Field(3), msh.Field(5))
			require.Equal(t, m.Segment("MSH").Field(6), msh.Field(4))
			_, event, _ := m.Type()
			require.Equal(t, event, msh.Component(9, 2))
		})
	}
}

func TestSalvageHeaderNoMSH(t *testing.T) {
	t.Parallel()

	for _, raw := range []string{"", "PID|1|2|3|4|5|6|7|8|9|10", "msh|^~\\&|A", "MS\x00H|^~\\&|A"} {
		require.Nil(t, SalvageHeader([]byte(raw)), "%q", raw)
		require.Empty(t, ControlIDOf([]byte(raw)))
	}
}

// TestSalvageHeaderMatchesParse checks that the header salvaged from the
// testdata messages is the one Parse reads (they have no escape sequence in
// these fields).
func TestSalvageHeaderMatchesParse(t *testing.T) {
	t.Parallel()

	for name, raw := range testdataMessages(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := mustParse(t, raw)
			require.Equal(t, salvagedOf(m), salvagedOf(SalvageHeader(raw)))
		})
	}
}
