package paper_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/paper"
	"github.com/mssdispatch/mssdispatch/postal"
)

func TestRenderSummary(t *testing.T) {
	t.Parallel()
	lines := []paper.SummaryLine{
		{Reference: "Envoi 1 / CR 10", Name: "Pr Jean-Christophe DE LA ROCHEFOUCAULD-MONTMORENCY", City: "PESSAC CEDEX", Pages: 3},
		{Reference: "Envoi 2 / CR 11", Name: "Dr Zoé LŒUVRE", City: "ÉCULLY", Pages: 1},
		{Reference: "Envoi 3 / CR 12", Name: "Dr Hans MÜLLER", City: "FREIBURG IM BREISGAU", Pages: 2},
	}
	pdf, err := paper.RenderSummary(letterhead(t), "Courriers du 2 décembre 2026", lines)
	require.NoError(t, err)
	require.Equal(t, 1, pdfPages(t, pdf))
	flat := strings.Join(strings.Fields(layoutText(t, pdf, 1)), " ")
	for _, want := range []string{
		"Centre Hospitalier Fictif d'Écully",
		"Courriers du 2 décembre 2026",
		"N° Référence Destinataire Ville Pages Pages du lot",
		"1 Envoi 1 / CR 10 Pr Jean-Christophe DE LA ROC… PESSAC CEDEX 3 2–4",
		"2 Envoi 2 / CR 11 Dr Zoé LŒUVRE ÉCULLY 1 5",
		"3 Envoi 3 / CR 12 Dr Hans MÜLLER FREIBURG IM BRE… 2 6–7",
		"Total : 3 courriers, 6 pages (plus 1 page de récapitulatif).",
		"Courriers du 2 décembre 2026 — page 1/1",
	} {
		require.Contains(t, flat, want)
	}
}

// TestRenderSummaryPages checks a summary of many letters: its table goes
// on over pages and the page numbers in the batch count its own pages.
func TestRenderSummaryPages(t *testing.T) {
	t.Parallel()
	var lines []paper.SummaryLine
	for i := 1; i <= 80; i++ {
		lines = append(lines, paper.SummaryLine{Reference: fmt.Sprintf("Envoi %d", i), Name: fmt.Sprintf("Dr N%d", i), City: "PARIS", Pages: 2})
	}
	pdf, err := paper.RenderSummary(paper.Letterhead{Name: "CH"}, "Lot 7", lines)
	require.NoError(t, err)
	n := pdfPages(t, pdf)
	require.Greater(t, n, 1)
	var all strings.Builder
	for i := 1; i <= n; i++ {
		text := layoutText(t, pdf, i)
		require.Contains(t, text, fmt.Sprintf("Lot 7 — page %d/%d", i, n))
		all.WriteString(text)
	}
	flat := strings.Join(strings.Fields(all.String()), " ")
	// The first letter starts after the summary's own pages.
	require.Contains(t, flat, fmt.Sprintf("1 Envoi 1 Dr N1 PARIS 2 %d–%d", n+1, n+2))
	require.Contains(t, flat, fmt.Sprintf("80 Envoi 80 Dr N80 PARIS 2 %d–%d", n+159, n+160))
	require.Contains(t, flat, fmt.Sprintf("Total : 80 courriers, 160 pages (plus %d pages de récapitulatif).", n))
	require.Equal(t, n, strings.Count(flat, "N° Référence Destinataire Ville Pages Pages du lot"), "the table head on every page")
}

func TestRenderSummaryEmpty(t *testing.T) {
	t.Parallel()
	pdf, err := paper.RenderSummary(paper.Letterhead{}, "", nil)
	require.NoError(t, err)
	require.Equal(t, 1, pdfPages(t, pdf))
	require.Contains(t, pageText(t, pdf, 1), "Total : 0 courrier, 0 page (plus 1 page de récapitulatif).")
}

// TestMerge merges a batch: summary sheet, then the letters, in order.
func TestMerge(t *testing.T) {
	t.Parallel()
	var letters [][]byte
	var lines []paper.SummaryLine
	for i, tt := range trickyLetters[:3] {
		l := letter(tt.to, tt.a)
		l.Reference = fmt.Sprintf("Envoi %d", i+1)
		l.ReportText, l.ReportPDF = nil, reportPDF(t, i+1)
		pdf, pages, err := paper.Render(letterhead(t), l)
		require.NoError(t, err)
		require.Equal(t, i+2, pages)
		letters = append(letters, pdf)
		lines = append(lines, paper.SummaryLine{Reference: l.Reference, Name: l.Name, Pages: pages})
	}
	sheet, err := paper.RenderSummary(letterhead(t), "Lot", lines)
	require.NoError(t, err)
	batch, err := paper.Merge(append([][]byte{sheet}, letters...)...)
	require.NoError(t, err)
	require.Equal(t, 1+2+3+4, pdfPages(t, batch))
	require.Contains(t, pageText(t, batch, 1), "Total : 3 courriers, 9 pages")
	for page, want := range map[int]string{
		2: "Envoi 1 — page 1/2", 3: "Envoi 1 — page 2/2",
		4: "Envoi 2 — page 1/3", 6: "Envoi 2 — page 3/3",
		7: "Envoi 3 — page 1/4", 10: "Envoi 3 — page 4/4",
	} {
		require.Contains(t, pageText(t, batch, page), want, "page %d", page)
	}
	require.Contains(t, pageText(t, batch, 10), "Page 3 du compte rendu")

	one, err := paper.Merge(letters[0])
	require.NoError(t, err)
	require.Equal(t, 2, pdfPages(t, one))
}

func TestMergeErrors(t *testing.T) {
	t.Parallel()
	_, err := paper.Merge()
	require.ErrorIs(t, err, paper.ErrNoPDF)
	_, err = paper.Merge(reportPDF(t, 1), []byte("not a PDF"))
	require.ErrorIs(t, err, paper.ErrInvalidPDF)
	_, err = paper.Merge(nil)
	require.ErrorIs(t, err, paper.ErrInvalidPDF)
}

// TestNoConfigDir checks pdfcpu writes no configuration directory under
// the user's home. It sets the environment, so it does not run in parallel
// (parallel tests start after it).
func TestNoConfigDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	l := letter("Dr A", postal.PostalAddress{RoutingLine: "75002 PARIS"})
	l.ReportPDF = reportPDF(t, 2)
	pdf, _, err := paper.Render(paper.Letterhead{}, l)
	require.NoError(t, err)
	_, err = paper.Merge(pdf, pdf)
	require.NoError(t, err)
	entries, err := os.ReadDir(home)
	require.NoError(t, err)
	require.Empty(t, entries, "pdfcpu wrote under the home directory")
}
