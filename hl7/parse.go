package hl7

import (
	"bytes"
	"fmt"
	"strings"
)

// DefaultMaxSize is the message size limit Parse applies when ParseOptions.MaxSize is 0 (16 MiB).
const DefaultMaxSize = 16 << 20

// minBase64Run is the shortest trailing base64 run (a multiple of 4) after
// which a non-segment line is read as the continuation of a wrapped payload.
const minBase64Run = 32

// ParseOptions configure Parse.
type ParseOptions struct {
	// DefaultCharset is the character set used when MSH-18 is empty: "" or
	// "UNICODE UTF-8" mean UTF-8 (with the ISO-8859-1 fallback), or "8859/1",
	// "8859/15"… (see KnownCharset). Defaults to UTF-8.
	DefaultCharset string
	// MaxSize is the largest accepted input in bytes. Defaults to DefaultMaxSize when 0.
	MaxSize int
}

// ParseError describes why a message was rejected, located and coded for an ERR segment.
type ParseError struct {
	Segment  string // segment ID where the error was found ("" when not located)
	Sequence int    // 1-based position of the segment in the message (0 when not located)
	Field    int    // field number (0 when the whole segment or message is concerned)
	Code     int    // HL7 table 0357 error code, such as CodeSegmentSequence
	Msg      string // human-readable detail, free of message content beyond the location
}

// Error implements error.
func (e *ParseError) Error() string {
	var sb strings.Builder
	sb.WriteString("hl7: ")
	switch {
	case e.Segment != "" && e.Field > 0:
		fmt.Fprintf(&sb, "%s-%d (segment %d): ", e.Segment, e.Field, e.Sequence)
	case e.Segment != "":
		fmt.Fprintf(&sb, "%s (segment %d): ", e.Segment, e.Sequence)
	case e.Sequence > 0:
		fmt.Fprintf(&sb, "segment %d: ", e.Sequence)
	}
	sb.WriteString(e.Msg)
	fmt.Fprintf(&sb, " (%d %s)", e.Code, ErrorCodeText(e.Code))
	return sb.String()
}

// Detail returns the error as an ERR segment description for NewACK; when the
// segment ID is unknown, the segment position goes into the user message.
func (e *ParseError) Detail() ErrDetail {
	msg := e.Msg
	if e.Segment == "" && e.Sequence > 0 {
		msg = fmt.Sprintf("segment %d : %s", e.Sequence, msg)
	}
	return ErrDetail{Segment: e.Segment, Sequence: e.Sequence, Field: e.Field, Code: e.Code, Severity: "E", Msg: msg}
}

// Parse decodes one ER7-encoded HL7 v2 message (see the package documentation for the rules).
//
// On error it returns a *ParseError; when the MSH segment itself could be
// parsed, it also returns the partial message (the segments read before the
// error, at least MSH) so that an acknowledgement can mirror its header.
func Parse(data []byte, opt ParseOptions) (*Message, error) {
	maxSize := opt.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	size := len(data)
	data = trimLeading(data)
	if len(data) < 3 || string(data[:3]) != "MSH" {
		return nil, &ParseError{Segment: segmentID(data), Sequence: 1, Code: CodeSegmentSequence,
			Msg: fmt.Sprintf("le message commence par %q, pas par un segment MSH", sanitizeName(data))}
	}
	d, encLen, perr := parseDelimiters(data)
	if perr != nil {
		return nil, perr
	}
	// A NUL byte is rare and fatal: one memchr over the input tells whether
	// the segments need to be searched for it (see parser.nulError).
	nul := bytes.IndexByte(data, 0) >= 0
	header := data[:indexEOL(data)]
	label := mshCharsetLabel(header, d)

	var hdrErr *ParseError
	cs, ok := lookupCharset(label)
	switch {
	case label == "":
		if cs, ok = lookupCharset(opt.DefaultCharset); !ok {
			hdrErr = &ParseError{Segment: "MSH", Sequence: 1, Field: 18, Code: CodeInternal,
				Msg: fmt.Sprintf("jeu de caractères par défaut %q invalide", opt.DefaultCharset)}
		}
	case !ok:
		hdrErr = &ParseError{Segment: "MSH", Sequence: 1, Field: 18, Code: CodeDataType,
			Msg: fmt.Sprintf("jeu de caractères %q non pris en charge (UNICODE UTF-8, 8859/15 ou 8859/1)", label)}
	}
	if hdrErr == nil && size > maxSize {
		hdrErr = &ParseError{Code: CodeInternal,
			Msg: fmt.Sprintf("le message de %d octets dépasse la limite de %d octets", size, maxSize)}
	}
	if hdrErr != nil {
		// Parse MSH alone so that the caller can acknowledge the message.
		if !ok {
			cs = latin1Charset
		}
		p := newParser(d, encLen, cs.effective(header), nul)
		s := p.cs.decode(header)
		p.prepare(s)
		m, err := p.parseMessage(s, label, true)
		if err != nil {
			return m, err
		}
		return m, hdrErr
	}
	p := newParser(d, encLen, cs.effective(data), nul)
	s := p.cs.decode(data)
	p.prepare(s)
	return p.parseMessage(s, label, false)
}

