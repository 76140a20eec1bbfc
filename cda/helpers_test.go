package cda_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/cda"
)

// update is the package's -update flag (update_test.go).
var update = cda.Update

// samplePDF builds a minimal valid one-page PDF 1.4 showing the text
// "Compte rendu de test", with exact cross-reference offsets.
func samplePDF() []byte {
	content := "BT\n/F1 18 Tf\n72 770 Td\n(Compte rendu de test) Tj\nET\n"
	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]\n   /Resources << /Font << /F1 4 0 R >> >>\n   /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", len(content), content),
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xE2\xE3\xCF\xD3\n")
	offsets := make([]int, len(objects))
	for i, o := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}

// TestSamplePDF checks testdata/sample.pdf is the generated PDF and that
// its cross-reference table points at its objects.
func TestSamplePDF(t *testing.T) {
	t.Parallel()
	want := samplePDF()
	file := filepath.Join("testdata", "sample.pdf")
	if *update {
		require.NoError(t, os.WriteFile(file, want, 0o644))
	}
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, want, got, "testdata/sample.pdf is stale: run go test ./cda -run TestSamplePDF -update")

	m := regexp.MustCompile(`startxref\n(\d+)\n%%EOF\n$`).FindSubmatch(got)
	require.NotNil(t, m, "startxref")
	xref, err := strconv.Atoi(string(m[1]))
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(got[xref:], []byte("xref\n0 6\n")), "startxref points at the xref table")
	entries := regexp.MustCompile(`(\d{10}) 00000 n \n`).FindAllSubmatch(got[xref:], -1)
	require.Len(t, entries, 5)
	for i, e := range entries {
		off, err := strconv.Atoi(string(e[1]))
		require.NoError(t, err)
		require.True(t, bytes.HasPrefix(got[off:], fmt.Appendf(nil, "%d 0 obj\n", i+1)), "object %d offset", i+1)
	}
	require.Contains(t, string(got), "(Compte rendu de test) Tj")
}

// readTestdata returns the content of testdata/name.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}
