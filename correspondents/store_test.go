package correspondents_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/correspondents/internal/gen"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
)

const (
	demoExtraction = "../testdata/demo/Extraction_Correspondance_MSSante.txt"
	demoWhitelist  = "../testdata/demo/liste_blanche.xml"
)

type testBundle struct {
	ctx   context.Context
	pool  *pgxpool.Pool
	store *correspondents.Store
}

// setup returns a store on a fresh database loaded with the demo directory and whitelist.
func setup(t *testing.T) *testBundle {
	t.Helper()
	b := setupEmpty(t)
	b.importFile(t, demoExtraction)
	_, err := b.store.ImportWhitelistFrom(b.ctx, demoWhitelist, correspondents.ImportOptions{})
	require.NoError(t, err)
	return b
}

// setupEmpty returns a store on a fresh database.
func setupEmpty(t *testing.T) *testBundle {
	t.Helper()
	pool := pgtest.NewPool(t)
	store := correspondents.NewStore(pool)
	return &testBundle{ctx: context.Background(), pool: pool, store: store}
}

// importFile imports the extraction at path, which must succeed.
func (b *testBundle) importFile(t *testing.T, path string) correspondents.ImportSummary {
	t.Helper()
	sum, err := b.store.ImportDirectoryFrom(b.ctx, path, correspondents.ImportOptions{})
	require.NoError(t, err)
	return sum
}

// importReader imports the extraction read from r, which must succeed.
func (b *testBundle) importReader(t *testing.T, r io.Reader) correspondents.ImportSummary {
	t.Helper()
	er, err := correspondents.NewExtractionReader(r)
	require.NoError(t, err)
	sum, err := b.store.ImportDirectory(b.ctx, "test", er, correspondents.ImportOptions{})
	require.NoError(t, err)
	return sum
}

// directory returns every row of the directory, each as JSON, in key order.
func (b *testBundle) directory(t *testing.T) []string {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, `SELECT to_jsonb(d)::text FROM directory_entries d ORDER BY address, national_id`)
	require.NoError(t, err)
	all, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return all
}

// trustSpace returns the domains of the trust space, sorted.
func (b *testBundle) trustSpace(t *testing.T) []string {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, `SELECT domain FROM trust_domains ORDER BY domain`)
	require.NoError(t, err)
	all, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return all
}

// importRecord is a row of directory_imports.
type importRecord struct {
	Kind, Source, Trigger, Status, Error   string
	Rows, Skipped, Added, Removed, Changed int64
}

// imports returns the import attempts recorded, oldest first.
func (b *testBundle) imports(t *testing.T) []importRecord {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, `SELECT kind, source, trigger, status, error, rows, skipped, added, removed, changed
		FROM directory_imports ORDER BY id`)
	require.NoError(t, err)
	all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[importRecord])
	require.NoError(t, err)
	return all
}

// lastImport returns the last import attempt recorded.
func (b *testBundle) lastImport(t *testing.T) importRecord {
	t.Helper()
	all := b.imports(t)
	require.NotEmpty(t, all)
	return all[len(all)-1]
}

// requireFailedImport checks that err, returned by an import from source,
// was recorded as the last attempt, with its text.
func (b *testBundle) requireFailedImport(t *testing.T, kind, source string, err error) importRecord {
	t.Helper()
	require.Error(t, err)
	last := b.lastImport(t)
	require.Equal(t, "failed", last.Status)
	require.Equal(t, kind, last.Kind)
	require.Equal(t, source, last.Source)
	require.Equal(t, "import "+kind+" from "+source+": "+last.Error, err.Error(), "the record holds the error")
	return last
}

// genLines returns the header and the rows of a generated extraction.
func genLines(t *testing.T, cfg gen.Config) (header string, rows []string) {
	t.Helper()
	var buf bytes.Buffer
	_, err := gen.Write(&buf, cfg)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	return lines[0], lines[1:]
}

// writeExtraction writes the header and rows to a file and returns its path.
func writeExtraction(t *testing.T, header string, rows []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Extraction_Correspondance_MSSante.txt")
	require.NoError(t, os.WriteFile(path, []byte(header+"\n"+strings.Join(rows, "\n")+"\n"), 0o644))
	return path
}

