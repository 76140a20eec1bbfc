package paper

import (
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"image/png"
	"regexp"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/postal"
)

var (
	// ErrNoReport is returned by Render for a letter with neither
	// ReportPDF nor ReportText.
	ErrNoReport = errors.New("paper: letter has no report")
	// ErrNoDate is returned by Render for a letter without Date.
	ErrNoDate = errors.New("paper: letter has no date")
	// ErrInvalidLogo is returned by Render and RenderSummary for a
	// Letterhead.Logo that is not a PNG or JPEG image that decodes.
	ErrInvalidLogo = errors.New("paper: invalid letterhead logo")
)

// Letterhead is the sender of letters: the hospital (or its service).
type Letterhead struct {
	Name  string   // The hospital's name, the first line, in bold.
	Lines []string // Lines under the name: address, phone, service.
	// Logo is a PNG or JPEG image drawn at the top left, at most
	// LogoMaxWidth wide and LogoMaxHeight high; optional.
	Logo []byte
	// City is where letters are written from, printed before their date
	// ("Bordeaux, le 2 décembre 2026"); optional ("Le 2 décembre 2026").
	City string
}

// Size of the letterhead logo, in millimetres.
const (
	LogoMaxWidth  = 35.0
	LogoMaxHeight = 22.0
)

// Section is a section of a structured report: a title and its
// paragraphs (see cda.Text).
type Section = cda.TextSection

// Kind is why a letter goes on paper, which its cover letter tells the
// recipient about MSSanté, the secure email of health professionals.
type Kind int

// Kinds of letters.
const (
	// KindNoMailbox: no MSSanté mailbox of the recipient is known; the
	// letter invites them to publish one in the Annuaire Santé.
	KindNoMailbox Kind = iota
	// KindCopy: the recipient gets the document by MSSanté too; the letter
	// says it is its paper copy, and invites them to nothing.
	KindCopy
	// KindFallback: the document was sent by MSSanté without a confirmation
	// that it arrived (a failure, no delivery or read notification); the
	// letter says so and asks them to keep their address up to date.
	KindFallback
	// KindChosen: paper was chosen for the recipient (the hospital's local
	// directory says paper, a secretary switched to paper); the letter says
	// nothing of MSSanté.
	KindChosen
	// KindPatient: the patient's own document, sent to them; the letter
	// speaks of their document, not of "your patient", and says nothing of
	// the professionals' MSSanté.
	KindPatient
)

// Letter is a report sent on paper to one recipient: a cover letter
// addressed through the envelope window, followed by the report.
type Letter struct {
	// Reference identifies the letter: printed under the address block
	// ("Réf. : …") and in the footer of every page.
	Reference string
	Name      string               // The recipient's name ("Dr Claire DUPONT-DEMO"), line 1 of the address block.
	Address   postal.PostalAddress // The recipient's address (see postal.AddressBlock).
	// Date is the letter's date, printed "Le 2 décembre 2026" in its own
	// location (convert it to Europe/Paris first).
	Date time.Time
	// Patient is who the report is about, for the object line and the
	// body ("Mme DURAND Léa, née le 02/03/1975").
	Patient       string
	DocumentTitle string // The report's title ("Compte rendu opératoire").
	Service       string // The service that sends the report ("Cardiologie"); optional.
	// ReportPDF is the report itself, appended after the cover page; when
	// empty, ReportText (the sections of a structured CDA, see cda.Text) is
	// typeset on A4 pages instead.
	ReportPDF  []byte
	ReportText []Section
	// Kind is why the letter goes on paper (KindNoMailbox when zero).
	Kind Kind
}

// Layout of the pages, in millimetres.
const (
	marginLeft   = 20.0
	marginRight  = 15.0
	textWidth    = PageWidth - marginLeft - marginRight
	footerY      = PageHeight - 9.0 // baseline of the footer
	bottomMargin = 18.0             // automatic page break
	addressSize  = 10.0             // font size of the address block, in points
	addressLead  = 4.5              // line height of the address block
	bodyLead     = 5.0              // line height of 10-point text
	ptToMM       = 25.4 / 72
)