// parser holds the state of one Parse call. Values are substrings of the
// decoded message and the slices are carved from a few slabs sized from the
// delimiter counts, so parsing allocates a constant number of times plus once
// per value holding escape sequences.
type parser struct {
	d      Delimiters
	encLen int
	cs     charset
	nul    bool // the input holds a NUL byte somewhere: segments are searched for it
	escNUL bool // a \X..\ escape decoded to a NUL byte: parseSegment rejects the segment

	segs   []Segment
	fields []Field
	reps   []Repetition
	comps  []Component
	subs   []string
	buf    []byte // scratch for unescaping
	hexBuf []byte // scratch for \X..\ escapes
}

func newParser(d Delimiters, encLen int, cs charset, nul bool) *parser {
	return &parser{d: d, encLen: encLen, cs: cs, nul: nul}
}

// prepare sizes the slabs for the decoded message s.
func (p *parser) prepare(s string) {
	count := func(c byte) int { return strings.Count(s, string(rune(c))) }
	lines := count('\r') + count('\n') + 1
	nf := count(p.d.Field) + lines + 2
	nr := nf + count(p.d.Repetition)
	nc := nr + count(p.d.Component)
	ns := nc + count(p.d.SubComponent)
	p.segs = make([]Segment, 0, lines)
	p.fields = make([]Field, 0, nf)
	p.reps = make([]Repetition, 0, nr)
	p.comps = make([]Component, 0, nc)
	p.subs = make([]string, 0, ns)
}

// parseMessage splits s into segments and parses them; with headerOnly it stops after MSH.
func (p *parser) parseMessage(s, label string, headerOnly bool) (*Message, error) {
	m := &Message{Delims: p.d, Charset: label}
	seq := 0
	var (
		cur     string // current logical segment
		joined  []byte // cur extended with continuation lines, nil if not extended
		haveCur bool
		run     int // trailing base64 run of the current logical segment
	)
	flush := func() *ParseError {
		text := cur
		if joined != nil {
			text = string(joined)
			joined = nil
		}
		seq++
		seg, perr := p.parseSegment(text, seq)
		if perr != nil {
			return perr
		}
		m.Segments = append(m.Segments, seg)
		if seq == 1 {
			return checkMSH(seg)
		}
		return nil
	}

	sc := lineScanner{s: s, cr: -1, lf: -1}
	for {
		line, more := sc.next()
		if !more {
			break
		}
		line = strings.TrimLeft(line, " \t")
		if isBlank(line) {
			continue
		}
		if haveCur && p.continues(run, line) {
			if joined == nil {
				joined = make([]byte, 0, 2*(len(cur)+len(line)))
				joined = append(joined, cur...)
			}
			joined = append(joined, line...)
			if r := trailingBase64Run(line); r == len(line) {
				run += r
			} else {
				run = r
			}
			continue
		}
		if haveCur {
			if perr := flush(); perr != nil {
				return partial(m), perr
			}
			if headerOnly {
				return m, nil
			}
		}
		cur, haveCur, run = line, true, trailingBase64Run(line)
	}
	if haveCur {
		if perr := flush(); perr != nil {
			return partial(m), perr
		}
	}
	return m, nil
}

// partial returns m if its MSH segment was parsed, nil otherwise.
func partial(m *Message) *Message {
	if len(m.Segments) == 0 {
		return nil
	}
	return m
}