// thirtyColumns returns the first 30 columns of a row: an invalid row.
func thirtyColumns(row string) string { return strings.Join(strings.Split(row, "|")[:30], "|") }

func TestImportDirectory(t *testing.T) {
	t.Parallel()
	b := setupEmpty(t)

	raw, err := os.ReadFile(demoExtraction)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	header, rows := lines[0], lines[1:]

	first := b.importReader(t, strings.NewReader(string(raw)))
	require.Equal(t, int64(len(rows)), first.Rows+first.Skipped)
	require.Equal(t, first.Added, int64(len(b.directory(t))), "every distinct row added, duplicates folded")
	require.Less(t, first.Added, first.Rows, "the demo file holds a duplicate row")
	require.Zero(t, first.Removed)
	require.Equal(t, importRecord{Kind: "directory", Source: "test", Trigger: "command", Status: "succeeded",
		Rows: first.Rows, Added: first.Added}, b.lastImport(t))

	// Again, without the second row (a unique one) and with the third one's name changed.
	changed := strings.Replace(rows[2], "|DUPONT-DEMO|", "|DUPONT-DEMO-DURAND|", 1)
	require.NotEqual(t, rows[2], changed, "the demo file's third row is DUPONT-DEMO")
	next := append([]string{header, rows[0], changed}, rows[3:]...)
	second := b.importReader(t, strings.NewReader(strings.Join(next, "\n")+"\n"))
	require.Equal(t, int64(0), second.Added)
	require.Equal(t, int64(1), second.Changed)
	require.Equal(t, int64(1), second.Removed)

	known, err := b.store.Know(b.ctx, []correspondents.Recipient{{NationalID: "899900000002"}})
	require.NoError(t, err)
	boxes := known.Mailboxes("899900000002", "")
	require.Len(t, boxes, 1)
	require.Equal(t, "DUPONT-DEMO-DURAND", boxes[0].LastName)

	// The same file once more changes nothing.
	third := b.importReader(t, strings.NewReader(strings.Join(next, "\n")+"\n"))
	require.Equal(t, correspondents.ImportSummary{Rows: second.Rows}, third)
}

func TestImportDirectoryKeepsOldOnReadError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	before := b.directory(t)

	raw, err := os.ReadFile(demoExtraction)
	require.NoError(t, err)
	er, err := correspondents.NewExtractionReader(&failingReader{data: raw[:len(raw)/2]})
	require.NoError(t, err)
	_, err = b.store.ImportDirectory(b.ctx, "broken", er, correspondents.ImportOptions{})
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.Equal(t, before, b.directory(t), "a failed import keeps the previous directory")
	last := b.requireFailedImport(t, "directory", "broken", err)
	require.Contains(t, last.Error, "read extraction")
}

