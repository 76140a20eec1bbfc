package correspondents

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents/internal/gen"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
)

// BenchmarkResolve1M resolves recipients against a national directory of
// 1,000,000 generated rows, with 300 local correspondents (a hospital's
// frequent ones) and a whitelist of specific domains: 85 % known people
// by national id, 10 % of them with the DPI's address, 5 % unknown. It
// reports the p50 and p99 latency of one Resolve (target: p99 under 2 ms).
//
//	go test -run '^$' -bench BenchmarkResolve1M -benchtime 20000x ./correspondents/
func BenchmarkResolve1M(b *testing.B) {
	ctx := context.Background()
	store := loadBigDirectory(b)
	var people []Recipient
	rows, err := store.pool.Query(ctx, `SELECT national_id, address FROM directory_entries
		WHERE national_id <> '' ORDER BY md5(address) LIMIT 5000`)
	require.NoError(b, err)
	for rows.Next() {
		var rc Recipient
		require.NoError(b, rows.Scan(&rc.NationalID, &rc.Address))
		people = append(people, rc)
	}
	require.NoError(b, rows.Err())
	for i, p := range people[:300] {
		pref := []string{PreferenceDirectory, PreferenceElectronic, PreferencePaper, PreferenceBoth}[i%4]
		_, err := store.SaveLocal(ctx, LocalCorrespondent{NationalID: p.NationalID, Family: fmt.Sprintf("LOCAL%d", i),
			Preference: pref, PostalAddress: PostalAddress{PostalCode: "75002", City: "PARIS"}}, "bench")
		require.NoError(b, err)
	}
	rnd := rand.New(rand.NewPCG(2, 3))
	recipients := make([]Recipient, 0, 10000)
	for range cap(recipients) {
		p := people[rnd.IntN(len(people))]
		switch n := rnd.IntN(100); {
		case n < 10:
			recipients = append(recipients, Recipient{NationalID: p.NationalID, Address: p.Address})
		case n < 95:
			recipients = append(recipients, Recipient{NationalID: p.NationalID})
		default:
			recipients = append(recipients, Recipient{NationalID: fmt.Sprintf("8%011d", rnd.IntN(1e11))})
		}
	}
	_, err = store.pool.Exec(ctx, "ANALYZE")
	require.NoError(b, err)

	resolver := NewResolver(store)
	var latencies []time.Duration
	i := 0
	for b.Loop() {
		rc := recipients[i%len(recipients)]
		i++
		t0 := time.Now()
		routes, err := resolver.Resolve(ctx, rc)
		latencies = append(latencies, time.Since(t0))
		if err != nil || len(routes) == 0 {
			b.Fatalf("resolve %+v: %v %v", rc, routes, err)
		}
	}
	reportLatencies(b, latencies)
}

// BenchmarkSearch1M runs type-ahead searches of the directory of
// BenchmarkResolve1M: the first two or three letters of a last name, a full
// last name with a first name, a name and a city, an RPPS, a city alone.
//
//	go test -run '^$' -bench BenchmarkSearch1M -benchtime 5000x ./correspondents/
func BenchmarkSearch1M(b *testing.B) {
	ctx := context.Background()
	store := loadBigDirectory(b)
	var queries []SearchQuery
	rows, err := store.pool.Query(ctx, `SELECT last_name, first_name, rpps, postal_address->>'city'
		FROM directory_entries WHERE box_type = 'PER' ORDER BY md5(address) LIMIT 2000`)
	require.NoError(b, err)
	for rows.Next() {
		var last, first, rpps string
		var city *string
		require.NoError(b, rows.Scan(&last, &first, &rpps, &city))
		c := ""
		if city != nil {
			c = *city
		}
		queries = append(queries, SearchQuery{Text: last[:min(2, len(last))]}, SearchQuery{Text: last[:min(3, len(last))]},
			SearchQuery{Text: last + " " + first}, SearchQuery{Text: last[:min(4, len(last))], City: c},
			SearchQuery{Text: rpps}, SearchQuery{City: c})
	}
	require.NoError(b, rows.Err())
	var latencies []time.Duration
	i := 0
	for b.Loop() {
		q := queries[i%len(queries)]
		i++
		t0 := time.Now()
		if _, err := store.Search(ctx, q); err != nil {
			b.Fatalf("search %+v: %v", q, err)
		}
		latencies = append(latencies, time.Since(t0))
	}
	reportLatencies(b, latencies)
}

// reportLatencies reports the p50 and p99 of latencies.
func reportLatencies(b *testing.B, latencies []time.Duration) {
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// loadBigDirectory returns a store on a fresh database holding a generated
// directory of 1,000,000 rows and a whitelist of its domains.
func loadBigDirectory(b *testing.B) *Store {
	b.Helper()
	ctx := context.Background()
	store := NewStore(pgtest.NewPool(b))
	pr, pw := io.Pipe()
	go func() {
		_, err := gen.Write(pw, gen.Config{Rows: 1_000_000, Seed: 1})
		pw.CloseWithError(err)
	}()
	er, err := NewExtractionReader(pr)
	require.NoError(b, err)
	start := time.Now()
	sum, err := store.ImportDirectory(ctx, "bench", er, ImportOptions{})
	require.NoError(b, err)
	b.Logf("imported %d rows in %s", sum.Rows, time.Since(start).Round(time.Second))

	// The whitelist names every domain of the directory, as the real one does.
	rows, err := store.pool.Query(ctx, `SELECT DISTINCT split_part(address, '@', 2) FROM directory_entries`)
	require.NoError(b, err)
	var domains []string
	for rows.Next() {
		var d string
		require.NoError(b, rows.Scan(&d))
		domains = append(domains, d)
	}
	require.NoError(b, rows.Err())
	_, err = store.ImportWhitelist(ctx, "bench", domains, ImportOptions{})
	require.NoError(b, err)
	_, err = store.pool.Exec(ctx, "ANALYZE")
	require.NoError(b, err)
	return store
}