// checkMSH verifies the MSH fields every message needs to be processed and
// acknowledged: its type and its control id (an acknowledgement without a
// processing id or a version takes P and 2.5).
func checkMSH(seg *Segment) *ParseError {
	for _, f := range []struct {
		n    int
		what string
	}{{9, "le type du message"}, {10, "l'identifiant du message"}} {
		if seg.Get(f.n) == "" {
			return &ParseError{Segment: "MSH", Sequence: 1, Field: f.n, Code: CodeRequiredField,
				Msg: fmt.Sprintf("MSH-%d (%s) est vide", f.n, f.what)}
		}
	}
	return nil
}

// parseSegment parses one logical segment; seq is its 1-based position.
func (p *parser) parseSegment(text string, seq int) (*Segment, *ParseError) {
	if p.nul {
		if perr := p.nulError(text, seq); perr != nil {
			return nil, perr
		}
	}
	if !p.isHeader(text) {
		return nil, &ParseError{Segment: segmentID([]byte(text)), Sequence: seq, Code: CodeSegmentSequence,
			Msg: fmt.Sprintf("nom de segment %q invalide", sanitizeName([]byte(text)))}
	}
	name := text[:3]
	if (name == "MSH") != (seq == 1) {
		return nil, &ParseError{Segment: name, Sequence: seq, Code: CodeSegmentSequence,
			Msg: "MSH doit être le premier segment, et le seul MSH"}
	}
	var seg *Segment
	if len(p.segs) < cap(p.segs) {
		p.segs = p.segs[:len(p.segs)+1]
		seg = &p.segs[len(p.segs)-1]
	} else {
		seg = new(Segment)
	}
	seg.Name = name
	start := len(p.fields)
	rest := text[3:]
	if seq == 1 {
		if len(text) < 4+p.encLen {
			return nil, &ParseError{Segment: "MSH", Sequence: 1, Field: 2, Code: CodeDataType,
				Msg: "les caractères d'encodage (MSH-2) manquent"}
		}
		f1 := p.text(text[3:4])
		f2 := p.text(text[4 : 4+p.encLen])
		p.fields = append(p.fields, f1, f2)
		rest = text[4+p.encLen:]
	}
	// rest is empty or starts with the field separator.
	for rest != "" {
		rest = rest[1:]
		v := rest
		if i := strings.IndexByte(rest, p.d.Field); i >= 0 {
			v, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		f := p.field(v)
		p.fields = append(p.fields, f)
	}
	if p.escNUL {
		return nil, escapedNULError(name, seq, p.fields[start:])
	}
	end := len(p.fields)
	for end > start && p.fields[end-1] == nil {
		end--
	}
	p.fields = p.fields[:end]
	if end > start {
		seg.fields = p.fields[start:end:end]
	}
	return seg, nil
}

// nulMsg is the ParseError message of a NUL byte in a value.
const nulMsg = "caractère NUL (0x00) dans les données : un texte HL7 ne peut pas en contenir"

// nulError reports a raw NUL byte in the segment text, located at its field
// when the segment has a valid name. Parse calls it only when the input
// holds a NUL, so that messages without one pay a single bytes.IndexByte.
func (p *parser) nulError(text string, seq int) *ParseError {
	i := strings.IndexByte(text, 0)
	if i < 0 {
		return nil
	}
	pe := &ParseError{Sequence: seq, Code: CodeDataType, Msg: nulMsg}
	if p.isHeader(text) && i > 3 {
		pe.Segment = text[:3]
		// The separators before the NUL count the fields; MSH-1 is the first one.
		pe.Field = strings.Count(text[3:i], string(p.d.Field))
		if pe.Segment == "MSH" {
			pe.Field++
		}
	}
	return pe
}

// escapedNULError reports the field of fields (fields[0] is field 1) that
// holds a NUL byte decoded from a \X..\ escape sequence.
func escapedNULError(name string, seq int, fields []Field) *ParseError {
	pe := &ParseError{Segment: name, Sequence: seq, Code: CodeDataType,
		Msg: `une séquence d'échappement \X..\ donne un caractère NUL (0x00) : un texte HL7 ne peut pas en contenir`}
	for i, f := range fields {
		if fieldHasNUL(f) {
			pe.Field = i + 1
			break
		}
	}
	return pe
}

// fieldHasNUL reports whether a value of f holds a NUL byte.
func fieldHasNUL(f Field) bool {
	for _, r := range f {
		for _, c := range r {
			for _, s := range c {
				if strings.IndexByte(s, 0) >= 0 {
					return true
				}
			}
		}
	}
	return false
}

// text returns a field holding v verbatim (for MSH-1 and MSH-2).
func (p *parser) text(v string) Field {
	p.subs = append(p.subs, v)
	n := len(p.subs)
	p.comps = append(p.comps, Component(p.subs[n-1:n:n]))
	n = len(p.comps)
	p.reps = append(p.reps, Repetition(p.comps[n-1:n:n]))
	n = len(p.reps)
	return Field(p.reps[n-1 : n : n])
}

// field splits a raw field value into repetitions.
func (p *parser) field(v string) Field {
	return Field(split(&p.reps, v, p.d.Repetition, p.rep, func(r Repetition) bool { return r == nil }))
}

// rep splits a raw repetition into components.
func (p *parser) rep(v string) Repetition {
	return Repetition(split(&p.comps, v, p.d.Component, p.comp, func(c Component) bool { return c == nil }))
}

// comp splits a raw component into unescaped sub-components.
func (p *parser) comp(v string) Component {
	return Component(split(&p.subs, v, p.d.SubComponent, p.unescape, func(s string) bool { return s == "" }))
}

// split cuts v at sep, appends item(part) of each part to *pool, drops the
// trailing empty items and returns the new ones as a full slice of *pool, or
// nil when there are none. Sharing one pool per level keeps allocations per
// message, not per value.
func split[T any](pool *[]T, v string, sep byte, item func(string) T, empty func(T) bool) []T {
	if v == "" {
		return nil
	}
	start := len(*pool)
	for {
		i := strings.IndexByte(v, sep)
		if i < 0 {
			x := item(v)
			*pool = append(*pool, x)
			break
		}
		x := item(v[:i])
		*pool = append(*pool, x)
		v = v[i+1:]
	}
	end := len(*pool)
	for end > start && empty((*pool)[end-1]) {
		end--
	}
	*pool = (*pool)[:end]
	if end == start {
		return nil
	}
	return (*pool)[start:end:end]
}

// isHeader reports whether line starts with a segment name followed by the field separator or the end of the line.
func (p *parser) isHeader(line string) bool {
	if len(line) < 3 || !isUpper(line[0]) || !isUpperOrDigit(line[1]) || !isUpperOrDigit(line[2]) {
		return false
	}
	return len(line) == 3 || line[3] == p.d.Field
}

// continues reports whether line continues a base64 payload wrapped at the end of
// the previous line: the previous line ends with a long base64 run whose length
// is a multiple of 4, and line is not a segment but starts with base64 text
// followed by the end of the line or a delimiter.
func (p *parser) continues(run int, line string) bool {
	if run < minBase64Run || run%4 != 0 || p.isHeader(line) {
		return false
	}
	i := 0
	for i < len(line) && (isBase64(line[i]) || line[i] == '=') {
		i++
	}
	if i == 0 {
		return false
	}
	if i == len(line) {
		return true
	}
	switch line[i] {
	case p.d.Field, p.d.Component, p.d.Repetition, p.d.SubComponent:
		return true
	}
	return false
}

// lineScanner splits a message on "\r" and "\n", finding each terminator once.
type lineScanner struct {
	s      string
	pos    int
	cr, lf int // next known "\r" and "\n" positions at or after pos (len(s) if none)
}

func (l *lineScanner) next() (string, bool) {
	if l.pos > len(l.s) {
		return "", false
	}
	if l.cr < l.pos {
		l.cr = indexFrom(l.s, l.pos, '\r')
	}
	if l.lf < l.pos {
		l.lf = indexFrom(l.s, l.pos, '\n')
	}
	end := min(l.cr, l.lf)
	line := l.s[l.pos:end]
	l.pos = end + 1
	return line, true
}

// indexFrom returns the index of c in s at or after from, or len(s).
func indexFrom(s string, from int, c byte) int {
	if i := strings.IndexByte(s[from:], c); i >= 0 {
		return from + i
	}
	return len(s)
}

// parseDelimiters reads MSH-1 and MSH-2 at the start of data (which starts with "MSH").
func parseDelimiters(data []byte) (Delimiters, int, *ParseError) {
	if len(data) < 4 || !validDelimiter(data[3]) {
		return Delimiters{}, 0, &ParseError{Segment: "MSH", Sequence: 1, Field: 1, Code: CodeDataType,
			Msg: "séparateur de champ (MSH-1) invalide"}
	}
	f := data[3]
	i := 4
	for i < len(data) && i < 10 && data[i] != f && data[i] != '\r' && data[i] != '\n' {
		i++
	}
	enc := data[4:i]
	bad := &ParseError{Segment: "MSH", Sequence: 1, Field: 2, Code: CodeDataType,
		Msg: "les caractères d'encodage (MSH-2) doivent être 4 (ou 5 avec la troncature) caractères distincts, ni lettres ni chiffres"}
	if len(enc) < 4 || len(enc) > 5 {
		return Delimiters{}, 0, bad
	}
	d := Delimiters{Field: f, Component: enc[0], Repetition: enc[1], Escape: enc[2], SubComponent: enc[3]}
	if len(enc) == 5 {
		d.Truncation = enc[4]
	}
	all := append([]byte{f}, enc...)
	for j, c := range all {
		if !validDelimiter(c) || bytes.IndexByte(all[j+1:], c) >= 0 {
			return Delimiters{}, 0, bad
		}
	}
	return d, len(enc), nil
}

// mshCharsetLabel returns the first component of MSH-18 from the raw MSH line, trimmed.
func mshCharsetLabel(header []byte, d Delimiters) string {
	rest := header[4:] // MSH-2 onwards
	for n := 2; ; n++ {
		i := bytes.IndexByte(rest, d.Field)
		v := rest
		if i >= 0 {
			v = rest[:i]
		}
		if n == 18 {
			if j := bytes.IndexByte(v, d.Repetition); j >= 0 {
				v = v[:j]
			}
			if j := bytes.IndexByte(v, d.Component); j >= 0 {
				v = v[:j]
			}
			return string(bytes.TrimSpace(v))
		}
		if i < 0 {
			return ""
		}
		rest = rest[i+1:]
	}
}

// trimLeading drops byte order marks, whitespace and control characters before the message.
func trimLeading(data []byte) []byte {
	for len(data) > 0 {
		switch {
		case bytes.HasPrefix(data, []byte("\xEF\xBB\xBF")):
			data = data[3:]
		case data[0] <= ' ':
			data = data[1:]
		default:
			return data
		}
	}
	return data
}

// indexEOL returns the index of the first "\r" or "\n" in data, or len(data).
func indexEOL(data []byte) int {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i
	}
	return len(data)
}