// failingReader returns data then a read error, like a dropped download.
type failingReader struct{ data []byte }

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, os.ErrDeadlineExceeded
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestImportDirectoryRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file    string
		wantErr string
		check   func(t *testing.T, err error)
	}{
		{
			file:    "empty.txt",
			wantErr: "extraction header: unexpected EOF",
			check:   func(t *testing.T, err error) { require.ErrorIs(t, err, io.ErrUnexpectedEOF) },
		},
		{
			file:    "header_only.txt",
			wantErr: "nothing to import: no row after the header",
			check:   func(t *testing.T, err error) { require.ErrorIs(t, err, correspondents.ErrEmpty) },
		},
		{
			file:    "wrong_header.txt",
			wantErr: `extraction header: column 10: want "Nom d'exercice", got "Nom"`,
			check: func(t *testing.T, err error) {
				he, ok := errors.AsType[*correspondents.HeaderError](err)
				require.True(t, ok)
				require.Equal(t, 10, he.Column)
			},
		},
		{
			file:    "wrong_columns.txt",
			wantErr: "3 of 3 rows invalid (no valid row), first: extraction line 2: wrong number of columns: got 30, want 31",
			check: func(t *testing.T, err error) {
				ie, ok := errors.AsType[*correspondents.InvalidRowsError](err)
				require.True(t, ok)
				require.Equal(t, int64(3), ie.Invalid)
				require.ErrorIs(t, ie.First, correspondents.ErrColumnCount)
			},
		},
		{
			file:    "latin1_rows.txt",
			wantErr: "3 of 3 rows invalid (no valid row), first: extraction line 2: invalid UTF-8 or NUL byte",
			check: func(t *testing.T, err error) {
				ie, ok := errors.AsType[*correspondents.InvalidRowsError](err)
				require.True(t, ok)
				require.ErrorIs(t, ie.First, correspondents.ErrInvalidEncoding)
			},
		},
		{
			file:    "mostly_invalid.txt",
			wantErr: "3 of 4 rows invalid (over 1 %), first: extraction line 3: wrong number of columns: got 30, want 31",
			check: func(t *testing.T, err error) {
				ie, ok := errors.AsType[*correspondents.InvalidRowsError](err)
				require.True(t, ok)
				require.Equal(t, correspondents.InvalidRowsError{Invalid: 3, Read: 4, First: ie.First}, *ie)
				require.Equal(t, 3, ie.First.Line)
			},
		},
		{
			file:    "missing.txt",
			wantErr: "no such file or directory",
			check:   func(t *testing.T, err error) { require.ErrorIs(t, err, os.ErrNotExist) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			before, attempts := b.directory(t), len(b.imports(t))
			path := filepath.Join("testdata", "import", tt.file)

			_, err := b.store.ImportDirectoryFrom(b.ctx, path, correspondents.ImportOptions{})
			require.ErrorContains(t, err, tt.wantErr)
			tt.check(t, err)
			require.Equal(t, before, b.directory(t), "a failed import keeps the previous directory")
			require.Len(t, b.imports(t), attempts+1)
			b.requireFailedImport(t, "directory", path, err)
		})
	}
}

func TestImportDirectoryInvalidRowsThreshold(t *testing.T) {
	t.Parallel()
	header, rows := genLines(t, gen.Config{Rows: 200, Seed: 1})
	// with returns rows[:valid] with bad rows inserted at even intervals.
	with := func(valid, bad int) []string {
		out := append([]string(nil), rows[:valid]...)
		for i := range bad {
			at := (i + 1) * len(out) / (bad + 1)
			out = append(out[:at], append([]string{thirtyColumns(out[at])}, out[at:]...)...)
		}
		return out
	}
	tests := []struct {
		name       string
		valid, bad int
		wantErr    string
	}{
		{name: "one bad row among 200", valid: 200, bad: 1},
		{name: "exactly 1 %", valid: 99, bad: 1},
		{name: "over 1 %", valid: 98, bad: 2, wantErr: "2 of 100 rows invalid (over 1 %), first: extraction line 34: wrong number of columns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupEmpty(t)
			path := writeExtraction(t, header, with(tt.valid, tt.bad))
			sum, err := b.store.ImportDirectoryFrom(b.ctx, path, correspondents.ImportOptions{})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				b.requireFailedImport(t, "directory", path, err)
				require.Empty(t, b.directory(t))
				return
			}
			require.NoError(t, err)
			require.Equal(t, int64(tt.valid), sum.Rows)
			require.Equal(t, int64(tt.bad), sum.Skipped)
			require.Equal(t, int64(len(b.directory(t))), sum.Added)
			last := b.lastImport(t)
			require.Equal(t, "succeeded", last.Status)
			require.Equal(t, int64(tt.bad), last.Skipped)
		})
	}
}

func TestImportDirectoryShrinkGuard(t *testing.T) {
	t.Parallel()
	header, rows := genLines(t, gen.Config{Rows: 100, Seed: 2, DuplicatePercent: -1})
	tests := []struct {
		name    string
		keep    int
		force   bool
		wantErr string
	}{
		{name: "half removed", keep: 50},
		{name: "more than half removed", keep: 49, wantErr: "would remove 51 of the 100 current entries, more than half"},
		{name: "more than half removed, forced", keep: 49, force: true},
		{name: "all but one removed, forced", keep: 1, force: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupEmpty(t)
			require.Equal(t, int64(100), b.importFile(t, writeExtraction(t, header, rows)).Added)
			before := b.directory(t)

			path := writeExtraction(t, header, rows[:tt.keep])
			sum, err := b.store.ImportDirectoryFrom(b.ctx, path, correspondents.ImportOptions{Force: tt.force})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				se, ok := errors.AsType[*correspondents.ShrinkError](err)
				require.True(t, ok)
				require.Equal(t, correspondents.ShrinkError{Current: 100, Removed: int64(100 - tt.keep)}, *se)
				require.Equal(t, before, b.directory(t))
				last := b.requireFailedImport(t, "directory", path, err)
				require.Equal(t, int64(100-tt.keep), last.Removed, "the record says what would have been removed")
				return
			}
			require.NoError(t, err)
			require.Equal(t, correspondents.ImportSummary{Rows: int64(tt.keep), Removed: int64(100 - tt.keep)}, sum)
			require.Len(t, b.directory(t), tt.keep)
		})
	}
}

