package postal

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// PostalAddress is the postal address of a recipient; the national
// directory's extraction publishes it in columns 21 to 31.
//
// Lines are the non-empty lines L2 (location complement), L3 (distribution
// complement: BP, CS…), L4 (number, repetition index, street type code and
// street name joined by spaces) and L5 (place name or mention), in this
// order. RoutingLine is L6, the "ligne d'acheminement" as published (for
// example "75002 PARIS" or "75700 PARIS CEDEX 07"): a letter is addressed
// with Lines followed by RoutingLine. City is RoutingLine without a leading
// PostalCode.
type PostalAddress struct {
	Lines       []string `json:"lines,omitempty"`
	RoutingLine string   `json:"routing_line,omitempty"`
	PostalCode  string   `json:"postal_code,omitempty"`
	City        string   `json:"city,omitempty"`
	Department  string   `json:"department,omitempty"`
	Country     string   `json:"country,omitempty"`
}

// Envelope is a as it is written on an envelope: its lines, its routing
// line (else postal code and city), its country unless France.
func (a PostalAddress) Envelope() []string {
	var out []string
	for _, l := range a.Lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	routing := strings.TrimSpace(a.RoutingLine)
	if routing == "" {
		routing = strings.TrimSpace(a.PostalCode + " " + strings.ToUpper(a.City))
	}
	if routing != "" {
		out = append(out, routing)
	}
	if c := strings.TrimSpace(a.Country); c != "" && !strings.EqualFold(c, "france") && !strings.EqualFold(c, "FR") {
		out = append(out, strings.ToUpper(c))
	}
	return out
}

// String is a on one line, or "(aucune)".
func (a PostalAddress) String() string {
	if lines := a.Envelope(); len(lines) > 0 {
		return strings.Join(lines, ", ")
	}
	return "(aucune)"
}

// Known reports whether a letter can be posted to a: it has a routing line
// or a city.
func (a PostalAddress) Known() bool {
	return strings.TrimSpace(a.RoutingLine) != "" || strings.TrimSpace(a.City) != ""
}

// Limits of an address block in the French postal norm NF Z 10-011.
const (
	MaxAddressLines = 6  // Lines of an address block, the name and the routing line included.
	MaxLineLen      = 38 // Characters of a line of an address block, spaces included.
)

// Bounds of the input AddressBlock reads, beyond what a block can show:
// longer lines and further lines only cost time.
const (
	maxInputLen   = MaxAddressLines * MaxLineLen // characters of a line
	maxInputLines = 4 * MaxAddressLines          // address lines, the last kept
)

// clip returns s cut to maxInputLen characters.
func clip(s string) string {
	if len(s) <= maxInputLen {
		return s
	}
	if r := []rune(s); len(r) > maxInputLen {
		return string(r[:maxInputLen])
	}
	return s
}

// ErrNotPostable is returned by AddressBlock (and Render) for an address
// without routing line nor city: a letter cannot be posted to it. It is a
// permanent error.
var ErrNotPostable = errors.New("postal: address has no routing line nor city")

// AddressBlock returns the lines of the address block of a letter to name
// at a, laid out as the French postal norm NF Z 10-011 and La Poste's
// address normalisation want it: at most MaxAddressLines lines of at most
// MaxLineLen characters, in this order:
//
//   - the name, as given (white space and control characters collapsed);
//   - the address lines of a (location and distribution complements, street,
//     lieu-dit, BP…), in upper case without accents nor punctuation but
//     hyphens and slashes;
//   - the routing line, "CODE POSTAL LOCALITÉ" from a.RoutingLine or else
//     a.PostalCode and a.City, in upper case without accents nor
//     punctuation, "CEDEX nn" moved to its end;
//   - a country line, in upper case without accents, only when a.Country is
//     set and is not France nor one of its overseas departments and
//     territories (postal codes 971 to 976 and 984 to 988), whose addresses
//     are French.
//
// A line longer than MaxLineLen is cut at a word onto the next line while
// the block stays within MaxAddressLines lines (the name first, then the
// address lines in order); otherwise the usual words are abbreviated
// (AVENUE AV, BOULEVARD BD, RESIDENCE RES, SAINT ST…) and the line is then
// truncated. When there are too many address lines, adjacent ones are
// merged when they fit on one line, the first pair first, and otherwise
// the first lines (the complements) are dropped. AddressBlock reads the first
// MaxAddressLines × MaxLineLen characters of each value and the last 24
// address lines, more than a block can show. It returns ErrNotPostable
// only when a has no routing line nor city.
func AddressBlock(name string, a PostalAddress) ([]string, error) {
	routing := routingLine(a)
	if routing == "" {
		return nil, ErrNotPostable
	}
	country := countryLine(a.Country)
	name = clip(strings.Join(strings.Fields(strings.Map(printable, clip(name))), " "))

	var addr []string
	for _, l := range a.Lines {
		if l = clip(postalText(clip(l), true)); l != "" {
			addr = append(addr, l)
		}
	}
	if len(addr) > maxInputLines {
		addr = addr[len(addr)-maxInputLines:] // the first lines go first (see reduceLines)
	}
	room := MaxAddressLines - 1 // the routing line
	if country != "" {
		room--
	}
	if name != "" {
		room--
	}
	addr = reduceLines(addr, room)
	// Make room for the lines to cut by merging address lines.
	for len(addr) > 1 && needed(name, addr) > room+btoi(name != "") {
		merged := reduceLines(addr, len(addr)-1)
		if !sameWords(merged, addr) {
			break // no merge fits: cutting will abbreviate or truncate
		}
		addr = merged
	}
	spare := room - len(addr)

	var out []string
	if name != "" {
		var ls []string
		ls, spare = fitLine(name, spare, abbreviateName)
		out = append(out, ls...)
	}
	for _, l := range addr {
		var ls []string
		ls, spare = fitLine(l, spare, abbreviate)
		out = append(out, ls...)
	}
	out = append(out, routing)
	if country != "" {
		out = append(out, country)
	}
	return out, nil
}