// isBlank reports whether line holds only spaces and control characters.
func isBlank(line string) bool {
	for i := 0; i < len(line); i++ {
		if line[i] > ' ' {
			return false
		}
	}
	return true
}

// trailingBase64Run returns the number of base64 alphabet characters (without padding) ending s.
func trailingBase64Run(s string) int {
	n := 0
	for i := len(s) - 1; i >= 0 && isBase64(s[i]); i-- {
		n++
	}
	return n
}

// segmentID returns the first three bytes of b if they can be a segment ID, "" otherwise.
func segmentID(b []byte) string {
	if len(b) < 3 || !isUpperOrDigit(b[0]) || !isUpperOrDigit(b[1]) || !isUpperOrDigit(b[2]) {
		return ""
	}
	return string(b[:3])
}

// sanitizeName returns the first three bytes of b made printable, for error locations.
func sanitizeName(b []byte) string {
	b = b[:min(3, len(b))]
	out := make([]byte, len(b))
	for i, c := range b {
		if isUpperOrDigit(c) || (c >= 'a' && c <= 'z') {
			out[i] = c
		} else {
			out[i] = '?'
		}
	}
	return string(out)
}

func validDelimiter(c byte) bool {
	return c > ' ' && c < 0x7F && !isUpperOrDigit(c) && !(c >= 'a' && c <= 'z')
}

func isUpper(c byte) bool        { return c >= 'A' && c <= 'Z' }
func isUpperOrDigit(c byte) bool { return isUpper(c) || (c >= '0' && c <= '9') }
func isBase64(c byte) bool {
	return isUpperOrDigit(c) || (c >= 'a' && c <= 'z') || c == '+' || c == '/'
}
