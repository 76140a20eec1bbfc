package paper_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/paper"
)

// poppler returns the path of a poppler-utils tool (pdftotext, pdfinfo,
// pdftoppm, pdfimages); the tests need the real tools and fail without them.
func poppler(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (%v): install poppler-utils (Debian: apt-get install poppler-utils)", name, err)
	}
	return p
}

// run runs a poppler tool and returns its standard output.
func run(t testing.TB, tool string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(poppler(t, tool), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s %v: %s", tool, args, stderr.String())
	return out
}

// writePDF writes pdf to a temporary file and returns its path.
func writePDF(t testing.TB, pdf []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "doc.pdf")
	require.NoError(t, os.WriteFile(f, pdf, 0o600))
	return f
}

// pdfPages returns the page count pdfinfo reads in pdf.
func pdfPages(t testing.TB, pdf []byte) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)$`).FindSubmatch(run(t, "pdfinfo", writePDF(t, pdf)))
	require.NotNil(t, m, "pdfinfo: no page count")
	n, err := strconv.Atoi(string(m[1]))
	require.NoError(t, err)
	return n
}

// pageText returns the text of page (from 1) of pdf, in reading order.
func pageText(t testing.TB, pdf []byte, page int) string {
	t.Helper()
	p := strconv.Itoa(page)
	return string(run(t, "pdftotext", "-enc", "UTF-8", "-f", p, "-l", p, writePDF(t, pdf), "-"))
}

// layoutText returns the text of page (from 1) of pdf in its physical
// layout (pdftotext -layout): the cells of a table row on one line.
func layoutText(t testing.TB, pdf []byte, page int) string {
	t.Helper()
	p := strconv.Itoa(page)
	return string(run(t, "pdftotext", "-layout", "-enc", "UTF-8", "-f", p, "-l", p, writePDF(t, pdf), "-"))
}

// word is a word pdftotext finds on a page, its box in millimetres from
// the top-left corner of the page.
type word struct {
	Text string
	Box  paper.Rect
}

// pageWords returns the words of page (from 1) of pdf with their boxes,
// from pdftotext -bbox.
func pageWords(t testing.TB, pdf []byte, page int) []word {
	t.Helper()
	p := strconv.Itoa(page)
	out := run(t, "pdftotext", "-bbox", "-enc", "UTF-8", "-f", p, "-l", p, writePDF(t, pdf), "-")
	dec := xml.NewDecoder(bytes.NewReader(out))
	dec.Strict = false
	const mm = 25.4 / 72 // bbox coordinates are points from the top left
	var words []word
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "word" {
			continue
		}
		var w struct {
			XMin float64 `xml:"xMin,attr"`
			YMin float64 `xml:"yMin,attr"`
			XMax float64 `xml:"xMax,attr"`
			YMax float64 `xml:"yMax,attr"`
			Text string  `xml:",chardata"`
		}
		require.NoError(t, dec.DecodeElement(&w, &se))
		words = append(words, word{Text: w.Text, Box: paper.Rect{
			X: w.XMin * mm, Y: w.YMin * mm, W: (w.XMax - w.XMin) * mm, H: (w.YMax - w.YMin) * mm,
		}})
	}
	return words
}

// readTestdata returns the content of testdata/name.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}
