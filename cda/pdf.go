package cda

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"
)

var (
	// ErrNoPDF is returned when a document embeds no PDF.
	ErrNoPDF = errors.New("cda: no PDF in document")
	// ErrInvalidPDF is returned when the embedded PDF is not valid base64
	// or does not start with the PDF signature "%PDF-".
	ErrInvalidPDF = errors.New("cda: invalid embedded PDF")
)

// pdfMagic starts every PDF file.
var pdfMagic = []byte("%PDF-")

// ExtractPDF returns the PDF embedded in a CDA R2 document.
//
// In a level 1 document it is component/nonXMLBody/text with mediaType
// application/pdf and representation B64; in a level 3 document it is the
// first value or text element of the structuredBody with that mediaType and
// representation (an observationMedia/value of a FR-Document-attache entry,
// usually). White space inside the base64 is ignored. ExtractPDF returns
// ErrNoPDF when there is none, ErrInvalidPDF when it does not decode to a
// PDF, and the errors of Parse for input that is not a CDA document.
func ExtractPDF(data []byte) ([]byte, error) {
	t, err := Read(data)
	if err != nil {
		return nil, err
	}
	return t.PDF()
}

// PDF extracts the document's PDF, as ExtractPDF.
func (t *Tree) PDF() ([]byte, error) { return findPDF(t.root) }

// findPDF extracts the PDF from the body of root.
func findPDF(root *etree.Element) ([]byte, error) {
	body := child(root, "component")
	if nxb := child(body, "nonXMLBody"); nxb != nil {
		t := child(nxb, "text")
		if t == nil || !isPDF(t) {
			return nil, ErrNoPDF
		}
		return decodePDF(t)
	}
	sb := child(body, "structuredBody")
	if sb == nil {
		return nil, ErrNoPDF
	}
	// Walk the body in document order, without recursion.
	stack := []*etree.Element{sb}
	for len(stack) > 0 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if (e.Tag == "value" || e.Tag == "text") && isPDF(e) && e.NamespaceURI() == NS {
			return decodePDF(e)
		}
		for i := len(e.Child) - 1; i >= 0; i-- {
			if c, ok := e.Child[i].(*etree.Element); ok {
				stack = append(stack, c)
			}
		}
	}
	return nil, ErrNoPDF
}

// isPDF reports whether the ED element e holds a base64 PDF.
func isPDF(e *etree.Element) bool {
	return strings.EqualFold(attr(e, "mediaType"), "application/pdf") &&
		strings.EqualFold(attr(e, "representation"), "B64")
}

// decodePDF decodes the base64 text of e, ignoring white space and
// tolerating missing padding, and checks the result is a PDF.
func decodePDF(e *etree.Element) ([]byte, error) {
	s := e.Text()
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\r', '\n', '\f', '\v':
		default:
			clean = append(clean, c)
		}
	}
	clean = bytes.TrimRight(clean, "=")
	if len(clean) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrInvalidPDF)
	}
	pdf := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, err := base64.RawStdEncoding.Decode(pdf, clean)
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %w", ErrInvalidPDF, err)
	}
	pdf = pdf[:n]
	if !bytes.HasPrefix(pdf, pdfMagic) {
		return nil, fmt.Errorf("%w: no %%PDF- signature", ErrInvalidPDF)
	}
	return pdf, nil
}