func TestImportDirectorySearchColumns(t *testing.T) {
	t.Parallel()
	for _, path := range []string{demoExtraction, "testdata/import/special_chars.txt"} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			b := setupEmpty(t)
			b.importFile(t, path)

			rc, err := correspondents.OpenExtraction(path)
			require.NoError(t, err)
			defer rc.Close()
			r, err := correspondents.NewExtractionReader(rc)
			require.NoError(t, err)
			n := 0
			for {
				e, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				n++
				want := searchColumns{Specialty: e.SkillLabel, ProfessionCode: e.ProfessionCode,
					SearchCity: correspondents.SearchKey(e.PostalAddress.City), SamePostal: true}
				if e.PPIDType == "8" {
					want.RPPS = e.PPID
				}
				if e.LastName != "" {
					want.SearchName = correspondents.SearchKey(e.LastName + " " + e.FirstName)
				} else {
					want.SearchName = correspondents.SearchKey(e.OrgName + " " + e.Service)
				}
				postal, err := json.Marshal(e.PostalAddress)
				require.NoError(t, err)
				require.Equal(t, want, b.searchColumns(t, e.Address, e.NationalID, postal), "line %d", r.Line())
			}
			require.NotZero(t, n)
		})
	}

	special := "testdata/import/special_chars.txt"
	tests := []struct {
		file, address, nationalID string
		want                      searchColumns
	}{
		{demoExtraction, "jean.martin@medecin-demo.mssante.fr", "899900000001", searchColumns{RPPS: "99900000001",
			ProfessionCode: "10", Specialty: "Qualifié en Médecine Générale", SearchName: "martin jean", SearchCity: "paris"}},
		{demoExtraction, "luc.moreau@infirmier-demo.mssante.fr", "0999000001", searchColumns{ProfessionCode: "60",
			SearchName: "moreau luc", SearchCity: "toulouse"}},
		{demoExtraction, "sophie.bernard@pharmacien-demo.mssante.fr", "899900000004", searchColumns{RPPS: "99900000004",
			ProfessionCode: "21", SearchName: "bernard sophie", SearchCity: "lille"}},
		{demoExtraction, "cardio@clinique-demo.mssante.fr", "", searchColumns{SearchName: "clinique demo des lilas cardiologie",
			SearchCity: "nantes"}},
		{demoExtraction, "secretariat.cardio@xn--hpital-dmo-i7a8j.fr", "", searchColumns{
			SearchName: "hopital demo de l ete secretariat de cardiologie", SearchCity: "strasbourg cedex"}},
		{special, "quote.backslash@medecin-demo.mssante.fr", "899900000009", searchColumns{RPPS: "99900000009",
			ProfessionCode: "10", Specialty: "Qualifié en Médecine Générale", SearchName: "d almeida leveque zoe",
			SearchCity: "paris cedex 07"}},
	}
	stores := map[string]*testBundle{}
	for _, tt := range tests {
		b, ok := stores[tt.file]
		if !ok {
			b = setupEmpty(t)
			b.importFile(t, tt.file)
			stores[tt.file] = b
		}
		got := b.searchColumns(t, tt.address, tt.nationalID, []byte("{}"))
		got.SamePostal = false
		require.Equal(t, tt.want, got, tt.address)
	}
}

// searchColumns are the columns an import computes from an entry.
type searchColumns struct {
	RPPS, ProfessionCode, Specialty, SearchName, SearchCity string
	SamePostal                                              bool // postal_address equals the JSON given
}

