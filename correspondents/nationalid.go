package correspondents

import "fmt"

// NationalID is a health professional's national identifier, the IdNat_PS
// of the Annuaire Santé and the extension of the ids of root
// 1.2.250.1.71.4.2.1 (cda.OIDRPPS) in CDA and HL7 messages: "8" followed by
// the 11-digit RPPS number, or "0" followed by the 9-digit ADELI number.
// Digits are the ASCII 0-9 only; no space, sign or separator is accepted and
// nothing is trimmed: callers trim what people or messages typed.
//
// The functions below are the only place of this rule. A NationalID they
// return is valid; one converted from an unchecked string (NationalID(s))
// may not be, and its RPPS and ADELI methods then report false. Records
// keep national ids as plain strings (database columns, JSON, HL7), as
// String returns them.
type NationalID string

// NationalIDFromRPPS returns the national id of an RPPS number: exactly 11
// ASCII digits, given without the "8" prefix.
func NationalIDFromRPPS(rpps string) (NationalID, error) {
	if !allDigits(rpps, rppsDigits) {
		return "", fmt.Errorf("%q is not an 11-digit RPPS", rpps)
	}
	return NationalID(prefixRPPS + rpps), nil
}

// NationalIDFromADELI returns the national id of an ADELI number: exactly 9
// ASCII digits, given without the "0" prefix.
func NationalIDFromADELI(adeli string) (NationalID, error) {
	if !allDigits(adeli, adeliDigits) {
		return "", fmt.Errorf("%q is not a 9-digit ADELI", adeli)
	}
	return NationalID(prefixADELI + adeli), nil
}

// ParseNationalID checks that s is a national id, "8" + an 11-digit RPPS or
// "0" + a 9-digit ADELI, and returns it unchanged.
func ParseNationalID(s string) (NationalID, error) {
	if _, ok := NationalID(s).RPPS(); ok {
		return NationalID(s), nil
	}
	if _, ok := NationalID(s).ADELI(); ok {
		return NationalID(s), nil
	}
	return "", fmt.Errorf("%q is neither 8 + an 11-digit RPPS nor 0 + a 9-digit ADELI", s)
}

// ParseNationalIDOrNumber is ParseNationalID that also takes a bare RPPS
// (11 digits) or ADELI (9 digits) number, as people type them, and adds its
// prefix. The lengths cannot be confused: a national id has 12 or 10 digits.
func ParseNationalIDOrNumber(s string) (NationalID, error) {
	if n, err := NationalIDFromRPPS(s); err == nil {
		return n, nil
	}
	if n, err := NationalIDFromADELI(s); err == nil {
		return n, nil
	}
	return ParseNationalID(s)
}

// RPPS returns the RPPS number of n, without its prefix; ok is false when n
// is not "8" + 11 digits (an ADELI, or not a national id).
func (n NationalID) RPPS() (rpps string, ok bool) {
	return n.number(prefixRPPS, rppsDigits)
}

// ADELI returns the ADELI number of n, without its prefix; ok is false when
// n is not "0" + 9 digits (an RPPS, or not a national id).
func (n NationalID) ADELI() (adeli string, ok bool) {
	return n.number(prefixADELI, adeliDigits)
}

// String returns n as stored and exchanged: "8" + RPPS or "0" + ADELI.
func (n NationalID) String() string { return string(n) }

// The prefixes and number lengths of the national ids.
const (
	prefixRPPS  = "8"
	prefixADELI = "0"
	rppsDigits  = 11
	adeliDigits = 9
)

// number returns the number after prefix when n is prefix and digits ASCII digits.
func (n NationalID) number(prefix string, digits int) (string, bool) {
	s := string(n)
	if len(s) != len(prefix)+digits || s[:len(prefix)] != prefix || !allDigits(s[len(prefix):], digits) {
		return "", false
	}
	return s[len(prefix):], true
}

// allDigits reports whether s is exactly n ASCII digits.
func allDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
