package correspondents

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/mssdispatch/mssdispatch/postal"
)

// The published layout of the Annuaire Santé extraction
// Extraction_Correspondance_MSSante: one header line, then one line per
// MSSanté mailbox, 31 fields separated by '|', UTF-8, no quoting.
//
// Tolerances, where the meaning stays clear:
//   - a UTF-8 byte order mark before the header, "\r\n" line ends, blank lines;
//   - one trailing '|' on any line (an empty 32nd field);
//   - spaces around fields, and one pair of double quotes around a field;
//   - header names compared without regard to case, accents, repeated spaces
//     or the typographic apostrophe, and with or without the " structure BAL"
//     suffix of columns 19 to 31.
//
// Strict everywhere else: the header must list the 31 columns in this order
// (a *HeaderError names the first one that differs), and a row with another
// number of fields, invalid UTF-8, an unknown box type, an unusable address
// or an unknown Dématérialisation value is reported as a *LineError.
var extractionHeader = [extractionColumns]string{
	"Type de BAL",
	"Adresse BAL",
	"Type Identifiant PP",
	"Identifiant PP",
	"Identification nationale PP",
	"Type identifiant structure",
	"Identification Structure",
	"Service de rattachement",
	"Civilité d'exercice",
	"Nom d'exercice",
	"Prénom d'exercice",
	"Catégorie profession",
	"Libellé de catégorie profession",
	"Code Profession",
	"Libellé Profession",
	"Code savoir-faire",
	"Libellé savoir-faire",
	"Dématérialisation",
	"Raison Sociale structure BAL",
	"Enseigne commerciale structure BAL",
	"L2COMPLEMENTLOCALISATION structure BAL",
	"L3COMPLEMENTDISTRIBUTION structure BAL",
	"L4NUMEROVOIE structure BAL",
	"L4COMPLEMENTNUMEROVOIE structure BAL",
	"NL4TYPEVOIE structure BAL",
	"L4LIBELLEVOIE structure BAL",
	"L5LIEUDITMENTION structure BAL",
	"L6LIGNEACHEMINEMENT structure BAL",
	"Code postal structure BAL",
	"Département structure BAL",
	"Pays structure BAL",
}

// Positions of the columns in extractionHeader.
const (
	colBoxType = iota
	colAddress
	colPPIDType
	colPPID
	colNationalID
	colStructureIDType
	colStructureID
	colService
	colCivility
	colLastName
	colFirstName
	colProfessionCategory
	colProfessionCategoryLabel
	colProfessionCode
	colProfessionLabel
	colSkillCode
	colSkillLabel
	colDematerialised
	colOrgName
	colBrand
	colL2Location
	colL3Distribution
	colL4Number
	colL4NumberSuffix
	colL4StreetType
	colL4StreetName
	colL5Place
	colL6Routing
	colPostalCode
	colDepartment
	colCountry
	extractionColumns
)

// MaxLineSize is the longest line, end of line included, that an
// ExtractionReader accepts before reporting ErrLineTooLong.
const MaxLineSize = 64 << 10

// ErrColumnCount is wrapped by a *LineError for a row that does not have 31 fields.
var ErrColumnCount = errors.New("wrong number of columns")

// ErrLineTooLong is wrapped by a *LineError for a line longer than MaxLineSize.
var ErrLineTooLong = errors.New("line too long")

// ErrInvalidEncoding is wrapped by a *LineError for a line that is not valid UTF-8 or holds a NUL byte.
var ErrInvalidEncoding = errors.New("invalid UTF-8 or NUL byte")

// ErrInvalidValue is wrapped by a *LineError for a field whose value cannot be used.
var ErrInvalidValue = errors.New("invalid value")

// Entry is one row of the extraction: one MSSanté mailbox.
type Entry struct {
	BoxType                 string // PER, ORG, APP or CAB, upper-cased.
	Address                 string // Lower-cased and trimmed; the domain is in its ASCII form (see NormaliseDomain).
	PPIDType                string // "8" for RPPS, "0" for ADELI, empty for a structure box.
	PPID                    string // RPPS (11 digits) or ADELI (9 digits).
	NationalID              string // "8"+RPPS or "0"+ADELI.
	StructureIDType         string
	StructureID             string
	Service                 string
	Civility                string
	LastName                string
	FirstName               string
	ProfessionCategory      string
	ProfessionCategoryLabel string
	ProfessionCode          string
	ProfessionLabel         string
	SkillCode               string
	SkillLabel              string
	Dematerialised          bool // The holder no longer wants on paper what they receive by MSSanté.
	OrgName                 string
	Brand                   string
	PostalAddress           PostalAddress
}

// PostalAddress is the postal address of the structure of a mailbox, built
// from columns 21 to 31 (see postal.PostalAddress).
type PostalAddress = postal.PostalAddress

// HeaderError reports a header that does not match the known layout, naming the first differing column.
type HeaderError struct {
	Column int    // 1-based position of the first differing column.
	Want   string // Expected name; empty for an unexpected extra column.
	Got    string // Name found; empty for a missing or empty column.
}

