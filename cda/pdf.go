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

// PDF extracts the document's PDF, as ExtractPDF, once.
func (t *Tree) PDF() ([]byte, error) {
	if !t.pdfRead {
		t.pdf, t.pdfErr = t.findPDF()
		t.pdfRead = true
	}
	return t.pdf, t.pdfErr
}

// findPDF extracts the PDF from the body of the document.
func (t *Tree) findPDF() ([]byte, error) {
	body := child(t.root, "component")
	if nxb := child(body, "nonXMLBody"); nxb != nil {
		text := child(nxb, "text")
		if text == nil || !isPDF(text) {
			return nil, ErrNoPDF
		}
		return decodePDF(t.base64(text))
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
			return decodePDF(t.base64(e))
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

// base64 returns the base64 text of the ED element e, from bulk when it
// was cut out before parsing.
func (t *Tree) base64(e *etree.Element) []byte {
	s := e.Text()
	if b, ok := t.bulk[strings.TrimRight(s, "\n")]; ok {
		return b
	}
	return []byte(s)
}

// decodePDF decodes the base64 text s as DecodeBase64 and checks the
// result is a PDF.
func decodePDF(s []byte) ([]byte, error) {
	pdf, err := DecodeBase64(s)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: base64: %w", ErrInvalidPDF, err)
	case len(pdf) == 0:
		return nil, fmt.Errorf("%w: empty", ErrInvalidPDF)
	}
	if !bytes.HasPrefix(pdf, pdfMagic) {
		return nil, fmt.Errorf("%w: no %%PDF- signature", ErrInvalidPDF)
	}
	return pdf, nil
}

// DecodeBase64 decodes base64 text as HL7 messages and CDA documents carry
// it: white space (wrapped lines) is ignored and the padding may be missing.
func DecodeBase64(s []byte) ([]byte, error) {
	// Most text is padded, with no white space but line ends, which the
	// standard decoder skips itself: one pass, no copy.
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(s))) // room for both decoders
	if n, err := base64.StdEncoding.Decode(out, s); err == nil {
		return out[:n], nil
	}
	clean := make([]byte, 0, len(s))
	for _, c := range s {
		switch c {
		case ' ', '\t', '\r', '\n', '\f', '\v':
		default:
			clean = append(clean, c)
		}
	}
	clean = bytes.TrimRight(clean, "=")
	n, err := base64.RawStdEncoding.Decode(out, clean)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}
