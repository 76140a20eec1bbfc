package paper

import (
	"fmt"
	"strings"
	"time"
)

// SummaryLine is one letter of a batch, a row of its summary sheet.
type SummaryLine struct {
	Reference string // The letter's reference (see Letter.Reference).
	Name      string // The recipient's name.
	City      string // The recipient's city.
	Pages     int    // The letter's pages (see Render), cover included.
}

// summaryColumns are the columns of the summary table: title, width in
// millimetres, alignment.
var summaryColumns = []struct {
	title string
	width float64
	align string
}{
	{"N°", 9, "R"},
	{"Référence", 44, "L"},
	{"Destinataire", 52, "L"},
	{"Ville", 34, "L"},
	{"Pages", 13, "R"},
	{"Pages du lot", 23, "R"},
}

// summaryRow is the height of a row of the summary table, in millimetres.
const summaryRow = 6.0

// RenderSummary returns the summary sheet of a batch of letters, the
// first pages of the batch (see Merge): under lh's letterhead and title,
// a table of lines, in order, with each letter's pages and their numbers
// in the batch (the summary's own pages first), then the total of letters
// and pages. Every page has the footer "<title> — page i/n".
func RenderSummary(lh Letterhead, title string, lines []SummaryLine) ([]byte, error) {
	// The page numbers in the batch depend on the summary's own pages:
	// render with one, then again with the real number if it differs
	// (rows have a fixed height, so the second rendering has as many).
	out, pages, err := renderSummary(lh, title, lines, 1)
	if err == nil && pages != 1 {
		out, _, err = renderSummary(lh, title, lines, pages)
	}
	return out, err
}

// renderSummary renders the summary sheet, counting its own pages as
// sheetPages in the batch.
func renderSummary(lh Letterhead, title string, lines []SummaryLine, sheetPages int) ([]byte, int, error) {
	d := newDocument(title, time.Time{})
	d.footer(func(page int) string {
		s := fmt.Sprintf("page %d/{nb}", page)
		if title != "" {
			s = title + " — " + s
		}
		return s
	})
	d.pdf.AddPage()
	y, err := d.letterhead(lh, textWidth/2)
	if err != nil {
		return nil, 0, err
	}
	d.pdf.SetXY(marginLeft, max(y+8, 45))
	if title != "" {
		d.font("B", 14)
		d.pdf.MultiCell(textWidth, 7, d.s(title), "", "L", false)
	}
	letters, pages := 0, 0
	for _, l := range lines {
		letters++
		pages += max(l.Pages, 0)
	}
	d.font("", 10)
	d.pdf.SetX(marginLeft)
	d.pdf.MultiCell(textWidth, bodyLead, d.s(totalText(letters, pages, sheetPages)), "", "L", false)
	d.pdf.Ln(4)

	header := func() {
		d.font("B", 9)
		d.pdf.SetFillColor(225, 225, 225)
		d.pdf.SetX(marginLeft)
		for _, c := range summaryColumns {
			d.pdf.CellFormat(c.width, summaryRow, d.fit(c.title, c.width-2), "1", 0, c.align, true, 0, "")
		}
		d.pdf.Ln(summaryRow)
		d.font("", 9)
	}
	header()
	next := sheetPages + 1
	for i, l := range lines {
		if d.pdf.GetY()+summaryRow > PageHeight-bottomMargin {
			d.pdf.AddPage()
			d.pdf.SetY(15)
			header()
		}
		span := "—"
		if l.Pages > 0 {
			span = fmt.Sprint(next)
			if l.Pages > 1 {
				span += "–" + fmt.Sprint(next+l.Pages-1)
			}
			next += l.Pages
		}
		cells := []string{fmt.Sprint(i + 1), l.Reference, l.Name, l.City, fmt.Sprint(max(l.Pages, 0)), span}
		d.pdf.SetX(marginLeft)
		for j, c := range summaryColumns {
			d.pdf.CellFormat(c.width, summaryRow, d.fit(cells[j], c.width-2), "1", 0, c.align, false, 0, "")
		}
		d.pdf.Ln(summaryRow)
	}
	if d.pdf.GetY()+2*summaryRow > PageHeight-bottomMargin {
		d.pdf.AddPage()
		d.pdf.SetY(15)
	}
	d.font("B", 10)
	d.pdf.Ln(3)
	d.pdf.SetX(marginLeft)
	d.pdf.MultiCell(textWidth, bodyLead, d.s(totalText(letters, pages, sheetPages)), "", "L", false)
	if err := d.pdf.Error(); err != nil {
		return nil, 0, fmt.Errorf("paper: render summary: %w", err)
	}
	n := d.pdf.PageNo()
	out, err := d.bytes()
	return out, n, err
}

// totalText returns the totals of a batch.
func totalText(letters, pages, sheetPages int) string {
	return fmt.Sprintf("Total : %s, %s (plus %s de récapitulatif).",
		plural(letters, "courrier"), plural(pages, "page"), plural(sheetPages, "page"))
}

// plural returns n and noun, in the plural when n > 1 (French: 0 and 1
// are singular).
func plural(n int, noun string) string {
	if n > 1 {
		noun += "s"
	}
	return fmt.Sprintf("%d %s", n, noun)
}

// fit returns s encoded for the core fonts, cut with an ellipsis to fit
// in w millimetres at the current font.
func (d *document) fit(s string, w float64) string {
	e := d.s(strings.Join(strings.Fields(s), " "))
	if d.pdf.GetStringWidth(e) <= w {
		return e
	}
	ellipsis := d.s("…")
	r := []byte(e) // one byte a character in Windows-1252
	for len(r) > 0 && d.pdf.GetStringWidth(string(r)+ellipsis) > w {
		r = r[:len(r)-1]
	}
	return strings.TrimRight(string(r), " ") + ellipsis
}