// document is a PDF being written, with the translation of UTF-8 text to
// the Windows-1252 encoding of the PDF core fonts.
type document struct {
	pdf *fpdf.Fpdf
	tr  func(string) string
}

// newDocument starts an A4 portrait PDF, in millimetres, dated created.
func newDocument(title string, created time.Time) *document {
	pdf := fpdf.New("P", "mm", "A4", "")
	d := &document{pdf: pdf, tr: pdf.UnicodeTranslatorFromDescriptor("cp1252")}
	pdf.SetCatalogSort(true)
	if !created.IsZero() {
		pdf.SetCreationDate(created)
		pdf.SetModificationDate(created)
	}
	pdf.SetCreator("mssdispatch", false)
	pdf.SetTitle(title, true)
	pdf.SetLang("fr-FR")
	pdf.SetMargins(marginLeft, 15, marginRight)
	pdf.SetAutoPageBreak(true, bottomMargin)
	return d
}

// s returns str encoded for the core fonts.
func (d *document) s(str string) string { return d.tr(latin(str)) }

// font sets the Helvetica font, style "" or "B" or "I", size in points.
func (d *document) font(style string, size float64) { d.pdf.SetFont("Helvetica", style, size) }

// bytes returns the PDF.
func (d *document) bytes() ([]byte, error) {
	var b bytes.Buffer
	if err := d.pdf.Output(&b); err != nil {
		return nil, fmt.Errorf("paper: write PDF: %w", err)
	}
	return b.Bytes(), nil
}

// footer prints text centred at the bottom of every page; "{nb}" in it is
// the number of pages of the document, "{p}" the page number.
func (d *document) footer(text func(page int) string) {
	d.pdf.AliasNbPages("{nb}")
	d.pdf.SetFooterFunc(func() {
		d.font("", 8)
		d.pdf.SetTextColor(80, 80, 80)
		s := d.s(text(d.pdf.PageNo()))
		d.pdf.Text((PageWidth-d.pdf.GetStringWidth(strings.ReplaceAll(s, "{nb}", "99")))/2, footerY, s)
		d.pdf.SetTextColor(0, 0, 0)
	})
}

// letterhead prints lh at the top left of the current page, within
// maxWidth, and returns the Y under it.
func (d *document) letterhead(lh Letterhead, maxWidth float64) (float64, error) {
	y := 15.0
	if len(lh.Logo) > 0 {
		logo, typ, err := checkLogo(lh.Logo)
		if err != nil {
			return 0, err
		}
		opt := fpdf.ImageOptions{ImageType: typ}
		info := d.pdf.RegisterImageOptionsReader("logo", opt, bytes.NewReader(logo))
		if err := d.pdf.Error(); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrInvalidLogo, err)
		}
		if info.Width() <= 0 || info.Height() <= 0 {
			return 0, fmt.Errorf("%w: empty image", ErrInvalidLogo)
		}
		w, h := LogoMaxWidth, LogoMaxWidth*info.Height()/info.Width()
		if h > LogoMaxHeight {
			w, h = LogoMaxHeight*info.Width()/info.Height(), LogoMaxHeight
		}
		d.pdf.ImageOptions("logo", marginLeft, 10, w, h, false, opt, 0, "")
		y = 10 + h + 4
	}
	d.pdf.SetXY(marginLeft, y)
	if lh.Name != "" {
		d.font("B", 11)
		d.pdf.MultiCell(maxWidth, 5, d.s(lh.Name), "", "L", false)
	}
	d.font("", 9)
	for _, l := range lh.Lines {
		d.pdf.SetX(marginLeft)
		d.pdf.MultiCell(maxWidth, 4, d.s(l), "", "L", false)
	}
	return d.pdf.GetY(), nil
}

