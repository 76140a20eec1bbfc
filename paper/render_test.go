package paper_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/paper"
	"github.com/mssdispatch/mssdispatch/postal"
)

// letterhead returns the letterhead of the tests, with a logo.
func letterhead(t testing.TB) paper.Letterhead {
	return paper.Letterhead{
		Name:  "Centre Hospitalier Fictif d'Écully",
		Lines: []string{"Pôle cœur et vaisseaux", "1 avenue des Tilleuls, 69130 Écully", "Tél. 04 00 00 00 00", "Parking visiteurs : 2 € la journée"},
		Logo:  readTestdata(t, "logo.png"),
		City:  "Écully",
	}
}

// letter returns a letter of the tests to name at a, with a short
// structured report.
func letter(name string, a postal.PostalAddress) paper.Letter {
	return paper.Letter{
		Reference:     "Envoi 12 / CR 34",
		Name:          name,
		Address:       a,
		Date:          time.Date(2026, 12, 2, 9, 30, 0, 0, time.UTC),
		Patient:       "Mme DURAND Léa, née le 02/03/1975",
		DocumentTitle: "Compte rendu d'imagerie médicale",
		Service:       "Cœur et vaisseaux",
		ReportText:    []paper.Section{{Title: "Conclusion", Paragraphs: []string{"Pas d'œdème pulmonaire."}}},
	}
}

// cdaTestdata returns a document of the cda package's testdata.
func cdaTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "cda", "testdata", name))
	require.NoError(t, err)
	return b
}

// trickyLetters are letters to addresses that are hard to lay out.
var trickyLetters = []struct {
	name string
	to   string
	a    postal.PostalAddress
}{
	{"long name and CEDEX", "Pr Jean-Christophe DE LA ROCHEFOUCAULD-MONTMORENCY", postal.PostalAddress{
		Lines:       []string{"SERVICE DE CHIRURGIE CARDIAQUE", "HOPITAL CARDIOLOGIQUE HAUT-LEVEQUE", "AVENUE DE MAGELLAN"},
		RoutingLine: "33604 PESSAC CEDEX",
	}},
	{"accents", "Dr Zoé LŒUVRE-ÉMERIC", postal.PostalAddress{
		Lines: []string{"Bâtiment B, Résidence « Les Œillets »", "12, rue de l'Église"}, PostalCode: "69130", City: "Écully",
	}},
	{"wide capitals", "Dr WWWWWWWWWW MMMMMMMMMMMMMMMMMMMMMMMMM", postal.PostalAddress{
		Lines:       []string{"MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM", "WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW"},
		RoutingLine: "75002 PARIS CEDEX 02",
	}},
	{"overseas", "Dr Marie-Hélène CÉSAIRE", postal.PostalAddress{
		Lines: []string{"Quartier Bois-Carré"}, PostalCode: "97232", City: "Le Lamentin", Country: "Martinique",
	}},
	{"abroad", "Dr Hans MÜLLER", postal.PostalAddress{
		Lines: []string{"Universitätsklinikum", "Hauptstraße 5"}, PostalCode: "79098", City: "Freiburg im Breisgau", Country: "Allemagne",
	}},
	{"six lines", "Dr Jean MARTIN", postal.PostalAddress{
		Lines: []string{"APPARTEMENT 12 ESCALIER B", "RESIDENCE LES JARDINS DE LA MEDITERRANEE", "BATIMENT C",
			"12 BOULEVARD DU MARECHAL DE LATTRE DE TASSIGNY", "LIEU-DIT LE GRAND CHEMIN", "CS 90001", "SERVICE COURRIER"},
		RoutingLine: "13385 MARSEILLE CEDEX 05",
	}},
}

// TestRenderAddressInWindow checks, with pdftotext -bbox, that every word
// of the address block lies in Window, WindowMargin inside its edges, in a
// 10-point font, and that nothing else shows through the window.
func TestRenderAddressInWindow(t *testing.T) {
	t.Parallel()
	for _, tt := range trickyLetters {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			block, err := postal.AddressBlock(tt.to, tt.a)
			require.NoError(t, err)
			pdf, pages, err := paper.Render(letterhead(t), letter(tt.to, tt.a))
			require.NoError(t, err)
			require.Equal(t, 2, pages)

			// The words near the window: the window and 10 mm around it.
			near := paper.Window.Inset(-10)
			var got []string
			inner := paper.Window.Inset(paper.WindowMargin - 0.01)
			for _, w := range pageWords(t, pdf, 1) {
				if w.Box.X > near.X+near.W || w.Box.X+w.Box.W < near.X || w.Box.Y > near.Y+near.H || w.Box.Y+w.Box.H < near.Y {
					continue
				}
				got = append(got, w.Text)
				require.True(t, inner.Contains(w.Box), "word %q at %+v is not %g mm inside the window %+v", w.Text, w.Box, paper.WindowMargin, paper.Window)
				pt := w.Box.H * 72 / 25.4 // pdftotext boxes are about 0.93 em high
				require.InDelta(t, 10.5, pt, 1.5, "word %q: %.1f pt high", w.Text, pt)
			}
			require.Equal(t, strings.Fields(strings.Join(block, " ")), got, "the words in the window are those of the address block")
		})
	}
}

