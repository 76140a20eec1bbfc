package correspondents

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// SearchKey folds s for search: lower case, no accents, apostrophes and
// hyphens as spaces, single spaces. "Dupont-Démo  Cl'aire" gives
// "dupont demo cl aire". The directory's search columns hold SearchKey of
// their values, and searches fold the query the same way.
func SearchKey(s string) string {
	s = norm.NFD.String(s)
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.Is(unicode.Mn, r):
			return -1
		case r == '-' || r == '\'' || r == '\u2019' || r == '.' || r == ',' || unicode.IsSpace(r):
			return ' '
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			return unicode.ToLower(r)
		}
		return ' '
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