// checkLogo decodes the letterhead logo b with the standard library, which
// fpdf's own decoders are not as robust as, and returns it as fpdf reads
// it: a JPEG as is, a PNG encoded again (8 bits a channel, not
// interlaced), with its fpdf type.
func checkLogo(b []byte) (logo []byte, typ string, err error) {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			return nil, "", fmt.Errorf("%w: %w", ErrInvalidLogo, err)
		}
		var out bytes.Buffer
		if err := png.Encode(&out, img); err != nil {
			return nil, "", fmt.Errorf("%w: %w", ErrInvalidLogo, err)
		}
		return out.Bytes(), "PNG", nil
	case bytes.HasPrefix(b, []byte("\xFF\xD8\xFF")):
		if _, err := jpeg.Decode(bytes.NewReader(b)); err != nil {
			return nil, "", fmt.Errorf("%w: %w", ErrInvalidLogo, err)
		}
		return b, "JPG", nil
	}
	return nil, "", fmt.Errorf("%w: not a PNG or JPEG image", ErrInvalidLogo)
}

// addressBlock prints lines in Window, WindowMargin inside its edges,
// top-aligned, in Helvetica addressSize points; a line too wide is
// condensed horizontally to fit.
func (d *document) addressBlock(lines []string) {
	inner := Window.Inset(WindowMargin)
	d.font("", addressSize)
	// The first baseline sits one em (plus 1 mm) under the top of the
	// inner rectangle, so that no glyph reaches above it.
	base := inner.Y + 1 + addressSize*ptToMM
	for i, l := range lines {
		s := d.s(l)
		y := base + float64(i)*addressLead
		if w := d.pdf.GetStringWidth(s); w > inner.W {
			d.pdf.TransformBegin()
			d.pdf.TransformScaleX(100*inner.W/w, inner.X, y)
			d.pdf.Text(inner.X, y, s)
			d.pdf.TransformEnd()
			continue
		}
		d.pdf.Text(inner.X, y, s)
	}
}

// foldMarks prints the fold marks of a letter fold in the left margin.
func (d *document) foldMarks() {
	d.pdf.SetLineWidth(0.2)
	d.pdf.SetDrawColor(120, 120, 120)
	for _, y := range []float64{FoldPanel, 2 * FoldPanel} {
		d.pdf.Line(4, y, 9, y)
	}
	d.pdf.SetDrawColor(0, 0, 0)
}

// paragraph prints text as a justified paragraph of the text width.
func (d *document) paragraph(text string) {
	d.pdf.SetX(marginLeft)
	d.pdf.MultiCell(textWidth, bodyLead, d.s(text), "", "J", false)
}

// Render returns the PDF to print and post for l: a cover letter from lh
// whose address block (see postal.AddressBlock) shows through the window of a DL
// envelope, followed by the report, ReportPDF's pages or ReportText
// typeset; every page has the footer "<Reference> — page i/n". It also
// returns the number of pages of the PDF.
//
// Render returns postal.ErrNotPostable for an address without routing line,
// ErrNoDate, ErrNoReport, ErrInvalidLogo and, for a ReportPDF that cannot
// be read, ErrInvalidPDF; all are permanent.
func Render(lh Letterhead, l Letter) (pdf []byte, pages int, err error) {
	lines, err := postal.AddressBlock(l.Name, l.Address)
	if err != nil {
		return nil, 0, err
	}
	if l.Date.IsZero() {
		return nil, 0, ErrNoDate
	}
	if len(l.ReportPDF) == 0 && len(l.ReportText) == 0 {
		return nil, 0, ErrNoReport
	}
	reportPages := 0
	if len(l.ReportPDF) > 0 {
		if reportPages, err = pageCount(l.ReportPDF); err != nil {
			return nil, 0, fmt.Errorf("paper: report: %w", err)
		}
	}

	// With a report PDF, the footers count its pages after those of the
	// cover letter: one, unless its object or letterhead is very long.
	coverPages := 1
	var out []byte
	for {
		total := "{nb}"
		if len(l.ReportPDF) > 0 {
			total = fmt.Sprint(coverPages + reportPages)
		}
		d := newDocument(l.DocumentTitle, l.Date)
		d.footer(func(page int) string { return footerText(l.Reference, fmt.Sprint(page), total) })
		if err := d.cover(lh, l, lines); err != nil {
			return nil, 0, err
		}
		if len(l.ReportPDF) == 0 {
			d.reportText(l)
		}
		if err := d.pdf.Error(); err != nil {
			return nil, 0, fmt.Errorf("paper: render: %w", err)
		}
		pages = d.pdf.PageNo()
		if out, err = d.bytes(); err != nil {
			return nil, 0, err
		}
		if len(l.ReportPDF) == 0 || pages == coverPages {
			break
		}
		coverPages = pages
	}
	if len(l.ReportPDF) == 0 {
		return out, pages, nil
	}
	if out, err = appendReport(out, l.ReportPDF, footerText(l.Reference, "%p", "%P")); err != nil {
		return nil, 0, err
	}
	return out, pages + reportPages, nil
}

