package correspondents

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files of the extraction and whitelist parsers in testdata")

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run %s -update to create it", t.Name())
	require.Equal(t, string(want), string(got))
}

var headerLine = strings.Join(ExtractionHeader(), "|")

// row returns a 31-field row with the given fields set.
func row(set map[int]string) string {
	fields := make([]string, extractionColumns)
	for i, v := range set {
		fields[i] = v
	}
	return strings.Join(fields, "|")
}

// fullRow is a row with every column filled.
var fullRow = row(map[int]string{
	colBoxType: "PER", colAddress: "jean.martin@medecin-demo.mssante.fr",
	colPPIDType: "8", colPPID: "99900000001", colNationalID: "899900000001",
	colStructureIDType: "3", colStructureID: "99900000000017", colService: "Médecine interne",
	colCivility: "DR", colLastName: "MARTIN", colFirstName: "Jean",
	colProfessionCategory: "C", colProfessionCategoryLabel: "Civil",
	colProfessionCode: "10", colProfessionLabel: "Médecin",
	colSkillCode: "SM26", colSkillLabel: "Qualifié en Médecine Générale",
	colDematerialised: "true", colOrgName: "CABINET MEDICAL DEMO", colBrand: "CABINET DEMO",
	colL2Location: "BATIMENT A", colL3Distribution: "BP 12", colL4Number: "12", colL4NumberSuffix: "B",
	colL4StreetType: "R", colL4StreetName: "DE LA DEMO", colL5Place: "LIEU-DIT LES ESSAIS",
	colL6Routing: "75002 PARIS", colPostalCode: "75002", colDepartment: "75", colCountry: "FRANCE",
})

// fullEntry is fullRow read.
var fullEntry = Entry{
	BoxType: "PER", Address: "jean.martin@medecin-demo.mssante.fr",
	PPIDType: "8", PPID: "99900000001", NationalID: "899900000001",
	StructureIDType: "3", StructureID: "99900000000017", Service: "Médecine interne",
	Civility: "DR", LastName: "MARTIN", FirstName: "Jean",
	ProfessionCategory: "C", ProfessionCategoryLabel: "Civil",
	ProfessionCode: "10", ProfessionLabel: "Médecin",
	SkillCode: "SM26", SkillLabel: "Qualifié en Médecine Générale",
	Dematerialised: true, OrgName: "CABINET MEDICAL DEMO", Brand: "CABINET DEMO",
	PostalAddress: PostalAddress{
		Lines:       []string{"BATIMENT A", "BP 12", "12 B R DE LA DEMO", "LIEU-DIT LES ESSAIS"},
		RoutingLine: "75002 PARIS", PostalCode: "75002", City: "PARIS", Department: "75", Country: "FRANCE",
	},
}

// result is what Next returned for one line, for golden files.
type result struct {
	Line  int    `json:"line"`
	Entry *Entry `json:"entry,omitempty"`
	Error string `json:"error,omitempty"`
}

// readAll reads entries until io.EOF, collecting line errors; any other error fails the test.
func readAll(t *testing.T, r *ExtractionReader) []result {
	t.Helper()
	var out []result
	for range 1_000_000 {
		e, err := r.Next()
		switch {
		case errors.Is(err, io.EOF):
			return out
		case err == nil:
			out = append(out, result{Line: r.Line(), Entry: &e})
		default:
			var le *LineError
			require.ErrorAs(t, err, &le)
			require.Equal(t, r.Line(), le.Line)
			out = append(out, result{Line: le.Line, Error: err.Error()})
		}
	}
	t.Fatal("no io.EOF after a million calls")
	return nil
}

func TestExtractionHeader(t *testing.T) {
	t.Parallel()

	h := ExtractionHeader()
	require.Len(t, h, 31)
	require.Equal(t, "Type de BAL", h[0])
	require.Equal(t, "Dématérialisation", h[colDematerialised])
	require.Equal(t, "Pays structure BAL", h[30])
	h[0] = "changed"
	require.Equal(t, "Type de BAL", ExtractionHeader()[0], "ExtractionHeader must return a copy")
}

