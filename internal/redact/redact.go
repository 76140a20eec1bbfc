package redact

import (
	"regexp"
	"strings"
)

// Replacements of what Text masks. None holds a digit, a double quote, a
// French quote or an @: masked text is masked again unchanged.
const (
	patientAddress = "[adresse patient]"
	nirMask        = "[NIR]"
	dateMask       = "[date]"
	quotedMask     = "…"
)

// patientAddresses matches an address of the patients' MSSanté domain, its
// local part (a quoted one too) and any label glued after the domain.
var patientAddresses = regexp.MustCompile(`(?i)(?:"[^"]*"|[^\s<>()\[\],;:@"]*)@patient\.mssante\.fr[a-z0-9.-]*`)

// nirBody is the NIR without its key: sex, year, month, department,
// commune, order.
const nirBody = `[1278](?:[0-9]{4}(?:[0-9]{2}|2[AaBb])[0-9]{6}| [0-9]{2} [0-9]{2} (?:[0-9]{2}|2[AaBb]) [0-9]{3} [0-9]{3})`

// Number shapes, each anchored where a number starts (not after a digit)
// and valid only where it ends (not before a digit).
var (
	// nir15, nir13: the NIR (INS) with and without its key, its groups
	// all spaced (2 80 01 75 123 456 78) or none, the key maybe apart,
	// Corsica's 2A and 2B.
	nir15 = regexp.MustCompile(`^` + nirBody + ` ?[0-9]{2}`)
	nir13 = regexp.MustCompile(`^` + nirBody)
	// compactDate: YYYYMMDD, and the HL7 timestamps that start with it
	// (YYYYMMDDHH[MM[SS]]).
	compactDate = regexp.MustCompile(`^(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])((?:[0-9]{2}){0,3})`)
	// isoDate: YYYY-MM-DD; frenchDate: DD/MM/YYYY (or DD.MM.YYYY, DD-MM-YYYY).
	isoDate    = regexp.MustCompile(`^(?:19|20)[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])`)
	frenchDate = regexp.MustCompile(`^(?:0[1-9]|[12][0-9]|3[01])[/.-](?:0[1-9]|1[0-2])[/.-](?:19|20)[0-9]{2}`)
	// timeOfDay follows the date of a timestamp.
	timeOfDay = regexp.MustCompile(`^[T ]((?:[01][0-9]|2[0-3]):[0-5][0-9])(?:[^0-9]|$)`)
)

// Text returns s with what may identify a patient masked, for a log line:
//   - the contents of double-quoted ("…", escapes included) and French
//     («…») quotes, where errors repeat a field's value: an unterminated
//     quote masks the rest of s;
//   - addresses at patient.mssante.fr, whose local part is the INS: [adresse patient];
//   - NIR-shaped numbers, 13 or 15 digits starting with 1, 2, 7 or 8,
//     unspaced or spaced as 2 80 01 75 123 456 78, Corsica's 2A/2B
//     included: [NIR];
//   - dates a birth date could be written as, YYYYMMDD (alone or as an
//     HL7 timestamp at midnight), YYYY-MM-DD and DD/MM/YYYY: [date]. A date
//     with a time of day other than midnight is a timestamp (a
//     certificate's validity, a server's clock) and stays.
//
// Other numbers stay: ids, SMTP codes (550, 5.1.1), RPPS (11 digits), ports.
// Text(Text(s)) == Text(s).
func Text(s string) string {
	if strings.ContainsAny(s, `"«`) {
		s = unquote(s)
	}
	if strings.Contains(s, "@") {
		s = patientAddresses.ReplaceAllLiteralString(s, patientAddress)
	}
	if strings.ContainsAny(s, "0123456789") {
		s = numbers(s)
	}
	return s
}

// unquote empties every double-quoted and French-quoted string of s but an
// empty one, leaving its quotes around "…".
func unquote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		var end int // index just past the closing quote; -1 when there is none
		var closing string
		switch {
		case s[i] == '"':
			end, closing = closingQuote(s, i+1), `"`
			b.WriteByte('"')
			i++
		case strings.HasPrefix(s[i:], "«"):
			j := strings.Index(s[i+len("«"):], "»")
			end, closing = -1, "»"
			if j >= 0 {
				end = i + len("«") + j + len("»")
			}
			b.WriteString("«")
			i += len("«")
		default:
			b.WriteByte(s[i])
			i++
			continue
		}
		if end < 0 { // unterminated: the rest may be the value
			if i < len(s) {
				b.WriteString(quotedMask)
			}
			return b.String()
		}
		if i < end-len(closing) {
			b.WriteString(quotedMask)
		}
		b.WriteString(closing)
		i = end
	}
	return b.String()
}

// closingQuote returns the index just past the double quote closing the
// string that starts at s[from:], skipping backslash escapes, or -1.
func closingQuote(s string, from int) int {
	for i := from; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// numbers masks the NIRs and the dates of s.
func numbers(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		// s[i] starts a number (the previous byte, if any, is no digit).
		if n, mask := numberAt(s[i:]); n > 0 {
			b.WriteString(mask)
			i += n
			continue
		}
		for i < len(s) && isDigit(s[i]) {
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

// numberAt returns the length of the NIR or date s starts with, and its
// mask; 0 when it starts with neither.
func numberAt(s string) (int, string) {
	for _, nir := range []*regexp.Regexp{nir15, nir13} {
		if n := ending(s, nir); n > 0 {
			return n, nirMask
		}
	}
	if m := compactDate.FindStringSubmatchIndex(s); m != nil && !followedByDigit(s, m[1]) &&
		strings.Trim(s[m[2]:m[3]], "0") == "" {
		return m[1], dateMask
	}
	for _, date := range []*regexp.Regexp{isoDate, frenchDate} {
		if n := ending(s, date); n > 0 {
			if t := timeOfDay.FindStringSubmatch(s[n:]); t != nil && t[1] != "00:00" {
				return 0, ""
			}
			return n, dateMask
		}
	}
	return 0, ""
}

// ending returns the length of re's match at the start of s when no digit
// follows it, else 0.
func ending(s string, re *regexp.Regexp) int {
	m := re.FindStringIndex(s)
	if m == nil || followedByDigit(s, m[1]) {
		return 0
	}
	return m[1]
}

func followedByDigit(s string, i int) bool { return i < len(s) && isDigit(s[i]) }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
