package hl7

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// salvagedFields are the MSH fields SalvageHeader keeps: those NewACK mirrors.
var salvagedFields = []int{3, 4, 5, 6, 9, 10, 11, 12, 17}

// maxSalvagedComponents bounds the components kept per field (HD, MSG and VID have three).
const maxSalvagedComponents = 3

// maxSalvageScan bounds the bytes of one field SalvageHeader reads, so that
// a header without a line end (megabytes on one line) costs no more than a
// normal one.
const maxSalvageScan = 1024

// SalvageHeader returns, best effort, the MSH segment of raw input whose
// header Parse could not read (malformed MSH-1 or MSH-2, a NUL byte in MSH…),
// as a message for NewACK, which then mirrors the sender as for a parsed
// message; it returns nil when raw holds no "MSH".
//
// The header is read from the first "MSH" of raw to the end of its line:
// the field separator is the byte after "MSH" when it is a valid delimiter,
// else '|' (the bytes before the first '|' are then taken as MSH-1 and
// MSH-2). Encoding characters broken in two by the field separator
// ("MSH|^~|&|…") are joined back. Fields are cut at MSH-2's repetition
// separator and split at its component separator when these are usable
// (valid, distinct, not the field separator), else cut at the first of the
// usual delimiters "^~\&". Escape sequences are not decoded; invalid UTF-8
// is read as ISO-8859-1; non-printable characters are dropped, values are
// trimmed and cut to 199 bytes. Only MSH-3, -4, -5, -6, -9, -10, -11, -12
// and -17 are kept, with at most three components each; MSH-10 is
// ControlIDOf(raw). The message has DefaultDelimiters and no MSH-18.
func SalvageHeader(raw []byte) *Message {
	i := bytes.Index(raw, []byte("MSH"))
	if i < 0 {
		return nil
	}
	line := raw[i:]
	line = line[:indexEOL(line)]
	d := salvageDelimiters(line)

	// parts[0] is MSH-2 and parts[n-2] MSH-n; one more split than needed for
	// MSH-17 leaves room to join MSH-2 back.
	start := min(len(line), 4)
	if !d.sepValid {
		start = min(len(line), 3)
	}
	parts := bytes.SplitN(line[start:], []byte{d.sep}, 18)
	if d.sepValid && len(parts) > 2 && brokenEncoding(parts[0], parts[1]) {
		parts[1] = line[start : start+len(parts[0])+1+len(parts[1])]
		parts = parts[1:]
	}
	enc := parts[0]
	if !d.sepValid {
		// The bytes before MSH-2 are the invalid field separator.
		for len(enc) > 0 && !validDelimiter(enc[0]) {
			enc = enc[1:]
		}
	}
	d.encoding(enc)

	msh := NewSegment("MSH")
	msh.Set(1, Text(string(DefaultDelimiters.Field)))
	msh.Set(2, Text(DefaultDelimiters.encodingChars()))
	for _, n := range salvagedFields {
		if n-2 >= len(parts) {
			break
		}
		if f := d.field(parts[n-2]); f != nil {
			msh.Set(n, f)
		}
	}
	m := &Message{Delims: DefaultDelimiters}
	m.Add(msh)
	return m
}

// salvage holds the delimiters SalvageHeader found usable; 0 means unusable.
type salvage struct {
	sep       byte // field separator
	sepValid  bool // sep is the byte after "MSH", not the '|' fallback
	comp, rep byte // component and repetition separators
}

// salvageDelimiters returns the field separator of the MSH line.
func salvageDelimiters(line []byte) salvage {
	if len(line) > 3 && validDelimiter(line[3]) {
		return salvage{sep: line[3], sepValid: true}
	}
	return salvage{sep: '|'}
}

// encoding takes the component and repetition separators from MSH-2 when usable.
func (d *salvage) encoding(enc []byte) {
	if len(enc) == 0 || !validDelimiter(enc[0]) || enc[0] == d.sep {
		return
	}
	d.comp = enc[0]
	if len(enc) > 1 && validDelimiter(enc[1]) && enc[1] != d.sep && enc[1] != d.comp {
		d.rep = enc[1]
	}
}

// brokenEncoding reports whether msh2 and next are encoding characters that
// the field separator split in two ("^~" and "&" of "^~|&"): together four or
// five characters, next made of delimiters only.
func brokenEncoding(msh2, next []byte) bool {
	if len(msh2) >= 4 || len(next) == 0 || len(msh2)+1+len(next) > 5 {
		return false
	}
	for _, c := range next {
		if !validDelimiter(c) {
			return false
		}
	}
	return len(msh2)+1+len(next) >= 4
}

// field returns the first repetition of the raw field v, split into at most
// maxSalvagedComponents cleaned components; nil when they are all empty.
func (d *salvage) field(v []byte) Field {
	if len(v) > maxSalvageScan {
		// Cut before a UTF-8 character rather than in it.
		cut := maxSalvageScan
		for cut > maxSalvageScan-utf8.UTFMax && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	if d.rep != 0 {
		if j := bytes.IndexByte(v, d.rep); j >= 0 {
			v = v[:j]
		}
	}
	var comps []string
	if d.comp == 0 {
		if j := bytes.IndexAny(v, `^~\&`); j >= 0 {
			v = v[:j]
		}
		comps = []string{salvageText(v)}
	} else {
		for k := 0; k < maxSalvagedComponents; k++ {
			c := v
			j := bytes.IndexByte(v, d.comp)
			if j >= 0 {
				c, v = v[:j], v[j+1:]
			}
			comps = append(comps, salvageText(c))
			if j < 0 {
				break
			}
		}
	}
	return Comps(comps...)
}

// salvageText returns b as printable UTF-8 (read as ISO-8859-1 when it is
// not valid UTF-8), trimmed and cut to maxControlIDLen bytes.
func salvageText(b []byte) string {
	s := string(b)
	if !utf8.Valid(b) {
		s = latin1Charset.decode(b)
	}
	var sb strings.Builder
	for _, r := range s {
		if r >= ' ' && r != utf8.RuneError && !(r >= 0x7F && r < 0xA0) {
			sb.WriteRune(r)
		}
	}
	v := strings.TrimSpace(sb.String())
	if len(v) > maxControlIDLen {
		v = v[:maxControlIDLen]
		for !utf8.ValidString(v) {
			v = v[:len(v)-1]
		}
		v = strings.TrimSpace(v) // the cut may end on a space
	}
	return v
}