func TestNewExtractionReaderHeader(t *testing.T) {
	t.Parallel()

	replace := func(col int, name string) string {
		h := ExtractionHeader()
		h[col] = name
		return strings.Join(h, "|")
	}
	tests := []struct {
		name    string
		input   string
		wantErr error // Compared with require.Equal for a *HeaderError, errors.Is otherwise.
	}{
		{name: "exact", input: headerLine + "\n"},
		{name: "no end of line", input: headerLine},
		{name: "BOM", input: "\ufeff" + headerLine + "\n"},
		{name: "CRLF", input: headerLine + "\r\n"},
		{name: "trailing pipe", input: headerLine + "|\n"},
		{name: "spaces around names", input: " " + strings.ReplaceAll(headerLine, "|", " |  ") + " \n"},
		{name: "quoted names", input: `"` + strings.ReplaceAll(headerLine, "|", `"|"`) + `"` + "\n"},
		{name: "case and accents", input: replace(colDematerialised, "DEMATERIALISATION") + "\n"},
		{name: "decomposed accents", input: replace(colDematerialised, "De\u0301mate\u0301rialisation") + "\n"},
		{name: "typographic apostrophe", input: replace(colCivility, "Civilité d\u2019exercice") + "\n"},
		{name: "double space", input: replace(colLastName, "Nom  d'exercice") + "\n"},
		{name: "without structure BAL suffix", input: replace(colL6Routing, "L6LIGNEACHEMINEMENT") + "\n"},
		{
			name:    "changed column",
			input:   replace(colDematerialised, "Dématérialisation O/N") + "\n",
			wantErr: &HeaderError{Column: 18, Want: "Dématérialisation", Got: "Dématérialisation O/N"},
		},
		{
			name:    "empty column",
			input:   replace(colBrand, "") + "\n",
			wantErr: &HeaderError{Column: 20, Want: "Enseigne commerciale structure BAL", Got: ""},
		},
		{
			name:    "swapped columns",
			input:   replace(colLastName, "Prénom d'exercice") + "\n",
			wantErr: &HeaderError{Column: 10, Want: "Nom d'exercice", Got: "Prénom d'exercice"},
		},
		{
			name:    "missing last column",
			input:   strings.Join(ExtractionHeader()[:30], "|") + "\n",
			wantErr: &HeaderError{Column: 31, Want: "Pays structure BAL", Got: ""},
		},
		{
			name:    "extra column",
			input:   headerLine + "|Date de mise à jour\n",
			wantErr: &HeaderError{Column: 32, Want: "", Got: "Date de mise à jour"},
		},
		{
			name:    "two trailing pipes",
			input:   headerLine + "||\n",
			wantErr: &HeaderError{Column: 32, Want: "", Got: ""},
		},
		{
			name:    "old layout with different names",
			input:   strings.ReplaceAll(headerLine, "structure BAL", "structure") + "\n",
			wantErr: &HeaderError{Column: 19, Want: "Raison Sociale structure BAL", Got: "Raison Sociale structure"},
		},
		{
			name:    "Latin-1",
			input:   strings.ReplaceAll(headerLine, "é", "\xe9") + "\n",
			wantErr: &HeaderError{Column: 9, Want: "Civilité d'exercice", Got: "Civilit\xe9 d'exercice"},
		},
		{
			name:    "comma separated",
			input:   strings.ReplaceAll(headerLine, "|", ",") + "\n",
			wantErr: &HeaderError{Column: 1, Want: "Type de BAL", Got: strings.ReplaceAll(headerLine, "|", ",")},
		},
		{name: "empty input", input: "", wantErr: io.ErrUnexpectedEOF},
		{name: "header too long", input: strings.Repeat("x", MaxLineSize+1) + "\n", wantErr: ErrLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			r, err := NewExtractionReader(strings.NewReader(tt.input))
			if tt.wantErr == nil {
				require.NoError(t, err)
				require.Equal(t, 1, r.Line())
				_, err = r.Next()
				require.ErrorIs(t, err, io.EOF)
				return
			}
			require.Nil(t, r)
			var want *HeaderError
			if errors.As(tt.wantErr, &want) {
				var got *HeaderError
				require.ErrorAs(t, err, &got)
				require.Equal(t, want, got)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
		})
	}
}