func (b *testBundle) searchColumns(t *testing.T, address, nationalID string, postal []byte) searchColumns {
	t.Helper()
	var c searchColumns
	err := b.pool.QueryRow(b.ctx, `SELECT rpps, profession_code, specialty, search_name, search_city, postal_address = $3::jsonb
		FROM directory_entries WHERE address = $1 AND national_id = $2`, address, nationalID, string(postal)).
		Scan(&c.RPPS, &c.ProfessionCode, &c.Specialty, &c.SearchName, &c.SearchCity, &c.SamePostal)
	require.NoError(t, err, address)
	return c
}

func TestImportWhitelist(t *testing.T) {
	t.Parallel()
	b := setupEmpty(t)
	ctx := b.ctx
	sum, err := b.store.ImportWhitelist(ctx, "a", []string{"a.mssante.fr", "b.mssante.fr"}, correspondents.ImportOptions{})
	require.NoError(t, err)
	require.Equal(t, correspondents.ImportSummary{Rows: 2, Added: 2}, sum)
	sum, err = b.store.ImportWhitelist(ctx, "b", []string{"b.mssante.fr", "c.mssante.fr"},
		correspondents.ImportOptions{Trigger: correspondents.TriggerSchedule})
	require.NoError(t, err)
	require.Equal(t, correspondents.ImportSummary{Rows: 2, Added: 1, Removed: 1}, sum)
	require.Equal(t, importRecord{Kind: "whitelist", Source: "b", Trigger: "schedule", Status: "succeeded",
		Rows: 2, Added: 1, Removed: 1}, b.lastImport(t))

	for domain, want := range map[string]bool{
		"b.mssante.fr":         true,
		"sub.c.mssante.fr":     true,
		"a.mssante.fr":         false,
		"xb.mssante.fr":        false,
		"mssante.fr":           false,
		"c.mssante.fr.example": false,
	} {
		known, err := b.store.Know(ctx, []correspondents.Recipient{{Address: "x@" + domain}})
		require.NoError(t, err)
		require.Equal(t, want, known.Trusted("x@"+domain), domain)
	}
}

func TestImportWhitelistRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		source  string
		domains []string // Imported with ImportWhitelist when source is empty.
		force   bool
		wantErr string
	}{
		{name: "no domain", wantErr: "nothing to import: no domain"},
		{name: "truncated file", source: "testdata/import/whitelist_truncated.xml", wantErr: "whitelist: etree: invalid XML format"},
		{name: "file without Domaine", source: "testdata/import/whitelist_no_domain.xml", wantErr: "whitelist: no Domaine"},
		{name: "missing file", source: "testdata/import/missing.xml", wantErr: "no such file or directory"},
		{name: "shrink", domains: []string{"ch-demo.mssante.fr", "medecin-demo.mssante.fr", "new.mssante.fr"},
			wantErr: "would remove 5 of the 7 current entries, more than half"},
		{name: "shrink forced", domains: []string{"ch-demo.mssante.fr", "medecin-demo.mssante.fr", "new.mssante.fr"}, force: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			before := b.trustSpace(t)
			opts := correspondents.ImportOptions{Force: tt.force}
			var (
				sum    correspondents.ImportSummary
				err    error
				source = tt.source
			)
			if source != "" {
				sum, err = b.store.ImportWhitelistFrom(b.ctx, source, opts)
			} else {
				source = "test"
				sum, err = b.store.ImportWhitelist(b.ctx, source, tt.domains, opts)
			}
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Equal(t, correspondents.ImportSummary{Rows: 3, Added: 1, Removed: 5}, sum)
				require.Equal(t, []string{"ch-demo.mssante.fr", "medecin-demo.mssante.fr", "new.mssante.fr"}, b.trustSpace(t))
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			require.Equal(t, before, b.trustSpace(t), "a failed import keeps the previous trust space")
			b.requireFailedImport(t, "whitelist", source, err)
		})
	}
}