// footerText returns the footer of a page of a letter.
func footerText(ref, page, total string) string {
	if ref == "" {
		return "Page " + page + "/" + total
	}
	return ref + " — page " + page + "/" + total
}

// cover prints the cover letter of l on a new page.
func (d *document) cover(lh Letterhead, l Letter, lines []string) error {
	d.pdf.AddPage()
	// The letterhead stays left of the window (and of where it moves to
	// when the letter slides in the envelope).
	if _, err := d.letterhead(lh, Window.X-10-marginLeft); err != nil {
		return err
	}
	d.foldMarks()
	d.addressBlock(lines)

	date := frenchDate(l.Date)
	if city := strings.TrimSpace(lh.City); city != "" {
		date = city + ", " + date
	} else {
		date = strings.ToUpper(date[:1]) + date[1:]
	}
	// The date and the signature align with the address block (cells
	// have an inner margin).
	right := Window.X + WindowMargin - d.pdf.GetCellMargin()
	d.font("", 10)
	d.pdf.SetXY(right, 104)
	d.pdf.CellFormat(PageWidth-marginRight-right, bodyLead, d.s(date), "", 1, "L", false, 0, "")

	d.pdf.SetXY(marginLeft, 114)
	if l.Reference != "" {
		d.font("", 10)
		d.pdf.CellFormat(textWidth, bodyLead, d.s("Réf. : "+l.Reference), "", 1, "L", false, 0, "")
	}
	object := strings.TrimSpace(l.DocumentTitle)
	if p := strings.TrimSpace(l.Patient); p != "" {
		if object != "" {
			object += " — "
		}
		object += p
	}
	if object != "" {
		d.font("B", 10)
		d.pdf.SetX(marginLeft)
		d.pdf.MultiCell(textWidth, bodyLead, d.s("Objet : "+object), "", "L", false)
	}

	d.font("", 10)
	d.pdf.SetY(d.pdf.GetY() + 10)
	d.paragraph("Madame, Monsieur,")
	d.pdf.Ln(3)
	d.paragraph(coverBody(l))
	d.pdf.Ln(3)
	if s := mssanteText[l.Kind]; s != "" {
		d.paragraph(s)
		d.pdf.Ln(3)
	}
	d.paragraph("Nous vous prions d'agréer, Madame, Monsieur, l'expression de nos salutations distinguées.")
	d.pdf.Ln(8)
	var sign []string
	if s := strings.TrimSpace(l.Service); s != "" {
		sign = append(sign, "Le service "+s)
	}
	if lh.Name != "" {
		sign = append(sign, lh.Name)
	}
	for _, s := range sign {
		d.pdf.SetX(right)
		d.pdf.MultiCell(PageWidth-marginRight-right, bodyLead, d.s(s), "", "L", false)
	}
	return nil
}