func TestHeaderErrorMessage(t *testing.T) {
	t.Parallel()

	require.Equal(t, `extraction header: column 18: want "Dématérialisation", got "Demat"`,
		(&HeaderError{Column: 18, Want: "Dématérialisation", Got: "Demat"}).Error())
	require.Equal(t, `extraction header: column 31: want "Pays structure BAL", got nothing`,
		(&HeaderError{Column: 31, Want: "Pays structure BAL"}).Error())
	require.Equal(t, `extraction header: column 32: unexpected extra column "X"`,
		(&HeaderError{Column: 32, Got: "X"}).Error())
}

func TestExtractionReaderRow(t *testing.T) {
	t.Parallel()

	with := func(set map[int]string) string {
		fields := strings.Split(fullRow, "|")
		for i, v := range set {
			fields[i] = v
		}
		return strings.Join(fields, "|")
	}
	entryWith := func(change func(*Entry)) Entry {
		e := fullEntry
		e.PostalAddress.Lines = slices.Clone(e.PostalAddress.Lines)
		change(&e)
		return e
	}
	tests := []struct {
		name       string
		line       string
		want       Entry
		wantColumn string // For an error: the column named, empty for the whole line.
		wantErr    error
	}{
		{name: "full row", line: fullRow, want: fullEntry},
		{name: "trailing pipe", line: fullRow + "|", want: fullEntry},
		{name: "trailing pipe and spaces", line: fullRow + "|  ", want: fullEntry},
		{name: "CRLF", line: fullRow + "\r", want: fullEntry},
		{
			name: "spaces and quotes around fields",
			line: `  "PER"  | " Jean.Martin@Medecin-Demo.MSSante.fr "` + strings.TrimPrefix(fullRow, "PER|jean.martin@medecin-demo.mssante.fr"),
			want: fullEntry,
		},
		{
			name: "non-breaking spaces",
			line: with(map[int]string{colLastName: "\u00a0MARTIN\u00a0"}),
			want: fullEntry,
		},
		{
			name: "lower-case box type",
			line: with(map[int]string{colBoxType: "per"}),
			want: fullEntry,
		},
		{
			name: "ORG box without PP columns",
			line: row(map[int]string{
				colBoxType: "ORG", colAddress: "cardio@clinique-demo.mssante.fr",
				colStructureIDType: "1", colStructureID: "999000025", colService: "Cardiologie",
				colOrgName: "CLINIQUE DEMO DES LILAS", colL4Number: "40", colL4StreetType: "RTE",
				colL4StreetName: "DES LILAS DEMO", colL6Routing: "44000 NANTES", colPostalCode: "44000", colDepartment: "44",
			}),
			want: Entry{
				BoxType: "ORG", Address: "cardio@clinique-demo.mssante.fr",
				StructureIDType: "1", StructureID: "999000025", Service: "Cardiologie",
				OrgName: "CLINIQUE DEMO DES LILAS",
				PostalAddress: PostalAddress{
					Lines:       []string{"40 RTE DES LILAS DEMO"},
					RoutingLine: "44000 NANTES", PostalCode: "44000", City: "NANTES", Department: "44",
				},
			},
		},
		{
			name: "APP box",
			line: with(map[int]string{colBoxType: "APP"}),
			want: entryWith(func(e *Entry) { e.BoxType = "APP" }),
		},
		{
			name: "CAB box",
			line: with(map[int]string{colBoxType: "Cab"}),
			want: entryWith(func(e *Entry) { e.BoxType = "CAB" }),
		},
		{
			name: "address with a Unicode domain",
			line: with(map[int]string{colAddress: "Secretariat@Hôpital-Démo.fr"}),
			want: entryWith(func(e *Entry) { e.Address = "secretariat@xn--hpital-dmo-i7a8j.fr" }),
		},
		{
			name: "address with a trailing dot",
			line: with(map[int]string{colAddress: "jean.martin@medecin-demo.mssante.fr."}),
			want: fullEntry,
		},
		{
			name: "no address lines",
			line: with(map[int]string{colL2Location: "", colL3Distribution: "", colL4Number: "", colL4NumberSuffix: "", colL4StreetType: "", colL4StreetName: "", colL5Place: ""}),
			want: entryWith(func(e *Entry) { e.PostalAddress.Lines = nil }),
		},
		{
			name: "street name only",
			line: with(map[int]string{colL2Location: "", colL3Distribution: "", colL4Number: "", colL4NumberSuffix: "", colL4StreetType: "", colL5Place: ""}),
			want: entryWith(func(e *Entry) { e.PostalAddress.Lines = []string{"DE LA DEMO"} }),
		},
		{
			name: "CEDEX routing line",
			line: with(map[int]string{colL6Routing: "75700 PARIS CEDEX 07", colPostalCode: "75700"}),
			want: entryWith(func(e *Entry) {
				e.PostalAddress.RoutingLine, e.PostalAddress.PostalCode, e.PostalAddress.City = "75700 PARIS CEDEX 07", "75700", "PARIS CEDEX 07"
			}),
		},
		{
			name: "routing line without the postal code",
			line: with(map[int]string{colL6Routing: "PARIS"}),
			want: entryWith(func(e *Entry) { e.PostalAddress.RoutingLine, e.PostalAddress.City = "PARIS", "PARIS" }),
		},
		{
			name: "routing line with another postal code",
			line: with(map[int]string{colL6Routing: "75010 PARIS"}),
			want: entryWith(func(e *Entry) { e.PostalAddress.RoutingLine, e.PostalAddress.City = "75010 PARIS", "75010 PARIS" }),
		},
		{name: "30 columns", line: strings.Join(strings.Split(fullRow, "|")[:30], "|"), wantErr: ErrColumnCount},
		{name: "32 columns", line: fullRow + "|extra", wantErr: ErrColumnCount},
		{name: "33 columns", line: fullRow + "||", wantErr: ErrColumnCount},
		{name: "one column", line: "PER", wantErr: ErrColumnCount},
		{name: "invalid UTF-8", line: with(map[int]string{colLastName: "CAF\xc9"}), wantErr: ErrInvalidEncoding},
		{name: "NUL byte", line: with(map[int]string{colLastName: "MAR\x00TIN"}), wantErr: ErrInvalidEncoding},
		{name: "unknown box type", line: with(map[int]string{colBoxType: "XYZ"}), wantColumn: "Type de BAL", wantErr: ErrInvalidValue},
		{name: "empty box type", line: with(map[int]string{colBoxType: ""}), wantColumn: "Type de BAL", wantErr: ErrInvalidValue},
		{name: "empty address", line: with(map[int]string{colAddress: " "}), wantColumn: "Adresse BAL", wantErr: ErrInvalidValue},
		{name: "address without @", line: with(map[int]string{colAddress: "jean.martin"}), wantColumn: "Adresse BAL", wantErr: ErrInvalidValue},
		{name: "address with two @", line: with(map[int]string{colAddress: "a@b@medecin-demo.mssante.fr"}), wantColumn: "Adresse BAL", wantErr: ErrInvalidValue},
		{name: "address without local part", line: with(map[int]string{colAddress: "@medecin-demo.mssante.fr"}), wantColumn: "Adresse BAL", wantErr: ErrInvalidValue},
		{name: "address with a space", line: with(map[int]string{colAddress: "jean martin@medecin-demo.mssante.fr"}), wantColumn: "Adresse BAL", wantErr: ErrInvalidValue},
		{name: "address with a bad domain", line: with(map[int]string{colAddress: "jean@medecin_demo.mssante.fr"}), wantColumn: "Adresse BAL", wantErr: ErrInvalidDomain},
		{name: "unknown Dématérialisation", line: with(map[int]string{colDematerialised: "peut-être"}), wantColumn: "Dématérialisation", wantErr: ErrInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			r, err := NewExtractionReader(strings.NewReader(headerLine + "\n" + tt.line + "\n"))
			require.NoError(t, err)
			got, err := r.Next()
			require.Equal(t, 2, r.Line())
			if tt.wantErr == nil {
				require.NoError(t, err)
				require.Equal(t, tt.want, got)
			} else {
				require.ErrorIs(t, err, tt.wantErr)
				var le *LineError
				require.ErrorAs(t, err, &le)
				require.Equal(t, 2, le.Line)
				require.Equal(t, tt.wantColumn, le.Column)
				require.Equal(t, Entry{}, got)
			}
			_, err = r.Next()
			require.ErrorIs(t, err, io.EOF)
		})
	}
}