func TestImportTrigger(t *testing.T) {
	t.Parallel()
	b := setupEmpty(t)
	_, err := b.store.ImportWhitelist(b.ctx, "test", []string{"a.mssante.fr"}, correspondents.ImportOptions{Trigger: "cron"})
	require.ErrorContains(t, err, `unknown import trigger "cron"`)
	require.Empty(t, b.imports(t), "nothing recorded: the trigger is a programming error")

	_, err = b.store.ImportDirectoryFrom(b.ctx, demoExtraction, correspondents.ImportOptions{Trigger: correspondents.TriggerAPI})
	require.NoError(t, err)
	require.Equal(t, "api", b.lastImport(t).Trigger)
}

func TestImportFromURL(t *testing.T) {
	t.Parallel()
	demo, err := os.ReadFile(demoExtraction)
	require.NoError(t, err)
	whitelist, err := os.ReadFile(demoWhitelist)
	require.NoError(t, err)
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	w, err := zw.Create("Extraction_Correspondance_MSSante.txt")
	require.NoError(t, err)
	_, err = w.Write(demo)
	require.NoError(t, err)
	require.NoError(t, zw.Close())

	files := map[string][]byte{
		"/Extraction_Correspondance_MSSante.txt": demo,
		"/Extraction_Correspondance_MSSante.zip": zipped.Bytes(),
		"/listeblanchemssante.xml":               whitelist,
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/dropped.txt" {
			// Announces the whole file, sends half of it and hangs up.
			w.Header().Set("Content-Length", "100000")
			_, _ = w.Write(demo[:len(demo)/2])
			return
		}
		data, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	})
	tlsServer := httptest.NewTLSServer(handler)
	t.Cleanup(tlsServer.Close)
	plainServer := httptest.NewServer(handler)
	t.Cleanup(plainServer.Close)

	demoSum := correspondents.ImportSummary{Rows: 12, Added: 11}
	tests := []struct {
		name    string
		kind    string
		url     string
		want    correspondents.ImportSummary
		size    int
		wantErr string
	}{
		{name: "text", kind: "directory", url: tlsServer.URL + "/Extraction_Correspondance_MSSante.txt", want: demoSum, size: len(demo)},
		{name: "zip", kind: "directory", url: tlsServer.URL + "/Extraction_Correspondance_MSSante.zip", want: demoSum, size: zipped.Len()},
		{name: "whitelist", kind: "whitelist", url: tlsServer.URL + "/listeblanchemssante.xml",
			want: correspondents.ImportSummary{Rows: 7, Added: 7}, size: len(whitelist)},
		{name: "not found", kind: "directory", url: tlsServer.URL + "/missing.zip", wantErr: "server answered 404 Not Found"},
		{name: "dropped download", kind: "directory", url: tlsServer.URL + "/dropped.txt", wantErr: "unexpected EOF"},
		{name: "whitelist not found", kind: "whitelist", url: tlsServer.URL + "/missing.xml", wantErr: "server answered 404 Not Found"},
		{name: "http refused", kind: "directory", url: plainServer.URL + "/Extraction_Correspondance_MSSante.txt",
			wantErr: "http:// source refused, use https://"},
		{name: "http whitelist refused", kind: "whitelist", url: plainServer.URL + "/listeblanchemssante.xml",
			wantErr: "http:// source refused, use https://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupEmpty(t)
			var downloaded atomic.Int64
			opts := correspondents.ImportOptions{
				Client:     tlsServer.Client(),
				Downloaded: func(n int64) { downloaded.Store(n) },
			}
			var sum correspondents.ImportSummary
			var err error
			if tt.kind == "whitelist" {
				sum, err = b.store.ImportWhitelistFrom(b.ctx, tt.url, opts)
			} else {
				sum, err = b.store.ImportDirectoryFrom(b.ctx, tt.url, opts)
			}
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				if strings.HasPrefix(tt.url, "http://") {
					require.ErrorIs(t, err, correspondents.ErrInsecureSource)
				}
				b.requireFailedImport(t, tt.kind, tt.url, err)
				require.Empty(t, b.directory(t))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, sum)
			require.Equal(t, int64(tt.size), downloaded.Load(), "the last progress call gives the whole size")
			last := b.lastImport(t)
			require.Equal(t, "succeeded", last.Status)
			require.Equal(t, tt.url, last.Source)
		})
	}
}
