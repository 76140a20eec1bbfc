package cda

import (
	"bytes"
	"encoding/base64"
	mrand "math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// pdfText matches the base64 text of testdata/n1-pdf.xml's nonXMLBody.
var pdfText = regexp.MustCompile(`(?s)(<text mediaType="application/pdf" representation="B64">)(.*?)(</text>)`)

// bigPDFDoc returns testdata/n1-pdf.xml with its PDF padded to about size
// bytes and its base64 wrapped at 76 columns, and the PDF. The padding is
// comment lines of seeded random base64 after %%EOF (readers ignore them),
// which compress about as little as the compressed streams of a real PDF.
func bigPDFDoc(t testing.TB, size int) (doc, pdf []byte) {
	t.Helper()
	pdf = bytes.Clone(readXDMTestdata(t, "sample.pdf"))
	random := mrand.NewChaCha8([32]byte{'p', 'd', 'f'})
	line := make([]byte, 57)
	for len(pdf) < size {
		_, _ = random.Read(line)
		pdf = append(append(append(pdf, '%'), base64.StdEncoding.EncodeToString(line)...), '\n')
	}
	b64 := base64.StdEncoding.EncodeToString(pdf)
	var wrapped strings.Builder
	for len(b64) > 76 {
		wrapped.WriteString(b64[:76] + "\n")
		b64 = b64[76:]
	}
	wrapped.WriteString(b64 + "\n")
	src := readXDMTestdata(t, "n1-pdf.xml")
	require.True(t, pdfText.Match(src))
	return pdfText.ReplaceAll(src, []byte("${1}\n"+wrapped.String()+"${3}")), pdf
}

// requireSameAsUncut checks that reading data with the base64 texts cut out
// gives what reading it whole gives: the same error, header and PDF.
func requireSameAsUncut(t *testing.T, data []byte) *Tree {
	t.Helper()
	cut, errCut := readTree(bytes.Clone(data), true)
	whole, errWhole := readTree(data, false)
	if errWhole != nil {
		require.Error(t, errCut)
		require.Equal(t, errWhole.Error(), errCut.Error())
		return nil
	}
	require.NoError(t, errCut)
	hCut, errCut := cut.Header()
	hWhole, errWhole := whole.Header()
	require.Equal(t, errWhole, errCut)
	require.Equal(t, hWhole, hCut)
	pCut, errCut := cut.PDF()
	pWhole, errWhole := whole.PDF()
	require.Equal(t, errWhole, errCut)
	require.Equal(t, pWhole, pCut)
	return cut
}

func TestCutBulk(t *testing.T) {
	doc, pdf := bigPDFDoc(t, 20<<10)
	s := string(doc)
	tag := `<text mediaType="application/pdf" representation="B64">`
	replace := func(old, new string) []byte {
		require.Contains(t, s, old)
		return []byte(strings.Replace(s, old, new, 1))
	}
	cases := []struct {
		name string
		doc  []byte
		cuts int // texts cut out
		pdf  bool
	}{
		{"level 1 PDF", doc, 1, true},
		{"single quotes, lower-case b64, spaces around =", replace(tag, `<text mediaType='application/pdf' representation = 'b64' >`), 1, true},
		{"prefixed element", []byte(strings.Replace(string(replace(tag, `<hl7:text xmlns:hl7="urn:hl7-org:v3" mediaType="application/pdf" representation="B64">`)), "</text>\n    </nonXMLBody>", "</hl7:text>\n    </nonXMLBody>", 1)), 1, true},
		{"prefixed attribute is not the ED's", replace(tag, `<text xmlns:x="urn:x" mediaType="application/pdf" x:representation="B64">`), 0, false},
		{"attribute value holding > and the word", replace(tag, `<text ID="a>representation=&quot;B64&quot;" mediaType="application/pdf" representation="B64">`), 1, true},
		{"not B64", replace(tag, `<text mediaType="application/pdf" representation="TXT">`), 0, false},
		{"entity reference in the base64", replace(tag+"\n", tag+"&#10;"), 0, true},
		{"comment before the text", replace(tag, tag+"<!-- c -->"), 0, true},
		{"tag in a comment", replace(tag, "<!-- "+tag+" -->"+tag), 1, true},
		{"placeholder prefix already in the document", replace("<title>", "<title>mssdispatch-bulk- mssdispatch-bulk0-"), 1, true},
		{"malformed after the PDF: same error line", replace("</nonXMLBody>", "</nonXMLBody><"), 1, false},
		{"unterminated comment", replace("</ClinicalDocument>", "<!-- </ClinicalDocument>"), 0, false},
		{"DOCTYPE", replace("<ClinicalDocument", "<!DOCTYPE x><ClinicalDocument"), 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, bulk := cutBulk(c.doc)
			require.Len(t, bulk, c.cuts)
			tree := requireSameAsUncut(t, c.doc)
			if c.pdf {
				require.NotNil(t, tree)
				got, err := tree.PDF()
				require.NoError(t, err)
				require.Equal(t, pdf, got)
			}
		})
	}
}

func FuzzCutBulk(f *testing.F) {
	doc, _ := bigPDFDoc(f, 20<<10)
	f.Add(doc)
	f.Add([]byte(`<a representation="B64">` + strings.Repeat("QUJD\n", 300) + `</a>`))
	for _, name := range []string{"n1-pdf.xml", "n3-pdf-media.xml", "cr-bio-n3.xml", "n1-bad-base64.xml"} {
		f.Add(readXDMTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, bulk := cutBulk(data)
		// Putting the texts back gives the document again.
		restored := out
		for key, text := range bulk {
			placeholder := key + strings.Repeat("\n", bytes.Count(text, []byte("\n")))
			require.Equal(t, 1, bytes.Count(restored, []byte(placeholder)), "placeholder %s", key)
			restored = bytes.Replace(restored, []byte(placeholder), text, 1)
		}
		require.Equal(t, data, restored)
		requireSameAsUncut(t, data)
	})
}

func TestDecodeBase64(t *testing.T) {
	cases := []struct {
		in, want string
		err      bool
	}{
		{"", "", false},
		{"QUJD", "ABC", false},
		{"QUI=", "AB", false},
		{"QUI", "AB", false},
		{" QU\r\nJD\tRA==\n", "ABCD", false},
		{"QUJD\vRA\f", "ABCD", false},
		{"QU=JD", "", true},
		{"QUJD*", "", true},
		{"Q", "", true},
	}
	for _, c := range cases {
		got, err := DecodeBase64([]byte(c.in))
		if c.err {
			require.Error(t, err, "%q", c.in)
			continue
		}
		require.NoError(t, err, "%q", c.in)
		require.Equal(t, c.want, string(got), "%q", c.in)
	}
}

func FuzzDecodeBase64(f *testing.F) {
	f.Add([]byte(" QU\r\nJD\tRA==\n"))
	f.Add([]byte("QUI"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := DecodeBase64(in)
		// The reference: strip the white space, then the padding.
		clean := strings.TrimRight(strings.Join(strings.FieldsFunc(string(in), func(r rune) bool {
			return strings.ContainsRune(" \t\r\n\f\v", r)
		}), ""), "=")
		want, wantErr := base64.RawStdEncoding.DecodeString(clean)
		require.Equal(t, wantErr != nil, err != nil)
		if err == nil {
			require.Equal(t, want, got)
		}
	})
}
