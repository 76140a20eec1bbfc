package cda

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// NS is the XML namespace of HL7 v3 and CDA R2 elements.
const NS = "urn:hl7-org:v3"

// MaxSize is the largest document, in bytes, that Parse and ExtractPDF accept.
const MaxSize = 64 << 20

// MaxMarkup bounds the markup of a document Parse and ExtractPDF accept,
// counted before parsing as its '<' and '=' bytes (an upper bound of its
// elements plus attributes). A DOM node costs about 320 bytes an element and
// 730 an attribute, so this caps the memory a hostile document of small
// elements can take to a few hundred MB; the largest real reports (a
// level-3 lab report of a thousand results) have under 100,000.
const MaxMarkup = 300_000

// maxDepth bounds the element nesting depth of a document (level 3 bodies
// nest sections and entries, but never this deep).
const maxDepth = 256

var (
	// ErrTooLarge is returned for a document larger than MaxSize.
	ErrTooLarge = errors.New("cda: document too large")
	// ErrDoctype is returned for a document with a DOCTYPE (or another
	// markup declaration), which CDA never needs and entity bombs require.
	ErrDoctype = errors.New("cda: DOCTYPE not allowed")
	// ErrTooComplex is returned for a document with more than MaxMarkup
	// elements and attributes.
	ErrTooComplex = errors.New("cda: document has too much markup")
	// ErrNotCDA is returned when the root element is not an HL7 v3 ClinicalDocument.
	ErrNotCDA = errors.New("cda: not a CDA document")
	// ErrMalformed is returned for input that is not well-formed XML.
	ErrMalformed = errors.New("cda: malformed XML")
)

// utf8BOM is the byte order mark some Windows producers put before the
// XML declaration.
var utf8BOM = []byte("\xEF\xBB\xBF")

// readRoot parses data as XML and returns the tree of its ClinicalDocument
// root element. The large base64 texts are cut out before parsing (cutBulk)
// and kept in the tree, which holds slices of data.
func readRoot(data []byte) (*Tree, error) { return readTree(data, true) }

// readTree is readRoot, cutting the base64 texts out or not (the tests
// compare both).
func readTree(data []byte, cut bool) (*Tree, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxSize)
	}
	if n := bytes.Count(data, []byte("<")) + bytes.Count(data, []byte("=")); n > MaxMarkup {
		return nil, fmt.Errorf("%w: %d elements and attributes at most, limit %d", ErrTooComplex, n, MaxMarkup)
	}
	input := data
	data = bytes.TrimPrefix(data, utf8BOM)
	if err := checkProlog(data); err != nil {
		return nil, err
	}
	var bulk map[string][]byte
	if cut {
		data, bulk = cutBulk(data)
	}
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{
		CharsetReader: charsetReader,
		MaxDepth:      maxDepth,
	}
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var root *etree.Element
	for _, t := range doc.Child {
		switch t := t.(type) {
		case *etree.Directive:
			return nil, ErrDoctype
		case *etree.CharData:
			if !t.IsWhitespace() {
				return nil, fmt.Errorf("%w: text outside the root element", ErrMalformed)
			}
		case *etree.Element:
			if root != nil {
				return nil, fmt.Errorf("%w: more than one root element", ErrMalformed)
			}
			root = t
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%w: no root element", ErrMalformed)
	}
	if root.Tag != "ClinicalDocument" || root.NamespaceURI() != NS {
		return nil, fmt.Errorf("%w: root element is {%s}%s", ErrNotCDA, root.NamespaceURI(), root.Tag)
	}
	return &Tree{data: input, root: root, bulk: bulk}, nil
}

// checkProlog reads the tokens before the root element and rejects a
// DOCTYPE with a clear error, before the full parse fails on an entity
// reference it cannot resolve.
func checkProlog(data []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.CharsetReader = charsetReader
	for {
		tok, err := dec.RawToken()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: no root element", ErrMalformed)
			}
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch tok.(type) {
		case xml.Directive:
			return ErrDoctype
		case xml.StartElement:
			return nil
		}
	}
}