// TestRenderCoverText checks the cover letter's text, accents included.
func TestRenderCoverText(t *testing.T) {
	t.Parallel()
	l := letter("Dr Zoé LŒUVRE", postal.PostalAddress{Lines: []string{"12 rue de l'Église"}, PostalCode: "69130", City: "Écully"})
	pdf, _, err := paper.Render(letterhead(t), l)
	require.NoError(t, err)
	text := strings.Join(strings.Fields(pageText(t, pdf, 1)), " ")
	for _, want := range []string{
		"Centre Hospitalier Fictif d'Écully", "Pôle cœur et vaisseaux", "2 € la journée",
		"Dr Zoé LŒUVRE", "12 RUE DE L EGLISE", "69130 ECULLY",
		"Écully, le 2 décembre 2026",
		"Réf. : Envoi 12 / CR 34",
		"Objet : Compte rendu d'imagerie médicale — Mme DURAND Léa, née le 02/03/1975",
		"Madame, Monsieur,",
		"Veuillez trouver ci-joint le document « Compte rendu d'imagerie médicale » concernant votre patient(e) Mme DURAND Léa, née le 02/03/1975, transmis par le service Cœur et vaisseaux.",
		"messagerie sécurisée de santé (MSSanté)",
		"salutations distinguées.",
		"Le service Cœur et vaisseaux",
		"Envoi 12 / CR 34 — page 1/2",
	} {
		require.Contains(t, text, want)
	}
	require.NotContains(t, text, "?", "a character did not encode")
}

// TestRenderOptional checks a letter without the optional fields.
func TestRenderOptional(t *testing.T) {
	t.Parallel()
	l := paper.Letter{
		Name:       "Dr A",
		Address:    postal.PostalAddress{RoutingLine: "75002 PARIS"},
		Date:       time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC),
		ReportText: []paper.Section{{Paragraphs: []string{"Texte."}}},
	}
	pdf, pages, err := paper.Render(paper.Letterhead{}, l)
	require.NoError(t, err)
	require.Equal(t, 2, pages)
	text := strings.Join(strings.Fields(pageText(t, pdf, 1)), " ")
	require.Contains(t, text, "Le 1er mars 2027")
	require.Contains(t, text, "Veuillez trouver ci-joint un document.")
	require.Contains(t, text, "Page 1/2")
	require.NotContains(t, text, "Réf.")
	require.NotContains(t, text, "Objet")
}

// TestRenderReportPDF checks the report PDF follows the cover letter, with
// the letter's footer.
func TestRenderReportPDF(t *testing.T) {
	t.Parallel()
	report, err := cda.ExtractPDF(cdaTestdata(t, "n1-pdf.xml"))
	require.NoError(t, err)
	l := letter("Dr Claire DUPONT-DEMO", postal.PostalAddress{Lines: []string{"12 rue de la Paix"}, RoutingLine: "75002 PARIS"})
	l.ReportPDF, l.ReportText = report, nil
	pdf, pages, err := paper.Render(letterhead(t), l)
	require.NoError(t, err)
	require.Equal(t, 2, pages)
	require.Equal(t, 2, pdfPages(t, pdf))
	require.Contains(t, pageText(t, pdf, 1), "Envoi 12 / CR 34 — page 1/2")
	p2 := pageText(t, pdf, 2)
	require.Contains(t, p2, "Compte rendu de test")
	require.Contains(t, p2, "Envoi 12 / CR 34 — page 2/2")
	require.NotContains(t, p2, "Madame, Monsieur")
}

// reportPDF returns a PDF of n pages, page i showing "Page i du compte rendu".
func reportPDF(t testing.TB, n int) []byte {
	t.Helper()
	f := fpdf.New("P", "mm", "A4", "")
	f.SetFont("Helvetica", "", 12)
	for i := 1; i <= n; i++ {
		f.AddPage()
		f.Text(20, 30, fmt.Sprintf("Page %d du compte rendu", i))
	}
	var b bytes.Buffer
	require.NoError(t, f.Output(&b))
	return b.Bytes()
}