// Error implements error.
func (e *HeaderError) Error() string {
	switch {
	case e.Want == "":
		return fmt.Sprintf("extraction header: column %d: unexpected extra column %q", e.Column, e.Got)
	case e.Got == "":
		return fmt.Sprintf("extraction header: column %d: want %q, got nothing", e.Column, e.Want)
	default:
		return fmt.Sprintf("extraction header: column %d: want %q, got %q", e.Column, e.Want, e.Got)
	}
}

// LineError reports a row that cannot be read; the reader can go on with the next row.
type LineError struct {
	Line   int    // 1-based line number in the file; the header is line 1.
	Column string // Name of the faulty column, empty when the whole line is at fault.
	Err    error
}

// Error implements error.
func (e *LineError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("extraction line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("extraction line %d: column %q: %v", e.Line, e.Column, e.Err)
}

// Unwrap returns the underlying error.
func (e *LineError) Unwrap() error { return e.Err }

// ExtractionHeader returns the 31 column names of the published header, in order.
func ExtractionHeader() []string {
	return append([]string(nil), extractionHeader[:]...)
}

// ExtractionReader streams entries from an extraction file in constant memory.
type ExtractionReader struct {
	br   *bufio.Reader
	line int
	err  error // Sticky: io.EOF or a read error.
}

// NewExtractionReader reads and checks the header line of an extraction, returning a *HeaderError if it differs from the published layout.
func NewExtractionReader(r io.Reader) (*ExtractionReader, error) {
	er := &ExtractionReader{br: bufio.NewReaderSize(r, MaxLineSize)}
	raw, err := er.readLine()
	switch {
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("extraction header: %w", io.ErrUnexpectedEOF)
	case err != nil:
		return nil, fmt.Errorf("extraction header: %w", err)
	}
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	if err := checkHeader(strings.Split(string(raw), "|")); err != nil {
		return nil, err
	}
	return er, nil
}

// Line returns the number of the last line read; the header is line 1.
func (r *ExtractionReader) Line() int { return r.line }

// Next returns the next entry, io.EOF after the last one, a *LineError for a row that cannot be read (the next call goes on with the following row), or a read error.
func (r *ExtractionReader) Next() (Entry, error) {
	for {
		if r.err != nil {
			return Entry{}, r.err
		}
		raw, err := r.readLine()
		if err != nil {
			if errors.Is(err, ErrLineTooLong) {
				return Entry{}, &LineError{Line: r.line, Err: err}
			}
			r.err = err
			return Entry{}, err
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		return parseEntry(r.line, raw)
	}
}

// readLine returns the next line without its end of line. The slice is only
// valid until the next call. A line longer than MaxLineSize is skipped and
// reported as ErrLineTooLong.
func (r *ExtractionReader) readLine() ([]byte, error) {
	raw, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.br.ReadSlice('\n')
		}
		r.line++
		if err != nil {
			// The long line ended the input (or broke it): report the line,
			// then the end of input.
			r.err = err
		}
		return nil, fmt.Errorf("%w (more than %d bytes)", ErrLineTooLong, MaxLineSize)
	}
	if err != nil && !(errors.Is(err, io.EOF) && len(raw) > 0) {
		return nil, err
	}
	r.line++
	raw = bytes.TrimSuffix(raw, []byte("\n"))
	raw = bytes.TrimSuffix(raw, []byte("\r"))
	return raw, nil
}

// checkHeader compares the header fields with extractionHeader.
func checkHeader(fields []string) error {
	if n := len(fields); n == extractionColumns+1 && foldColumnName(fields[n-1]) == "" {
		fields = fields[:n-1]
	}
	for i := 0; i < max(len(fields), extractionColumns); i++ {
		var want, got string
		if i < extractionColumns {
			want = extractionHeader[i]
		}
		if i < len(fields) {
			got = cleanField(fields[i])
		}
		if want == "" || got == "" || foldColumnName(want) != foldColumnName(got) {
			return &HeaderError{Column: i + 1, Want: want, Got: got}
		}
	}
	return nil
}

// foldColumnName reduces a column name to what carries its meaning: no
// accents, no case, single spaces, a straight apostrophe and no
// " structure BAL" suffix.
func foldColumnName(s string) string {
	s = norm.NFD.String(cleanField(s))
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.Is(unicode.Mn, r):
			return -1
		case r == '\u2019' || r == '\u2018' || r == '`':
			return '\''
		}
		return unicode.ToLower(r)
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	return strings.TrimSuffix(s, " structure bal")
}

