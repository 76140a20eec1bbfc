package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
)

// countingDB counts the queries that reach the database.
type countingDB struct {
	dispatch.DB
	queries atomic.Int64
}

func (c *countingDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c.queries.Add(1)
	return c.DB.QueryRow(ctx, sql, args...)
}

func (c *countingDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c.queries.Add(1)
	return c.DB.Query(ctx, sql, args...)
}

// TestDocumentCache checks that a report's emails load and prepare its
// document once, even when they ask at the same time; that a failed load is
// not kept; that a CDA that cannot be packaged is an ErrUnpackable; and
// that the oldest entry makes room for new ones.
func TestDocumentCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	db := &countingDB{DB: pool}
	cdaDoc, err := os.ReadFile("../../cda/testdata/n1-pdf.xml")
	require.NoError(t, err)
	report := func(i int, cdaDoc []byte, pdf []byte) int64 {
		var id int64
		require.NoError(t, pool.QueryRow(ctx, `INSERT INTO reports (source, message_control_id, message_type, document_id, status)
			VALUES ('api', $1, 'report', $1, 'resolved') RETURNING id`, fmt.Sprint("doc-", i)).Scan(&id))
		if cdaDoc != nil {
			_, err := pool.Exec(ctx, "INSERT INTO documents (report_id, cda, pdf) VALUES ($1, $2, $3)", id, cdaDoc, pdf)
			require.NoError(t, err)
		}
		return id
	}
	var cache documentCache

	first := report(0, cdaDoc, []byte("%PDF-1.4 x"))
	var wg sync.WaitGroup
	docs := make([]sendDocument, 3)
	errs := make([]error, len(docs))
	for i := range docs {
		wg.Go(func() { docs[i], errs[i] = cache.get(ctx, db, first) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.EqualValues(t, 1, db.queries.Load(), "three emails, one load")
	for _, d := range docs {
		require.Same(t, docs[0].xdm[0], d.xdm[0])
		require.Equal(t, [][]byte{[]byte("%PDF-1.4 x")}, d.pdfs)
	}
	zip, err := cda.Package(cda.XDMOptions{SourceID: DemoSourceID}, docs[0].xdm...)
	require.NoError(t, err)
	require.NotEmpty(t, zip)

	// A deletion without its CDA: nothing to package.
	bare, err := cache.get(ctx, db, report(1, []byte{}, nil))
	require.NoError(t, err)
	require.Nil(t, bare.xdm)
	require.Nil(t, bare.pdfs)

	// Not there yet: an error, not kept.
	missing := report(2, nil, nil)
	_, err = cache.get(ctx, db, missing)
	require.ErrorIs(t, err, dispatch.ErrNotFound)
	require.NotErrorIs(t, err, ErrUnpackable)
	_, err = pool.Exec(ctx, "INSERT INTO documents (report_id, cda) VALUES ($1, $2)", missing, cdaDoc)
	require.NoError(t, err)
	found, err := cache.get(ctx, db, missing)
	require.NoError(t, err)
	require.NotNil(t, found.xdm)

	_, err = cache.get(ctx, db, report(3, []byte("<html/>"), nil))
	require.ErrorIs(t, err, ErrUnpackable)
	require.False(t, mail.IsPermanent(err), "the domain's failure, not the mail server's")

	// The first report is the oldest: documentCacheSize others push it out.
	loads := db.queries.Load()
	_, err = cache.get(ctx, db, first)
	require.NoError(t, err)
	require.Equal(t, loads, db.queries.Load(), "still kept")
	for i := range documentCacheSize {
		_, err := cache.get(ctx, db, report(10+i, cdaDoc, nil))
		require.NoError(t, err)
	}
	loads = db.queries.Load()
	_, err = cache.get(ctx, db, first)
	require.NoError(t, err)
	require.Equal(t, loads+1, db.queries.Load(), "loaded again")
	require.Len(t, cache.entries, documentCacheSize)
	require.Len(t, cache.order, documentCacheSize)
}