func TestRenderReportPDFPages(t *testing.T) {
	t.Parallel()
	l := letter("Dr Claire DUPONT-DEMO", postal.PostalAddress{RoutingLine: "75002 PARIS"})
	l.ReportPDF, l.ReportText = reportPDF(t, 3), nil
	l.Reference = "CR 100% 42" // a % is no stamp placeholder
	pdf, pages, err := paper.Render(letterhead(t), l)
	require.NoError(t, err)
	require.Equal(t, 4, pages)
	require.Equal(t, 4, pdfPages(t, pdf))
	for i := 1; i <= 3; i++ {
		text := pageText(t, pdf, i+1)
		require.Contains(t, text, fmt.Sprintf("Page %d du compte rendu", i))
		require.Contains(t, text, fmt.Sprintf("— page %d/4", i+1))
		require.Contains(t, text, "CR 100")
	}
}

// TestRenderReportText checks the sections of a structured CDA are
// typeset after the cover letter.
func TestRenderReportText(t *testing.T) {
	t.Parallel()
	sections, err := cda.Text(cdaTestdata(t, "cr-imagerie-n3.xml"))
	require.NoError(t, err)
	l := letter("Dr Claire DUPONT-DEMO", postal.PostalAddress{RoutingLine: "75002 PARIS"})
	l.ReportText = sections
	pdf, pages, err := paper.Render(letterhead(t), l)
	require.NoError(t, err)
	require.Equal(t, pdfPages(t, pdf), pages)
	require.Equal(t, 2, pages)
	text := strings.Join(strings.Fields(pageText(t, pdf, 2)), " ")
	for _, s := range sections {
		if s.Title != "" {
			require.Contains(t, text, s.Title)
		}
		for _, p := range s.Paragraphs {
			p = strings.TrimLeft(p, " ")
			p = strings.TrimPrefix(p, "• ")
			require.Contains(t, text, strings.Join(strings.Fields(p), " "))
		}
	}
	require.Contains(t, text, "Compte rendu d'imagerie médicale Mme DURAND Léa")
	require.Contains(t, text, "œdème")
	require.Contains(t, text, "Envoi 12 / CR 34 — page 2/2")
	require.NotContains(t, pageText(t, pdf, 1), "Indication")
}

// TestRenderReportTextPages checks a long report breaks into pages, each
// with its footer.
func TestRenderReportTextPages(t *testing.T) {
	t.Parallel()
	var sections []paper.Section
	for i := 1; i <= 40; i++ {
		s := paper.Section{Title: fmt.Sprintf("Section %d", i)}
		for j := 1; j <= 3; j++ {
			s.Paragraphs = append(s.Paragraphs, fmt.Sprintf("Paragraphe %d.%d : ", i, j)+strings.Repeat("texte d'exemple du compte rendu ", 8))
		}
		s.Paragraphs = append(s.Paragraphs, "• un élément de liste dont le texte est assez long pour tenir sur deux lignes de la page, avec retrait")
		sections = append(sections, s)
	}
	l := letter("Dr Claire DUPONT-DEMO", postal.PostalAddress{RoutingLine: "75002 PARIS"})
	l.ReportText = sections
	pdf, pages, err := paper.Render(letterhead(t), l)
	require.NoError(t, err)
	require.Equal(t, pdfPages(t, pdf), pages)
	require.Greater(t, pages, 4)
	var all strings.Builder
	for i := 1; i <= pages; i++ {
		text := pageText(t, pdf, i)
		require.Contains(t, text, fmt.Sprintf("Envoi 12 / CR 34 — page %d/%d", i, pages))
		all.WriteString(text)
	}
	for i := 1; i <= 40; i++ {
		require.Contains(t, all.String(), fmt.Sprintf("Section %d\n", i))
		require.Contains(t, all.String(), fmt.Sprintf("Paragraphe %d.3", i))
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	ok := letter("Dr A", postal.PostalAddress{RoutingLine: "75002 PARIS"})
	for _, tt := range []struct {
		name   string
		lh     paper.Letterhead
		change func(l *paper.Letter)
		is     error
	}{
		{"no address", paper.Letterhead{}, func(l *paper.Letter) { l.Address = postal.PostalAddress{Lines: []string{"12 rue de la Paix"}} }, postal.ErrNotPostable},
		{"no date", paper.Letterhead{}, func(l *paper.Letter) { l.Date = time.Time{} }, paper.ErrNoDate},
		{"no report", paper.Letterhead{}, func(l *paper.Letter) { l.ReportText = nil }, paper.ErrNoReport},
		{"empty report PDF and no text", paper.Letterhead{}, func(l *paper.Letter) { l.ReportText, l.ReportPDF = nil, []byte{} }, paper.ErrNoReport},
		{"report not a PDF", paper.Letterhead{}, func(l *paper.Letter) { l.ReportPDF = []byte("%PDF-1.4 truncated") }, paper.ErrInvalidPDF},
		{"logo not an image", paper.Letterhead{Logo: []byte("GIF89a")}, func(*paper.Letter) {}, paper.ErrInvalidLogo},
		{"logo truncated", paper.Letterhead{Logo: readTestdata(t, "logo.png")[:40]}, func(*paper.Letter) {}, paper.ErrInvalidLogo},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := ok
			tt.change(&l)
			pdf, pages, err := paper.Render(tt.lh, l)
			require.ErrorIs(t, err, tt.is)
			require.Nil(t, pdf)
			require.Zero(t, pages)
		})
	}
}

