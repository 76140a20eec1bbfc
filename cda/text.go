package cda

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// ErrNoStructuredBody is returned by Text for a document whose body is not
// a structuredBody: a level 1 document (nonXMLBody, usually a PDF: see
// ExtractPDF) or a document without a body.
var ErrNoStructuredBody = errors.New("cda: no structuredBody (not a level 3 document)")

// TextSection is the human-readable narrative of one section of a
// structuredBody.
type TextSection struct {
	Title      string   // section/title, white space collapsed; may be empty.
	Paragraphs []string // The lines of section/text, in document order (see Text).
	// Depth is 0 for a section of the body, 1 for a section nested in it,
	// and so on.
	Depth int
}

// Text returns the narrative of the structuredBody of a CDA R2 level 3
// document: for every section that has a title or some text, in document
// order and nested sections after their parent, its title and the content
// of its text element, the part of a document a reader sees.
//
// Each paragraph, caption, footnote and line of the narrative (cut at br)
// is one element of Paragraphs, white space collapsed; a list item is one
// element prefixed "• " (or "1. ", "2. "… in an ordered list), indented by
// two spaces a nesting level; a table row is one element, its cells joined
// by " | " (trailing empty cells dropped). Of rendered multimedia (images,
// attached PDF) only the caption is kept.
//
// Text returns ErrNoStructuredBody for a level 1 document or a document
// without a body, and the errors of Parse for input that is not a CDA
// document.
func Text(doc []byte) ([]TextSection, error) {
	tree, err := readRoot(doc)
	if err != nil {
		return nil, err
	}
	body := child(tree.root, "component")
	sb := child(body, "structuredBody")
	if sb == nil {
		if child(body, "nonXMLBody") != nil {
			return nil, fmt.Errorf("%w: the body is a nonXMLBody", ErrNoStructuredBody)
		}
		return nil, ErrNoStructuredBody
	}
	var out []TextSection
	var walk func(e *etree.Element, depth int)
	walk = func(e *etree.Element, depth int) {
		for _, c := range children(e, "component") {
			for _, s := range children(c, "section") {
				ts := TextSection{Title: cellText(child(s, "title")), Depth: depth}
				if t := child(s, "text"); t != nil {
					n := &narrative{}
					n.block(t, 0)
					n.flush()
					ts.Paragraphs = n.paras
				}
				if ts.Title != "" || len(ts.Paragraphs) > 0 {
					out = append(out, ts)
				}
				walk(s, depth+1)
			}
		}
	}
	walk(sb, 0)
	return out, nil
}

// narrative collects the paragraphs of a CDA narrative block (StrucDoc.Text).
type narrative struct {
	paras  []string
	inline strings.Builder // Text of the current paragraph, not yet collapsed.
	prefix string          // Prefix of the current paragraph (list items).
	// oneLine collects everything in inline, separated by spaces: the text
	// of a table cell or a title. Nested cells then add to the same
	// builder, which keeps the work linear in the size of the text.
	oneLine bool
}

// flush ends the current paragraph; the prefix of a list item goes to its
// first non-empty paragraph.
func (n *narrative) flush() {
	if n.oneLine {
		n.inline.WriteByte(' ')
		return
	}
	s := strings.Join(strings.Fields(n.inline.String()), " ")
	n.inline.Reset()
	if s != "" {
		n.paras = append(n.paras, n.prefix+s)
		n.prefix = ""
	}
}

// block adds the content of e, at list nesting level indent, to n.
func (n *narrative) block(e *etree.Element, indent int) {
	for _, tok := range e.Child {
		switch t := tok.(type) {
		case *etree.CharData:
			n.inline.WriteString(t.Data)
		case *etree.Element:
			n.element(t, indent)
		}
	}
}

// element adds the narrative element e to n.
func (n *narrative) element(e *etree.Element, indent int) {
	if e.NamespaceURI() != NS {
		n.block(e, indent) // Foreign markup: keep its text.
		return
	}
	switch e.Tag {
	case "br":
		n.flush()
	case "renderMultiMedia":
		// An image or an attached file: only its caption can be read.
		for _, c := range children(e, "caption") {
			n.flush()
			n.block(c, indent)
			n.flush()
		}
	case "paragraph", "caption", "footnote":
		n.flush()
		n.block(e, indent)
		n.flush()
	case "list":
		n.flush()
		n.list(e, indent)
	case "table":
		n.flush()
		n.table(e)
	case "tr", "td", "th": // in a table in a cell (see table)
		n.inline.WriteByte(' ')
		n.block(e, indent)
		n.inline.WriteByte(' ')
	default: // content, linkHtml, sub, sup, footnoteRef and unknown inline markup.
		n.block(e, indent)
	}
}

// list adds the caption and items of the list e to n.
func (n *narrative) list(e *etree.Element, indent int) {
	ordered := attr(e, "listType") == "ordered"
	pad := strings.Repeat("  ", indent)
	i := 0
	for c := range e.ChildElementsSeq() {
		if c.NamespaceURI() != NS {
			continue
		}
		switch c.Tag {
		case "caption":
			n.flush()
			n.block(c, indent)
			n.flush()
		case "item":
			i++
			n.flush()
			mark := "• "
			if ordered {
				mark = strconv.Itoa(i) + ". "
			}
			if n.oneLine {
				n.inline.WriteString(mark)
			} else {
				n.prefix = pad + mark
			}
			n.block(c, indent+1)
			n.flush()
			n.prefix = ""
		}
	}
}

// table adds the caption and rows of the table e to n, one paragraph a
// row, its cells joined by " | " (empty cells at the end of a row and
// empty rows left out).
func (n *narrative) table(e *etree.Element) {
	if n.oneLine { // a table in a cell: its text, cells separated by spaces
		n.block(e, 0)
		n.flush()
		return
	}
	row := func(tr *etree.Element) {
		var cells []string
		for c := range tr.ChildElementsSeq() {
			if !isHL7(c, "td") && !isHL7(c, "th") {
				continue
			}
			cells = append(cells, cellText(c))
		}
		for len(cells) > 0 && cells[len(cells)-1] == "" {
			cells = cells[:len(cells)-1]
		}
		if len(cells) > 0 {
			n.paras = append(n.paras, strings.Join(cells, " | "))
		}
	}
	for c := range e.ChildElementsSeq() {
		switch {
		case isHL7(c, "caption"):
			n.block(c, 0)
			n.flush()
		case isHL7(c, "tr"):
			row(c)
		case isHL7(c, "thead"), isHL7(c, "tbody"), isHL7(c, "tfoot"):
			for _, tr := range children(c, "tr") {
				row(tr)
			}
		}
	}
}

// cellText returns the text of a table cell (or a title) on one line: its
// paragraphs, list items and line breaks are separated by a space.
func cellText(c *etree.Element) string {
	if c == nil {
		return ""
	}
	n := &narrative{oneLine: true}
	n.block(c, 0)
	return strings.Join(strings.Fields(n.inline.String()), " ")
}