func TestExtractionReaderDematerialised(t *testing.T) {
	t.Parallel()

	tests := []struct {
		value   string
		want    bool
		wantErr bool
	}{
		{value: "O", want: true}, {value: "o", want: true}, {value: "oui", want: true}, {value: "OUI", want: true},
		{value: "1", want: true}, {value: "true", want: true}, {value: "True", want: true}, {value: "VRAI", want: true},
		{value: "N", want: false}, {value: "non", want: false}, {value: "Non", want: false}, {value: "0", want: false},
		{value: "false", want: false}, {value: "FALSE", want: false}, {value: "faux", want: false},
		{value: "", want: false}, {value: "  ", want: false}, {value: ` "O" `, want: true},
		{value: "2", wantErr: true}, {value: "yes", wantErr: true}, {value: "OK", wantErr: true},
		{value: "oui non", wantErr: true}, {value: "-", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			t.Parallel()

			fields := strings.Split(fullRow, "|")
			fields[colDematerialised] = tt.value
			r, err := NewExtractionReader(strings.NewReader(headerLine + "\n" + strings.Join(fields, "|")))
			require.NoError(t, err)
			e, err := r.Next()
			if tt.wantErr {
				require.ErrorIs(t, err, ErrInvalidValue)
				require.ErrorContains(t, err, `extraction line 2: column "Dématérialisation"`)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, e.Dematerialised)
		})
	}
}

