package paper

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// cp1252Extra are the runes Windows-1252 encodes in 0x80–0x9F, where
// ISO 8859-1 has control characters.
const cp1252Extra = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"

// inCP1252 reports whether r has a Windows-1252 code, the encoding of
// the PDF core fonts.
func inCP1252(r rune) bool {
	return r >= 0x20 && r < 0x7F || r >= 0xA0 && r <= 0xFF || strings.ContainsRune(cp1252Extra, r)
}

// latin returns s with every rune Windows-1252 cannot encode replaced:
// control characters and typographic spaces by a space, other dashes and
// minus signs by a hyphen, letters with other accents by their base
// letter, and the rest by '?'.
func latin(s string) string {
	ok := true
	for _, r := range s {
		if !inCP1252(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case inCP1252(r):
			b.WriteRune(r)
		case unicode.IsSpace(r) || unicode.IsControl(r):
			b.WriteByte(' ')
		case unicode.Is(unicode.Pd, r) || r == '−':
			b.WriteByte('-')
		case r == '‐' || r == '‑':
			b.WriteByte('-')
		default:
			base := ""
			for _, d := range norm.NFD.String(string(r)) {
				if inCP1252(d) {
					base += string(d)
				}
			}
			if base == "" {
				base = "?"
			}
			b.WriteString(base)
		}
	}
	return b.String()
}

// months are the French names of the months.
var months = [...]string{"janvier", "février", "mars", "avril", "mai", "juin",
	"juillet", "août", "septembre", "octobre", "novembre", "décembre"}

// frenchDate returns t as a French letter dates it: "le 2 décembre 2026",
// "le 1er mars 2027".
func frenchDate(t time.Time) string {
	day := fmt.Sprint(t.Day())
	if t.Day() == 1 {
		day = "1er"
	}
	return fmt.Sprintf("le %s %s %d", day, months[t.Month()-1], t.Year())
}
