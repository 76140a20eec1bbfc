// Package paper owns the letters the service prints and posts when a
// report cannot go by MSSanté secure email, or goes on paper too: a French
// cover letter on A4 whose address block (postal.AddressBlock, the NF Z
// 10-011 postal norm) shows through the window of a DL envelope once the page is
// folded in three (Window), followed by the report, the PDF a document
// carries or the narrative of a structured CDA typeset (Render); the cover
// letter says of MSSanté what fits why the letter goes on paper (Kind: an
// invitation to open a mailbox only for a recipient who has none). It also
// owns the summary sheet of a batch of letters (RenderSummary) and the PDF
// of a batch (Merge).
//
// The package only works on values it is given: it never reads files, the
// network or the environment. PDFs are written with codeberg.org/go-pdf/fpdf
// in its core fonts (Helvetica, in Windows-1252: French accents, œ, « »
// and € print, other characters are replaced) and read, merged and stamped
// with github.com/pdfcpu/pdfcpu, in memory, its configuration directory
// disabled.
package paper