// cleanField trims spaces and one pair of surrounding double quotes.
func cleanField(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

// parseEntry turns one non-blank row into an Entry.
func parseEntry(line int, raw []byte) (Entry, error) {
	if !utf8.Valid(raw) || bytes.IndexByte(raw, 0) >= 0 {
		return Entry{}, &LineError{Line: line, Err: ErrInvalidEncoding}
	}
	fields := strings.Split(string(raw), "|")
	if n := len(fields); n == extractionColumns+1 && cleanField(fields[n-1]) == "" {
		fields = fields[:n-1]
	}
	if len(fields) != extractionColumns {
		return Entry{}, &LineError{Line: line, Err: fmt.Errorf("%w: got %d, want %d", ErrColumnCount, len(fields), extractionColumns)}
	}
	f := func(col int) string { return cleanField(fields[col]) }
	bad := func(col int, err error) error {
		return &LineError{Line: line, Column: extractionHeader[col], Err: fmt.Errorf("%w: %w", ErrInvalidValue, err)}
	}

	e := Entry{
		BoxType:                 strings.ToUpper(f(colBoxType)),
		PPIDType:                f(colPPIDType),
		PPID:                    f(colPPID),
		NationalID:              f(colNationalID),
		StructureIDType:         f(colStructureIDType),
		StructureID:             f(colStructureID),
		Service:                 f(colService),
		Civility:                f(colCivility),
		LastName:                f(colLastName),
		FirstName:               f(colFirstName),
		ProfessionCategory:      f(colProfessionCategory),
		ProfessionCategoryLabel: f(colProfessionCategoryLabel),
		ProfessionCode:          f(colProfessionCode),
		ProfessionLabel:         f(colProfessionLabel),
		SkillCode:               f(colSkillCode),
		SkillLabel:              f(colSkillLabel),
		OrgName:                 f(colOrgName),
		Brand:                   f(colBrand),
		PostalAddress:           postalAddress(f),
	}
	switch e.BoxType {
	case "PER", "ORG", "APP", "CAB":
	default:
		return Entry{}, bad(colBoxType, fmt.Errorf("%q is not PER, ORG, APP or CAB", f(colBoxType)))
	}
	addr, err := ParseMailbox(f(colAddress))
	if err != nil {
		return Entry{}, bad(colAddress, err)
	}
	e.Address = addr
	demat, ok := parseDematerialised(f(colDematerialised))
	if !ok {
		return Entry{}, bad(colDematerialised, fmt.Errorf("%q is not a yes/no value", f(colDematerialised)))
	}
	e.Dematerialised = demat
	return e, nil
}

// parseDematerialised reads the Dématérialisation column. The published
// values are not documented: the usual yes/no spellings are accepted in any
// case, and an empty field means the holder has not opted out of paper.
func parseDematerialised(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "o", "oui", "1", "true", "vrai":
		return true, true
	case "n", "non", "0", "false", "faux", "":
		return false, true
	}
	return false, false
}

// postalAddress builds the structure address from the fields of a row.
func postalAddress(f func(int) string) PostalAddress {
	street := strings.Join(nonEmpty(f(colL4Number), f(colL4NumberSuffix), f(colL4StreetType), f(colL4StreetName)), " ")
	pa := PostalAddress{
		Lines:       nonEmpty(f(colL2Location), f(colL3Distribution), street, f(colL5Place)),
		RoutingLine: f(colL6Routing),
		PostalCode:  f(colPostalCode),
		Department:  f(colDepartment),
		Country:     f(colCountry),
	}
	pa.City = pa.RoutingLine
	if pa.PostalCode != "" {
		if city, ok := strings.CutPrefix(pa.RoutingLine, pa.PostalCode+" "); ok {
			pa.City = strings.TrimSpace(city)
		}
	}
	return pa
}

// nonEmpty returns the non-empty strings in order, or nil.
func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// OpenExtraction opens an extraction file: a text file, or a zip archive (the published form) holding exactly one .txt file, recognised by its content rather than its name.
func OpenExtraction(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open extraction: %w", err)
	}
	var magic [4]byte
	n, err := f.ReadAt(magic[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		_ = f.Close()
		return nil, fmt.Errorf("open extraction %s: %w", path, err)
	}
	if s := string(magic[:n]); s != "PK\x03\x04" && s != "PK\x05\x06" {
		return f, nil
	}
	rc, err := openZippedText(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open extraction %s: %w", path, err)
	}
	return &zippedText{ReadCloser: rc, file: f}, nil
}

// openZippedText opens the only .txt file of a zip archive.
func openZippedText(f *os.File) (io.ReadCloser, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return nil, err
	}
	var txt []*zip.File
	for _, zf := range zr.File {
		if !zf.FileInfo().IsDir() && strings.HasSuffix(strings.ToLower(zf.Name), ".txt") {
			txt = append(txt, zf)
		}
	}
	if len(txt) != 1 {
		return nil, fmt.Errorf("zip archive holds %d .txt files, want 1", len(txt))
	}
	return txt[0].Open()
}

// zippedText closes the archive file along with the entry being read.
type zippedText struct {
	io.ReadCloser
	file *os.File
}

// Close closes the entry and the archive file.
func (z *zippedText) Close() error {
	return errors.Join(z.ReadCloser.Close(), z.file.Close())
}