func TestExtractionReaderStream(t *testing.T) {
	t.Parallel()

	second := strings.Replace(fullRow, "jean.martin@", "jean.martin2@", 1)
	input := strings.Join([]string{
		headerLine,
		fullRow,
		"",
		"   ",
		"PER|too|short",
		fullRow, // A duplicate is returned as is.
		strings.Replace(fullRow, "|true|", "|bof|", 1),
		second, // The last line has no end of line.
	}, "\r\n")
	r, err := NewExtractionReader(strings.NewReader(input))
	require.NoError(t, err)

	got := readAll(t, r)
	require.Equal(t, []int{2, 5, 6, 7, 8}, lines(got))
	require.Equal(t, fullEntry, *got[0].Entry)
	require.Equal(t, "extraction line 5: wrong number of columns: got 3, want 31", got[1].Error)
	require.Equal(t, fullEntry, *got[2].Entry)
	require.Equal(t, `extraction line 7: column "Dématérialisation": invalid value: "bof" is not a yes/no value`, got[3].Error)
	require.Equal(t, "jean.martin2@medecin-demo.mssante.fr", got[4].Entry.Address)

	for range 3 {
		_, err := r.Next()
		require.ErrorIs(t, err, io.EOF, "io.EOF must be sticky")
	}
}

// lines returns the line numbers of results.
func lines(rs []result) []int {
	var out []int
	for _, r := range rs {
		out = append(out, r.Line)
	}
	return out
}