// charsetReader converts the 8-bit charsets French producers still
// declare into UTF-8; UTF-8 itself never reaches it.
func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	var table *[256]rune
	switch strings.ToLower(strings.TrimSpace(charset)) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return input, nil
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1":
		table = &latin1
	case "iso-8859-15", "iso8859-15", "iso_8859-15", "latin-9", "latin9":
		table = &latin9
	case "windows-1252", "cp1252":
		table = &cp1252
	default:
		return nil, fmt.Errorf("unsupported charset %q", charset)
	}
	return &tableReader{r: input, table: table}, nil
}

// tableReader decodes an 8-bit charset into UTF-8 with a byte-to-rune table.
type tableReader struct {
	r       io.Reader
	table   *[256]rune
	in      [4096]byte
	pending []byte // decoded bytes not yet returned
	err     error
}

func (t *tableReader) Read(p []byte) (int, error) {
	for len(t.pending) == 0 {
		if t.err != nil {
			return 0, t.err
		}
		n, err := t.r.Read(t.in[:])
		t.err = err
		t.pending = t.pending[:0]
		for _, c := range t.in[:n] {
			t.pending = utf8.AppendRune(t.pending, t.table[c])
		}
	}
	n := copy(p, t.pending)
	t.pending = t.pending[n:]
	return n, nil
}

var latin1, latin9, cp1252 [256]rune

func init() {
	for i := range latin1 {
		latin1[i] = rune(i)
	}
	latin9 = latin1
	for c, r := range map[byte]rune{
		0xA4: '€', 0xA6: 'Š', 0xA8: 'š', 0xB4: 'Ž', 0xB8: 'ž', 0xBC: 'Œ', 0xBD: 'œ', 0xBE: 'Ÿ',
	} {
		latin9[c] = r
	}
	cp1252 = latin1
	for i, r := range []rune("€\uFFFD‚ƒ„…†‡ˆ‰Š‹Œ\uFFFDŽ\uFFFD\uFFFD‘’“”•–—˜™š›œ\uFFFDžŸ") {
		cp1252[0x80+i] = r
	}
}

// isHL7 reports whether e is the HL7 v3 element named tag.
func isHL7(e *etree.Element, tag string) bool {
	return e.Tag == tag && e.NamespaceURI() == NS
}

// child returns the first HL7 child element of e named tag, or nil.
func child(e *etree.Element, tag string) *etree.Element {
	if e == nil {
		return nil
	}
	for c := range e.ChildElementsSeq() {
		if isHL7(c, tag) {
			return c
		}
	}
	return nil
}

// children returns the HL7 child elements of e named tag.
func children(e *etree.Element, tag string) []*etree.Element {
	if e == nil {
		return nil
	}
	var out []*etree.Element
	for c := range e.ChildElementsSeq() {
		if isHL7(c, tag) {
			out = append(out, c)
		}
	}
	return out
}

// path follows HL7 child elements named tags from e, taking the first
// match at each step; it returns nil when a step is missing.
func path(e *etree.Element, tags ...string) *etree.Element {
	for _, t := range tags {
		e = child(e, t)
		if e == nil {
			return nil
		}
	}
	return e
}

// attr returns the trimmed value of the unprefixed attribute key of e, or "".
func attr(e *etree.Element, key string) string {
	if e == nil {
		return ""
	}
	for _, a := range e.Attr {
		if a.Space == "" && a.Key == key {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

// text returns the character data of e with runs of white space collapsed.
// It allocates the result once, at its exact size: strings.Fields would
// cost 16 bytes a word (over 5 times a text of short words), and a
// growing Builder several times the text.
func text(e *etree.Element) string {
	if e == nil {
		return ""
	}
	s := e.Text()
	n := 0
	for f := range strings.FieldsSeq(s) {
		n += len(f) + 1
	}
	if n == 0 {
		return ""
	}
	var b strings.Builder
	b.Grow(n - 1)
	for f := range strings.FieldsSeq(s) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(f)
	}
	return b.String()
}