// mssanteText is what the cover letter of each kind says of MSSanté, after
// presenting the report ("" for nothing).
var mssanteText = map[Kind]string{
	KindNoMailbox: "Pour recevoir nos prochains documents par messagerie sécurisée de santé (MSSanté), " +
		"plus vite et sans papier, il vous suffit de disposer d'une boîte aux lettres MSSanté publiée " +
		"dans l'Annuaire Santé : nous le consultons avant chaque envoi.",
	KindCopy: "Ce document vous est également adressé par messagerie sécurisée de santé (MSSanté) : " +
		"ce courrier en est la copie papier.",
	KindFallback: "Ce document vous a été adressé par messagerie sécurisée de santé (MSSanté), sans que nous " +
		"ayons la confirmation que vous l'avez reçu : nous vous l'adressons aussi par courrier. Si votre " +
		"adresse MSSanté a changé, merci de la mettre à jour dans l'Annuaire Santé.",
}

// coverBody returns the sentence of the cover letter that presents the
// report.
func coverBody(l Letter) string {
	s := "Veuillez trouver ci-joint "
	title := strings.TrimSpace(l.DocumentTitle)
	switch {
	case l.Kind == KindPatient && title != "":
		s += "votre document « " + title + " »"
	case l.Kind == KindPatient:
		s += "votre document"
	case title != "":
		s += "le document « " + title + " »"
	default:
		s += "un document"
	}
	if p := strings.TrimSpace(l.Patient); p != "" && l.Kind != KindPatient {
		s += " concernant votre patient(e) " + p
	}
	if sv := strings.TrimSpace(l.Service); sv != "" {
		s += ", transmis par le service " + sv
	}
	return s + "."
}

// bullet matches the marker of a list item of cda.Text, after its indent.
var bullet = regexp.MustCompile(`^(• |[0-9]+\. )`)

// reportText typesets the sections of l.ReportText on new pages.
func (d *document) reportText(l Letter) {
	d.pdf.AddPage()
	d.pdf.SetXY(marginLeft, 18)
	if t := strings.TrimSpace(l.DocumentTitle); t != "" {
		d.font("B", 14)
		d.pdf.MultiCell(textWidth, 7, d.s(t), "", "L", false)
	}
	if p := strings.TrimSpace(l.Patient); p != "" {
		d.font("", 10)
		d.pdf.SetX(marginLeft)
		d.pdf.MultiCell(textWidth, bodyLead, d.s(p), "", "L", false)
	}
	d.pdf.SetLineWidth(0.3)
	d.pdf.Line(marginLeft, d.pdf.GetY()+2, PageWidth-marginRight, d.pdf.GetY()+2)
	d.pdf.SetY(d.pdf.GetY() + 6)

	for _, s := range l.ReportText {
		if s.Title != "" {
			// Keep a title with the first lines of its section.
			if d.pdf.GetY() > PageHeight-bottomMargin-20 {
				d.pdf.AddPage()
			}
			size := 12.0
			if s.Depth > 0 {
				size = 10.5
			}
			d.pdf.Ln(2)
			d.font("B", size)
			d.pdf.SetX(marginLeft)
			d.pdf.MultiCell(textWidth, size*ptToMM*1.4, d.s(s.Title), "", "L", false)
			d.pdf.Ln(1)
		}
		d.font("", 10)
		for _, p := range s.Paragraphs {
			trimmed := strings.TrimLeft(p, " ")
			indent := float64(len(p)-len(trimmed)) / 2 * 5
			x := marginLeft + indent
			if m := bullet.FindString(trimmed); m != "" {
				mark := d.s(m)
				w := max(d.pdf.GetStringWidth(mark)+1, 5)
				d.pdf.SetX(x)
				d.pdf.CellFormat(w, bodyLead, mark, "", 0, "L", false, 0, "")
				x += w
				trimmed = strings.TrimPrefix(trimmed, m)
			}
			d.pdf.SetX(x)
			d.pdf.MultiCell(PageWidth-marginRight-x, bodyLead, d.s(trimmed), "", "L", false)
			d.pdf.Ln(1)
		}
	}
}