func TestExtractionReaderLongLine(t *testing.T) {
	t.Parallel()

	long := strings.Repeat("x", MaxLineSize)
	fits := strings.Replace(fullRow, "|MARTIN|", "|"+strings.Repeat("M", MaxLineSize-len(fullRow)-2+len("MARTIN"))+"|", 1)
	require.Len(t, fits+"\r\n", MaxLineSize)

	t.Run("in the middle", func(t *testing.T) {
		t.Parallel()

		r, err := NewExtractionReader(strings.NewReader(headerLine + "\n" + long + "\n" + fits + "\r\n" + fullRow + "\n"))
		require.NoError(t, err)
		_, err = r.Next()
		require.ErrorIs(t, err, ErrLineTooLong)
		var le *LineError
		require.ErrorAs(t, err, &le)
		require.Equal(t, 2, le.Line)
		require.Empty(t, le.Column)

		e, err := r.Next()
		require.NoError(t, err, "a line of exactly MaxLineSize bytes is accepted")
		require.Equal(t, 3, r.Line())
		require.Len(t, e.LastName, MaxLineSize-len(fullRow)-2+len("MARTIN"))

		e, err = r.Next()
		require.NoError(t, err)
		require.Equal(t, 4, r.Line())
		require.Equal(t, fullEntry, e)
		_, err = r.Next()
		require.ErrorIs(t, err, io.EOF)
	})
	t.Run("at the end without end of line", func(t *testing.T) {
		t.Parallel()

		r, err := NewExtractionReader(strings.NewReader(headerLine + "\n" + strings.Repeat(long, 3)))
		require.NoError(t, err)
		_, err = r.Next()
		require.ErrorIs(t, err, ErrLineTooLong)
		require.Equal(t, 2, r.Line())
		_, err = r.Next()
		require.ErrorIs(t, err, io.EOF)
	})
	t.Run("read one byte at a time", func(t *testing.T) {
		t.Parallel()

		input := headerLine + "\n" + long + "\n" + fullRow + "\n"
		r, err := NewExtractionReader(iotest.OneByteReader(strings.NewReader(input)))
		require.NoError(t, err)
		_, err = r.Next()
		require.ErrorIs(t, err, ErrLineTooLong)
		e, err := r.Next()
		require.NoError(t, err)
		require.Equal(t, fullEntry, e)
	})
}

func TestExtractionReaderReadError(t *testing.T) {
	t.Parallel()

	boom := errors.New("disk on fire")
	input := io.MultiReader(strings.NewReader(headerLine+"\n"+fullRow+"\n"), iotest.ErrReader(boom))
	r, err := NewExtractionReader(input)
	require.NoError(t, err)
	e, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, fullEntry, e)
	for range 2 {
		_, err = r.Next()
		require.ErrorIs(t, err, boom, "a read error is returned, and sticky")
		var le *LineError
		require.False(t, errors.As(err, &le), "a read error is not a line error")
	}

	_, err = NewExtractionReader(iotest.ErrReader(boom))
	require.ErrorIs(t, err, boom)
}

func TestExtractionReaderGolden(t *testing.T) {
	t.Parallel()

	f, err := os.Open("testdata/extraction_rows.txt")
	require.NoError(t, err)
	defer f.Close()
	r, err := NewExtractionReader(f)
	require.NoError(t, err)
	got, err := json.MarshalIndent(readAll(t, r), "", "  ")
	require.NoError(t, err)
	checkGolden(t, "testdata/extraction_rows.golden.json", append(got, '\n'))
}

// writeZip writes a zip archive with the given files into dir and returns its path.
func writeZip(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	path := filepath.Join(dir, "Extraction_Correspondance_MSSante_202601150300.zip")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = io.WriteString(w, files[name])
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	return path
}

