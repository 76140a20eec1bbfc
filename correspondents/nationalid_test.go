package correspondents

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNationalID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		// parse and orNumber are what ParseNationalID and
		// ParseNationalIDOrNumber return, "" for an error.
		parse, orNumber NationalID
		rpps, adeli     string // RPPS and ADELI of NationalID(in)
	}{
		{in: "810001234567", parse: "810001234567", orNumber: "810001234567", rpps: "10001234567"},
		{in: "0751234567", parse: "0751234567", orNumber: "0751234567", adeli: "751234567"},
		{in: "10001234567", orNumber: "810001234567"}, // a bare RPPS
		{in: "751234567", orNumber: "0751234567"},     // a bare ADELI
		{in: "800000000000", parse: "800000000000", orNumber: "800000000000", rpps: "00000000000"},
		{in: "0000000000", parse: "0000000000", orNumber: "0000000000", adeli: "000000000"},
		{in: ""},
		{in: "8"},
		{in: "0"},
		{in: "710001234567"}, // 12 digits, not 8
		{in: "1751234567"},   // 10 digits, not 0
		{in: "81000123456", orNumber: "881000123456"}, // 11 digits starting with 8: a bare RPPS
		{in: "8100012345678"},                         // 13 digits
		{in: "07512345678", orNumber: "807512345678"}, // 11 digits starting with 0: a bare RPPS
		{in: " 810001234567"},                         // not trimmed
		{in: "810001234567\n"},                        // not trimmed
		{in: "8100012345A7"},
		{in: "81000123456٧"}, // a non-ASCII digit
		{in: "+10001234567"},
		{in: "-751234567"},
		{in: "1000123456"},   // 10 digits: neither
		{in: "75123456"},     // 8 digits: neither
		{in: "100012345678"}, // 12 digits not starting with 8
	} {
		got, err := ParseNationalID(tc.in)
		require.Equal(t, tc.parse, got, "ParseNationalID(%q)", tc.in)
		require.Equal(t, tc.parse == "", err != nil, "ParseNationalID(%q): %v", tc.in, err)
		got, err = ParseNationalIDOrNumber(tc.in)
		require.Equal(t, tc.orNumber, got, "ParseNationalIDOrNumber(%q)", tc.in)
		require.Equal(t, tc.orNumber == "", err != nil, "ParseNationalIDOrNumber(%q): %v", tc.in, err)
		rpps, ok := NationalID(tc.in).RPPS()
		require.Equal(t, tc.rpps, rpps, "NationalID(%q).RPPS()", tc.in)
		require.Equal(t, tc.rpps != "", ok)
		adeli, ok := NationalID(tc.in).ADELI()
		require.Equal(t, tc.adeli, adeli, "NationalID(%q).ADELI()", tc.in)
		require.Equal(t, tc.adeli != "", ok)
	}

	n, err := NationalIDFromRPPS("10001234567")
	require.NoError(t, err)
	require.Equal(t, "810001234567", n.String())
	n, err = NationalIDFromADELI("751234567")
	require.NoError(t, err)
	require.Equal(t, "0751234567", n.String())
	for _, bad := range []string{"", "1000123456", "100012345678", "810001234567", " 10001234567", "1000123456x"} {
		_, err := NationalIDFromRPPS(bad)
		require.Error(t, err, "NationalIDFromRPPS(%q)", bad)
	}
	for _, bad := range []string{"", "75123456", "7512345678", "0751234567", "75123456 ", "75123456x"} {
		_, err := NationalIDFromADELI(bad)
		require.Error(t, err, "NationalIDFromADELI(%q)", bad)
	}
	_, err = ParseNationalID("12")
	require.EqualError(t, err, `"12" is neither 8 + an 11-digit RPPS nor 0 + a 9-digit ADELI`)
}

// The rules as the call sites wrote them before NationalID, as an oracle.
var (
	oldNationalID = regexp.MustCompile(`^(8[0-9]{11}|0[0-9]{9})$`)
	oldRPPS       = regexp.MustCompile(`^[0-9]{11}$`)
	oldADELI      = regexp.MustCompile(`^[0-9]{9}$`)
)

func FuzzNationalID(f *testing.F) {
	for _, s := range []string{"810001234567", "0751234567", "10001234567", "751234567", "", "8", "0",
		"8100012345A7", "81000123456٧", " 0751234567", "800000000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NationalID(s)
		rpps, isRPPS := n.RPPS()
		adeli, isADELI := n.ADELI()
		if isRPPS && isADELI {
			t.Fatalf("%q is both an RPPS and an ADELI national id", s)
		}

		got, err := ParseNationalID(s)
		if (err == nil) != oldNationalID.MatchString(s) || (err == nil) != (isRPPS || isADELI) {
			t.Fatalf("ParseNationalID(%q) = %q, %v; RPPS %v, ADELI %v", s, got, err, isRPPS, isADELI)
		}
		if err == nil {
			again, err := ParseNationalID(got.String())
			if got.String() != s || err != nil || again != got {
				t.Fatalf("ParseNationalID(%q) = %q, then %q, %v", s, got, again, err)
			}
			var from NationalID
			if isRPPS {
				from, err = NationalIDFromRPPS(rpps)
			} else {
				from, err = NationalIDFromADELI(adeli)
			}
			if err != nil || from != got {
				t.Fatalf("%q: RPPS %q, ADELI %q, back to %q, %v", s, rpps, adeli, from, err)
			}
		}

		fromRPPS, err := NationalIDFromRPPS(s)
		if (err == nil) != oldRPPS.MatchString(s) || err == nil && fromRPPS.String() != "8"+s {
			t.Fatalf("NationalIDFromRPPS(%q) = %q, %v", s, fromRPPS, err)
		}
		fromADELI, err := NationalIDFromADELI(s)
		if (err == nil) != oldADELI.MatchString(s) || err == nil && fromADELI.String() != "0"+s {
			t.Fatalf("NationalIDFromADELI(%q) = %q, %v", s, fromADELI, err)
		}

		loose, err := ParseNationalIDOrNumber(s)
		switch {
		case oldRPPS.MatchString(s):
			if err != nil || loose != fromRPPS {
				t.Fatalf("ParseNationalIDOrNumber(%q) = %q, %v", s, loose, err)
			}
		case oldADELI.MatchString(s):
			if err != nil || loose != fromADELI {
				t.Fatalf("ParseNationalIDOrNumber(%q) = %q, %v", s, loose, err)
			}
		case loose != got || (err == nil) != oldNationalID.MatchString(s):
			t.Fatalf("ParseNationalIDOrNumber(%q) = %q, %v; ParseNationalID %q", s, loose, err, got)
		}
		if err == nil {
			if _, err := ParseNationalID(loose.String()); err != nil {
				t.Fatalf("ParseNationalIDOrNumber(%q) = %q, not a national id: %v", s, loose, err)
			}
		}
	})
}
