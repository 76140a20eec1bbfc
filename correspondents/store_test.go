package correspondents_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
)

const demoExtraction = "../testdata/demo/Extraction_Correspondance_MSSante.txt"

type testBundle struct {
	ctx      context.Context
	store    *correspondents.Store
	resolver *correspondents.Resolver
}

// setup returns a store on a fresh database loaded with the demo directory and whitelist.
func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	store := correspondents.NewStore(pgtest.NewPool(t))
	importFile(t, store, demoExtraction)
	f, err := os.Open("../testdata/demo/liste_blanche.xml")
	require.NoError(t, err)
	defer f.Close()
	domains, err := correspondents.ParseWhitelist(f)
	require.NoError(t, err)
	_, err = store.ImportWhitelist(ctx, "liste_blanche.xml", domains)
	require.NoError(t, err)
	return &testBundle{ctx: ctx, store: store, resolver: correspondents.NewResolver(store)}
}

func importFile(t *testing.T, store *correspondents.Store, path string) correspondents.ImportSummary {
	t.Helper()
	rc, err := correspondents.OpenExtraction(path)
	require.NoError(t, err)
	defer rc.Close()
	return importReader(t, store, rc)
}

func importReader(t *testing.T, store *correspondents.Store, r interface{ Read([]byte) (int, error) }) correspondents.ImportSummary {
	t.Helper()
	er, err := correspondents.NewExtractionReader(r)
	require.NoError(t, err)
	sum, err := store.ImportDirectory(context.Background(), "test", er, nil)
	require.NoError(t, err)
	return sum
}

func TestImportDirectory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := correspondents.NewStore(pgtest.NewPool(t))

	raw, err := os.ReadFile(demoExtraction)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	header, rows := lines[0], lines[1:]

	first := importReader(t, store, strings.NewReader(string(raw)))
	require.Equal(t, int64(len(rows)), first.Rows+first.Skipped)
	require.Equal(t, first.Added, countEntries(t, store), "every distinct row added, duplicates folded")
	require.Less(t, first.Added, first.Rows, "the demo file holds a duplicate row")
	require.Zero(t, first.Removed)

	// Again, without the second row (a unique one) and with the third one's name changed.
	changed := strings.Replace(rows[2], "|DUPONT-DEMO|", "|DUPONT-DEMO-DURAND|", 1)
	require.NotEqual(t, rows[2], changed, "the demo file's third row is DUPONT-DEMO")
	next := append([]string{header, rows[0], changed}, rows[3:]...)
	second := importReader(t, store, strings.NewReader(strings.Join(next, "\n")+"\n"))
	require.Equal(t, int64(0), second.Added)
	require.Equal(t, int64(1), second.Changed)
	require.Equal(t, int64(1), second.Removed)

	boxes, err := store.Mailboxes(ctx, "899900000002")
	require.NoError(t, err)
	require.Len(t, boxes, 1)
	require.Equal(t, "DUPONT-DEMO-DURAND", boxes[0].LastName)
}

func TestImportDirectoryKeepsOldOnError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := correspondents.NewStore(pgtest.NewPool(t))
	importFile(t, store, demoExtraction)
	before := countEntries(t, store)

	raw, err := os.ReadFile(demoExtraction)
	require.NoError(t, err)
	er, err := correspondents.NewExtractionReader(&failingReader{data: raw[:len(raw)/2]})
	require.NoError(t, err)
	_, err = store.ImportDirectory(ctx, "broken", er, nil)
	require.Error(t, err)
	require.Equal(t, before, countEntries(t, store), "a failed import keeps the previous directory")
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

func countEntries(t *testing.T, store *correspondents.Store) int64 {
	t.Helper()
	var n int64
	for _, id := range []string{"899900000001", "899900000002", "899900000003", "899900000004", "899900000005",
		"899900000006", "899900000007", "0999000001", ""} {
		boxes, err := store.Mailboxes(context.Background(), id)
		require.NoError(t, err)
		n += int64(len(boxes))
	}
	return n
}

func TestImportWhitelist(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := correspondents.NewStore(pgtest.NewPool(t))
	sum, err := store.ImportWhitelist(ctx, "a", []string{"a.mssante.fr", "b.mssante.fr"})
	require.NoError(t, err)
	require.Equal(t, correspondents.ImportSummary{Rows: 2, Added: 2}, sum)
	sum, err = store.ImportWhitelist(ctx, "b", []string{"b.mssante.fr", "c.mssante.fr"})
	require.NoError(t, err)
	require.Equal(t, correspondents.ImportSummary{Rows: 2, Added: 1, Removed: 1}, sum)

	for domain, want := range map[string]bool{
		"b.mssante.fr":         true,
		"sub.c.mssante.fr":     true,
		"a.mssante.fr":         false,
		"xb.mssante.fr":        false,
		"mssante.fr":           false,
		"c.mssante.fr.example": false,
	} {
		got, err := store.Trusted(ctx, domain)
		require.NoError(t, err)
		require.Equal(t, want, got, domain)
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name    string
		rcpt    correspondents.Recipient
		channel string
		address string
		review  bool
		reason  string
	}{
		{"directory single address", correspondents.Recipient{NationalID: "899900000002"},
			"mssante", "claire.dupont-demo@medecin-demo.mssante.fr", false, correspondents.ReasonDirectoryAddress},
		{"DPI address trusted wins", correspondents.Recipient{NationalID: "899900000001", Address: " Julie.Roux@Medecin-Demo.MSSante.fr"},
			"mssante", "julie.roux@medecin-demo.mssante.fr", false, correspondents.ReasonDPIAddress},
		{"DPI address untrusted", correspondents.Recipient{Address: "someone@gmail.com"},
			"paper", "", true, correspondents.ReasonUntrustedAddress},
		{"several directory addresses", correspondents.Recipient{NationalID: "899900000001"},
			"paper", "", true, correspondents.ReasonSeveralAddresses},
		{"directory address outside trust space", correspondents.Recipient{NationalID: "899900000006"},
			"paper", "", true, correspondents.ReasonNoAddress},
		{"unknown person", correspondents.Recipient{NationalID: "812345678901"},
			"paper", "", true, correspondents.ReasonNoAddress},
		{"nothing at all", correspondents.Recipient{Name: "Dr X"},
			"paper", "", true, correspondents.ReasonNoAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			routes, err := b.resolver.Resolve(b.ctx, tt.rcpt)
			require.NoError(t, err)
			require.Len(t, routes, 1)
			r := routes[0]
			require.Equal(t, tt.channel, r.Channel)
			require.Equal(t, tt.address, r.Address)
			require.Equal(t, tt.review, r.Review)
			require.Equal(t, tt.reason, r.Reason)
			require.NotEmpty(t, r.Text)
		})
	}
}