func TestOpenExtraction(t *testing.T) {
	t.Parallel()

	text := headerLine + "\n" + fullRow + "\n"
	tests := []struct {
		name    string
		create  func(t *testing.T, dir string) string
		wantErr string // Empty if the extraction must open and read as text.
	}{
		{
			name: "text file",
			create: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "Extraction_Correspondance_MSSante.txt")
				require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
				return path
			},
		},
		{
			name: "zip with one text file",
			create: func(t *testing.T, dir string) string {
				return writeZip(t, dir, map[string]string{"Extraction_Correspondance_MSSante_202601150300.txt": text})
			},
		},
		{
			name: "zip with a directory and other files",
			create: func(t *testing.T, dir string) string {
				return writeZip(t, dir, map[string]string{"extraction/": "", "extraction/LISEZMOI.pdf": "%PDF", "extraction/Extraction.TXT": text})
			},
		},
		{
			name: "zip under a .txt name",
			create: func(t *testing.T, dir string) string {
				path := writeZip(t, dir, map[string]string{"Extraction.txt": text})
				renamed := filepath.Join(dir, "renamed.txt")
				require.NoError(t, os.Rename(path, renamed))
				return renamed
			},
		},
		{
			name: "zip with two text files",
			create: func(t *testing.T, dir string) string {
				return writeZip(t, dir, map[string]string{"a.txt": text, "b.txt": text})
			},
			wantErr: "zip archive holds 2 .txt files, want 1",
		},
		{
			name: "zip without a text file",
			create: func(t *testing.T, dir string) string {
				return writeZip(t, dir, map[string]string{"Extraction.csv": text})
			},
			wantErr: "zip archive holds 0 .txt files, want 1",
		},
		{
			name: "empty zip",
			create: func(t *testing.T, dir string) string {
				return writeZip(t, dir, nil)
			},
			wantErr: "zip archive holds 0 .txt files, want 1",
		},
		{
			name: "corrupt zip",
			create: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "corrupt.zip")
				require.NoError(t, os.WriteFile(path, []byte("PK\x03\x04 not really a zip"), 0o644))
				return path
			},
			wantErr: "zip: not a valid zip file",
		},
		{
			name: "missing file",
			create: func(t *testing.T, dir string) string {
				return filepath.Join(dir, "missing.zip")
			},
			wantErr: "no such file or directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			rc, err := OpenExtraction(tt.create(t, t.TempDir()))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Nil(t, rc)
				return
			}
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.Equal(t, text, string(got))
			require.NoError(t, rc.Close())
		})
	}
}

func TestOpenExtractionEmptyFile(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "empty.txt")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	rc, err := OpenExtraction(path)
	require.NoError(t, err)
	defer rc.Close()
	_, err = NewExtractionReader(rc)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestOpenExtractionZipChecksum(t *testing.T) {
	t.Parallel()

	// A stored (uncompressed) entry altered after archiving: reading must
	// fail on the checksum instead of returning altered data silently.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "Extraction.txt", Method: zip.Store})
	require.NoError(t, err)
	_, err = io.WriteString(w, headerLine+"\n"+fullRow+"\n")
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	data := bytes.Replace(buf.Bytes(), []byte("MARTIN"), []byte("MARTYN"), 1)
	path := filepath.Join(t.TempDir(), "altered.zip")
	require.NoError(t, os.WriteFile(path, data, 0o644))

	rc, err := OpenExtraction(path)
	require.NoError(t, err)
	defer rc.Close()
	_, err = io.ReadAll(rc)
	require.ErrorIs(t, err, zip.ErrChecksum)
}

// demoDir holds the demo data of the project.
const demoDir = "../testdata/demo"