// Envelope returns what the envelope of a letter to name at a reads, in a
// form to compare: the words of its address block (see AddressBlock) in
// upper case, without accents nor punctuation. Two letters with the same
// Envelope go to the same person: the post cannot tell them apart. It
// returns ErrNotPostable as AddressBlock does.
func Envelope(name string, a PostalAddress) (string, error) {
	lines, err := AddressBlock(name, a)
	if err != nil {
		return "", err
	}
	return postalText(strings.Join(lines, " "), true), nil
}

// fitLine returns the line s cut into lines of at most MaxLineLen
// characters: at words onto at most spare more lines, else abbreviated by
// abbr and truncated. It also returns the spare lines left.
func fitLine(s string, spare int, abbr func(string) string) ([]string, int) {
	if runeLen(s) <= MaxLineLen {
		return []string{s}, spare
	}
	if parts, ok := wrapWords(s); ok && len(parts)-1 <= spare {
		return parts, spare - (len(parts) - 1)
	}
	return []string{truncate(abbr(s), MaxLineLen)}, spare
}

// needed returns the lines the name and address lines take once cut at
// words.
func needed(name string, addr []string) int {
	n := 0
	for _, l := range append([]string{name}, addr...) {
		if l == "" {
			continue
		}
		if ls, ok := wrapWords(l); ok {
			n += len(ls)
		} else {
			n++
		}
	}
	return n
}