// TestRenderArtifact keeps an image of the cover page of a tricky letter
// in artifacts/paper, and checks the fold marks on it.
func TestRenderArtifact(t *testing.T) {
	t.Parallel()
	tt := trickyLetters[0]
	pdf, _, err := paper.Render(letterhead(t), letter(tt.to, tt.a))
	require.NoError(t, err)
	dir, err := filepath.Abs(filepath.Join("..", "artifacts", "paper"))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	base := filepath.Join(dir, "letter-cover")
	run(t, "pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", writePDF(t, pdf), base)
	png, err := os.ReadFile(base + ".png")
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(png, []byte("\x89PNG")))
	t.Logf("cover page image: %s.png", base)

	// Fold marks: dark pixels in the left margin at 99 and 198 mm only.
	const dpi = 100
	gray := run(t, "pdftoppm", "-gray", "-r", fmt.Sprint(dpi), "-f", "1", "-l", "1", "-singlefile", writePDF(t, pdf))
	img := readPGM(t, gray)
	px := func(mm float64) int { return int(mm / 25.4 * dpi) }
	var marks []int
	for y := 0; y < len(img); y++ {
		if img[y][px(6.5)] < 200 {
			marks = append(marks, y)
		}
	}
	require.NotEmpty(t, marks)
	for _, y := range marks {
		mm := float64(y) * 25.4 / dpi
		require.True(t, mm > 98 && mm < 100 || mm > 197 && mm < 199, "dark pixel in the left margin at %.1f mm", mm)
	}
}

// readPGM decodes a binary PGM (P5) of 8-bit pixels into rows.
func readPGM(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var magic string
	var w, h, maxv int
	var rest []byte
	_, err := fmt.Sscan(string(b), &magic, &w, &h, &maxv)
	require.NoError(t, err)
	require.Equal(t, "P5", magic)
	require.Equal(t, 255, maxv)
	// The header is four tokens and single white space after each.
	fields, i := 0, 0
	for fields < 4 {
		for b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t' {
			i++
		}
		for b[i] != ' ' && b[i] != '\n' && b[i] != '\r' && b[i] != '\t' {
			i++
		}
		fields++
	}
	rest = b[i+1:]
	require.Len(t, rest, w*h)
	rows := make([][]byte, h)
	for y := range rows {
		rows[y] = rest[y*w : (y+1)*w]
	}
	return rows
}

// TestRenderLongCover checks the footers of a cover letter that takes two
// pages count them before the report's.
func TestRenderLongCover(t *testing.T) {
	t.Parallel()
	l := letter("Dr A", postal.PostalAddress{RoutingLine: "75002 PARIS"})
	l.DocumentTitle = strings.Repeat("Compte rendu très détaillé ", 60)
	l.ReportPDF, l.ReportText = reportPDF(t, 2), nil
	pdf, pages, err := paper.Render(paper.Letterhead{}, l)
	require.NoError(t, err)
	require.Equal(t, 4, pages)
	require.Equal(t, 4, pdfPages(t, pdf))
	for i := 1; i <= 4; i++ {
		require.Contains(t, pageText(t, pdf, i), fmt.Sprintf("Envoi 12 / CR 34 — page %d/4", i))
	}
	require.Contains(t, pageText(t, pdf, 3), "Page 1 du compte rendu")
}