func TestDemoData(t *testing.T) {
	t.Parallel()

	wf, err := os.Open(filepath.Join(demoDir, "liste_blanche.xml"))
	require.NoError(t, err)
	defer wf.Close()
	domains, err := ParseWhitelist(wf)
	require.NoError(t, err)
	require.Equal(t, []string{
		"ch-demo.mssante.fr",
		"clinique-demo.mssante.fr",
		"infirmier-demo.mssante.fr",
		"medecin-demo.mssante.fr",
		"pharmacien-demo.mssante.fr",
		"sagefemme-demo.mssante.fr",
		"xn--hpital-dmo-i7a8j.fr",
	}, domains)

	text, err := os.ReadFile(filepath.Join(demoDir, "Extraction_Correspondance_MSSante.txt"))
	require.NoError(t, err)
	zipped := writeZip(t, t.TempDir(), map[string]string{"Extraction_Correspondance_MSSante_202601150300.txt": string(text)})

	for _, path := range []string{filepath.Join(demoDir, "Extraction_Correspondance_MSSante.txt"), zipped} {
		rc, err := OpenExtraction(path)
		require.NoError(t, err)
		r, err := NewExtractionReader(rc)
		require.NoError(t, err)
		results := readAll(t, r)
		require.NoError(t, rc.Close())

		var addresses, outside, demat []string
		boxes := map[string]int{}
		for _, res := range results {
			require.Empty(t, res.Error, "line %d", res.Line)
			e := res.Entry
			addresses = append(addresses, e.Address)
			boxes[e.BoxType]++
			if _, domain, _ := strings.Cut(e.Address, "@"); !slices.Contains(domains, domain) {
				outside = append(outside, e.Address)
			}
			if e.Dematerialised {
				demat = append(demat, e.Address)
			}
		}
		require.Len(t, results, 12)
		require.Equal(t, map[string]int{"PER": 10, "ORG": 2}, boxes)
		require.Equal(t, []string{"marc.petit@messagerie-demo.example"}, outside)
		require.Equal(t, []string{
			"jean.martin@medecin-demo.mssante.fr",
			"paul.leroux@medecin-demo.mssante.fr",
			"jean.martin@medecin-demo.mssante.fr",
			"luc.moreau@infirmier-demo.mssante.fr",
			"marc.petit@messagerie-demo.example",
			"julie.roux@medecin-demo.mssante.fr",
		}, demat)
		require.Equal(t, 2, countOf(addresses, "jean.martin@medecin-demo.mssante.fr"), "the duplicate row")
		require.Contains(t, addresses, "jean.martin@ch-demo.mssante.fr", "the second mailbox of MARTIN Jean")
		require.Contains(t, addresses, "secretariat.cardio@xn--hpital-dmo-i7a8j.fr")
		require.Equal(t, "0999000001", results[8].Entry.NationalID)
		require.Equal(t, "21", results[4].Entry.ProfessionCode)
	}
}

// countOf counts the occurrences of v in s.
func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

func FuzzExtractionReader(f *testing.F) {
	for _, path := range []string{"testdata/extraction_rows.txt", filepath.Join(demoDir, "Extraction_Correspondance_MSSante.txt")} {
		data, err := os.ReadFile(path)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte(headerLine + "\n" + fullRow + "|\r\n\n" + strings.Replace(fullRow, "true", "x", 1)))
	f.Add([]byte(headerLine))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewExtractionReader(bytes.NewReader(data))
		if err != nil {
			var he *HeaderError
			if !errors.As(err, &he) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrLineTooLong) {
				t.Fatalf("unexpected header error: %v", err)
			}
			return
		}
		last := r.Line()
		for {
			e, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if r.Line() <= last {
				t.Fatalf("line number went from %d to %d", last, r.Line())
			}
			last = r.Line()
			if err != nil {
				var le *LineError
				if !errors.As(err, &le) || le.Line != r.Line() {
					t.Fatalf("not a *LineError for line %d: %v", r.Line(), err)
				}
				continue
			}
			if !slices.Contains([]string{"PER", "ORG", "APP", "CAB"}, e.BoxType) {
				t.Fatalf("box type %q", e.BoxType)
			}
			local, domain, ok := strings.Cut(e.Address, "@")
			if !ok || local == "" || local != strings.ToLower(local) {
				t.Fatalf("address %q", e.Address)
			}
			if d, err := NormaliseDomain(domain); err != nil || d != domain {
				t.Fatalf("address domain %q not normalised: %q, %v", domain, d, err)
			}
		}
	})
}