// sameWords reports whether a and b have the same words once
// abbreviated: a merge lost no word.
func sameWords(a, b []string) bool {
	return abbreviate(strings.Join(a, " ")) == abbreviate(strings.Join(b, " "))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// wrapWords cuts s at spaces into lines of at most MaxLineLen
// characters; ok is false when a word is longer than that.
func wrapWords(s string) (lines []string, ok bool) {
	cur := ""
	for w := range strings.FieldsSeq(s) {
		if runeLen(w) > MaxLineLen {
			return nil, false
		}
		switch {
		case cur == "":
			cur = w
		case runeLen(cur)+1+runeLen(w) <= MaxLineLen:
			cur += " " + w
		default:
			lines = append(lines, cur)
			cur = w
		}
	}
	return append(lines, cur), true
}

// truncate returns s cut to at most n characters, at a space or after a
// hyphen when one falls in the last third of the cut.
func truncate(s string, n int) string {
	if runeLen(s) <= n {
		return s
	}
	r := []rune(s)
	for i := n; i >= n*2/3 && i > 0; i-- {
		if r[i] == ' ' || r[i] == '-' {
			return strings.TrimRight(string(r[:i]), " -")
		}
	}
	return strings.TrimRight(string(r[:n]), " -")
}

// reduceLines returns lines reduced to at most n lines: adjacent lines are
// merged, the first pair first, when they fit on one line (abbreviated if
// needed); then the first lines are dropped.
func reduceLines(lines []string, n int) []string {
	lines = append([]string(nil), lines...)
	for len(lines) > n {
		merged := false
		for i := 0; i+1 < len(lines) && !merged; i++ {
			j := lines[i] + " " + lines[i+1]
			if runeLen(j) > MaxLineLen {
				j = abbreviate(j)
			}
			if runeLen(j) <= MaxLineLen {
				lines = append(lines[:i], append([]string{j}, lines[i+2:]...)...)
				merged = true
			}
		}
		if !merged {
			lines = lines[1:]
		}
	}
	return lines
}

// abbreviations are La Poste's abbreviations of the words of address lines.
var abbreviations = map[string]string{
	"ALLEE":       "ALL",
	"APPARTEMENT": "APT",
	"AVENUE":      "AV",
	"BATIMENT":    "BAT",
	"BOULEVARD":   "BD",
	"CAPITAINE":   "CNE",
	"CHEMIN":      "CHE",
	"COLONEL":     "COL",
	"COMMANDANT":  "CDT",
	"DOCTEUR":     "DR",
	"ESCALIER":    "ESC",
	"FAUBOURG":    "FG",
	"GENERAL":     "GAL",
	"HAMEAU":      "HAM",
	"IMMEUBLE":    "IMM",
	"IMPASSE":     "IMP",
	"LIEUTENANT":  "LT",
	"LOTISSEMENT": "LOT",
	"MARECHAL":    "MAL",
	"PLACE":       "PL",
	"PRESIDENT":   "PDT",
	"PROFESSEUR":  "PR",
	"QUARTIER":    "QUA",
	"RESIDENCE":   "RES",
	"ROUTE":       "RTE",
	"SAINT":       "ST",
	"SAINTE":      "STE",
	"SQUARE":      "SQ",
}

// abbreviate returns the upper-case line s with La Poste's abbreviations,
// also of the parts of hyphenated words (SAINT-MARTIN ST-MARTIN).
func abbreviate(s string) string {
	ws := strings.Fields(s)
	for i, w := range ws {
		parts := strings.Split(w, "-")
		for j, p := range parts {
			if a, ok := abbreviations[p]; ok {
				parts[j] = a
			}
		}
		ws[i] = strings.Join(parts, "-")
	}
	return strings.Join(ws, " ")
}

// nameAbbreviations abbreviate the titles of a name line, whatever their
// case and accents.
var nameAbbreviations = map[string]string{
	"DOCTEUR":      "Dr",
	"PROFESSEUR":   "Pr",
	"MADAME":       "Mme",
	"MADEMOISELLE": "Mlle",
	"MONSIEUR":     "M.",
}

// abbreviateName returns the name line s with its titles abbreviated and,
// while it is longer than MaxLineLen, its given names (the capitalised
// words not in upper case, family names being written in capitals)
// reduced to their initials, from the first.
func abbreviateName(s string) string {
	ws := strings.Fields(s)
	for i, w := range ws {
		if a, ok := nameAbbreviations[postalText(w, false)]; ok {
			ws[i] = a
		}
	}
	for i, w := range ws {
		if runeLen(strings.Join(ws, " ")) <= MaxLineLen {
			break
		}
		if first, _ := utf8.DecodeRuneInString(w); !unicode.IsUpper(first) || w == strings.ToUpper(w) ||
			strings.HasSuffix(w, ".") || slices.Contains(slices.Collect(maps.Values(nameAbbreviations)), w) {
			continue
		}
		ws[i] = initials(w)
	}
	return strings.Join(ws, " ")
}

// initials returns the initials of a given name: "Jean-Christophe" "J.-C.".
func initials(w string) string {
	parts := strings.Split(w, "-")
	for i, p := range parts {
		if r, _ := utf8.DecodeRuneInString(p); r != utf8.RuneError && p != "" {
			parts[i] = string(r) + "."
		}
	}
	return strings.Join(parts, "-")
}

// routingLine returns the routing line of a ("" when there is none): upper
// case, no accents nor punctuation, CEDEX and its number at the end, at
// most MaxLineLen characters (abbreviated, then its locality truncated).
func routingLine(a PostalAddress) string {
	s := clip(postalText(clip(a.RoutingLine), false))
	if s == "" || isDigits(s) && strings.TrimSpace(a.City) != "" { // no routing line, or only its postal code
		city := clip(postalText(clip(a.City), false))
		if city == "" {
			return ""
		}
		code := clip(postalText(clip(a.PostalCode), false))
		if code == "" && isDigits(s) {
			code = s
		}
		if code != "" && !strings.HasPrefix(city, code+" ") {
			city = code + " " + city
		}
		s = city
	}
	ws := strings.Fields(s)
	var cedex []string
	for i, w := range ws {
		if w == "CEDEX" {
			n := i + 1
			if n < len(ws) && isDigits(ws[n]) {
				n++
			}
			cedex = append(cedex, ws[i:n]...)
			ws = append(ws[:i:i], ws[n:]...)
			break
		}
	}
	var code []string
	if len(ws) > 0 && isDigits(ws[0]) {
		code, ws = ws[:1], ws[1:]
	}
	locality := strings.Join(ws, " ")
	line := func() string {
		return strings.Join(append(append(append([]string(nil), code...), strings.Fields(locality)...), cedex...), " ")
	}
	if runeLen(line()) > MaxLineLen {
		locality = abbreviate(locality)
	}
	if over := runeLen(line()) - MaxLineLen; over > 0 {
		locality = truncate(locality, max(runeLen(locality)-over, 1))
	}
	return truncate(line(), MaxLineLen)
}

// frenchCountries are the names and ISO 3166 codes (normalised by
// postalText) of France and of its overseas departments and territories:
// an address there needs no country line.
var frenchCountries = map[string]bool{
	"FR": true, "FRA": true, "FRANCE": true, "FRANCE METROPOLITAINE": true, "REPUBLIQUE FRANCAISE": true,
	"DOM": true, "TOM": true, "DOM TOM": true, "DROM": true, "COM": true, "OUTRE MER": true, "FRANCE OUTRE MER": true,
	"GP": true, "GLP": true, "GUADELOUPE": true,
	"MQ": true, "MTQ": true, "MARTINIQUE": true,
	"GF": true, "GUF": true, "GUYANE": true, "GUYANE FRANCAISE": true,
	"RE": true, "REU": true, "REUNION": true, "LA REUNION": true, "ILE DE LA REUNION": true,
	"YT": true, "MYT": true, "MAYOTTE": true,
	"PM": true, "SPM": true, "SAINT PIERRE ET MIQUELON": true, "ST PIERRE ET MIQUELON": true,
	"BL": true, "BLM": true, "SAINT BARTHELEMY": true, "ST BARTHELEMY": true,
	"MF": true, "MAF": true, "SAINT MARTIN": true, "ST MARTIN": true,
	"WF": true, "WLF": true, "WALLIS ET FUTUNA": true,
	"PF": true, "PYF": true, "POLYNESIE FRANCAISE": true, "POLYNESIE": true,
	"NC": true, "NCL": true, "NOUVELLE CALEDONIE": true,
	"TF": true, "ATF": true, "TAAF": true, "TERRES AUSTRALES ET ANTARCTIQUES FRANCAISES": true,
}

// countryNames are the French names of the countries whose ISO 3166 codes
// the directory may hold instead of a name.
var countryNames = map[string]string{
	"AD": "ANDORRE", "BE": "BELGIQUE", "CH": "SUISSE", "DE": "ALLEMAGNE", "ES": "ESPAGNE",
	"GB": "ROYAUME UNI", "IT": "ITALIE", "LU": "LUXEMBOURG", "MC": "MONACO", "NL": "PAYS BAS",
	"PT": "PORTUGAL",
}

// countryLine returns the country line for country, "" for France and
// its overseas departments and territories.
func countryLine(country string) string {
	c := clip(postalText(clip(country), false))
	if c == "" || frenchCountries[c] {
		return ""
	}
	if n, ok := countryNames[c]; ok {
		c = n
	}
	return truncate(c, MaxLineLen)
}

// postalText returns s in upper case, without accents, its punctuation
// replaced by spaces (but hyphens and slashes when keepHyphens is set)
// and its white space collapsed.
func postalText(s string, keepHyphens bool) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		r = unicode.ToUpper(r)
		switch {
		case r == 'Œ':
			b.WriteString("OE")
		case r == 'Æ':
			b.WriteString("AE")
		case r == 'ß' || r == 'ẞ':
			b.WriteString("SS")
		case r == 'Ø':
			b.WriteByte('O')
		case r == 'Ł':
			b.WriteByte('L')
		case r == 'Đ':
			b.WriteByte('D')
		case r == 'ı':
			b.WriteByte('I')
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		case keepHyphens && (r == '-' || r == '/' || r == '&'):
			b.WriteRune(r)
		case unicode.Is(unicode.Pd, r) && keepHyphens:
			b.WriteByte('-')
		default:
			b.WriteByte(' ')
		}
	}
	return strings.Trim(strings.Join(strings.Fields(b.String()), " "), "-/& ")
}

// printable maps the control characters and invalid UTF-8 of a name to
// spaces.
func printable(r rune) rune {
	if r == utf8.RuneError || !unicode.IsPrint(r) {
		return ' '
	}
	return r
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }
