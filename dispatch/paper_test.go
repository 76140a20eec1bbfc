package dispatch_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/paper"
)

// letterhead is the test hospital's.
var letterhead = paper.Letterhead{Name: "CH Démo", Lines: []string{"1 rue de l'Hôpital", "33000 Bordeaux"}}

// waitBatches waits until there are want batches.
func (b *testBundle) waitBatches(t *testing.T, want int) []dispatch.PaperBatch {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		batches, err := b.svc.PaperBatches(b.ctx, 0)
		require.NoError(t, err)
		if len(batches) >= want {
			require.Len(t, batches, want)
			return batches
		}
		require.False(t, time.Now().After(deadline), "%d batches, want %d", len(batches), want)
	}
}

// pdfText is the text of a PDF, by Debian's pdftotext (poppler-utils).
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	require.NoError(t, err, "install poppler-utils")
	f := filepath.Join(t.TempDir(), "in.pdf")
	require.NoError(t, os.WriteFile(f, pdf, 0o600))
	out, err := exec.Command(bin, "-layout", f, "-").Output()
	require.NoError(t, err)
	return string(out)
}

// TestPaperBatches drives the paper channel through River and PostgreSQL:
// letters batched per service, the batch's PDF written to the print folder,
// a letter held after printing left out of the posting, the posting, a
// postal return printed again in the next batch.
func TestPaperBatches(t *testing.T) {
	t.Parallel()
	outbox, err := mail.NewOutbox(t.TempDir())
	require.NoError(t, err)
	spool := t.TempDir()
	b := setupWith(t, outbox, func(w *river.Workers, pool *pgxpool.Pool, _ prometheus.Registerer) {
		require.NoError(t, dispatch.AddPaperBatches(w, dispatch.PaperConfig{Pool: pool, Letterhead: letterhead,
			Sink: dispatch.LocalPrint{Dir: spool}, Logger: quiet}))
	})
	// Claire gets a paper copy of each report (she did not tick dématérialisation).
	var reports []int64
	for i, service := range []string{"CARDIO", "CARDIO", "ONCO"} {
		r := testReport(t)
		r.Service = service
		setDocumentID(t, &r, r.Document.ID+string(rune('a'+i)))
		reports = append(reports, b.receive(t, r).ReportID)
	}
	for _, id := range reports {
		b.waitReport(t, id, "a letter to print", func(v dispatch.ReportView) bool {
			for _, d := range v.Deliveries {
				if d.Channel == "paper" && d.Status == dispatch.StatusPaperPending {
					return true
				}
			}
			return false
		})
	}

	require.NoError(t, b.svc.MakePaperBatches(b.ctx))
	batches := b.waitBatches(t, 2)
	byService := map[string]dispatch.PaperBatch{}
	for _, batch := range batches {
		byService[batch.Service] = batch
		require.Equal(t, dispatch.BatchReady, batch.Status)
		require.Equal(t, "local", batch.Sink)
	}
	cardio := byService["CARDIO"]
	require.Equal(t, 2, cardio.Letters)
	require.Equal(t, 1, byService["ONCO"].Letters)
	pdf, err := b.svc.PaperBatchPDF(b.ctx, "test", cardio.ID)
	require.NoError(t, err)
	text := pdfText(t, pdf)
	require.Contains(t, text, "CH Démo")
	require.Equal(t, 4, strings.Count(text, "DUPONT-DEMO"), "the summary sheet, then each letter's address block")
	files, err := filepath.Glob(filepath.Join(spool, "lot-*.pdf"))
	require.NoError(t, err)
	require.Len(t, files, 2, "each batch is written to the print folder")

	_, letters, err := b.svc.PaperBatch(b.ctx, cardio.ID)
	require.NoError(t, err)
	require.Len(t, letters, 2)
	first, second := letters[0], letters[1]
	require.Equal(t, 1, first.Position)
	require.True(t, first.InBatch)
	require.Greater(t, first.Pages, 1, "the cover page, then the report's")
	require.Equal(t, cardio.Pages, first.Pages+second.Pages)

	// Batching again finds nothing new.
	require.NoError(t, b.svc.MakePaperBatches(b.ctx))
	time.Sleep(500 * time.Millisecond)
	b.waitBatches(t, 2)

	// A letter held after printing is not posted with its batch.
	require.NoError(t, b.svc.Hold(b.ctx, second.DeliveryID, "alice", "adresse à vérifier"))
	_, letters, err = b.svc.PaperBatch(b.ctx, cardio.ID)
	require.NoError(t, err)
	require.False(t, letters[1].InBatch)
	n, err := b.svc.MarkBatchPosted(b.ctx, cardio.ID, "alice")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = b.svc.MarkBatchPosted(b.ctx, cardio.ID, "alice")
	require.ErrorIs(t, err, dispatch.ErrTransition, "a batch is posted once")
	cardio, letters, err = b.svc.PaperBatch(b.ctx, cardio.ID)
	require.NoError(t, err)
	require.Equal(t, dispatch.BatchPosted, cardio.Status)
	require.Equal(t, "alice", cardio.PostedBy)
	require.Equal(t, dispatch.StatusPaperSent, letters[0].Status)
	require.Equal(t, dispatch.StatusReview, letters[1].Status)

	// The posted letter comes back (NPAI), is corrected and approved: it is
	// printed again, with the held one, in a new batch.
	require.NoError(t, b.svc.PostalReturn(b.ctx, first.DeliveryID, "alice", "NPAI"))
	for _, id := range []int64{first.DeliveryID, second.DeliveryID} {
		require.NoError(t, b.svc.Approve(b.ctx, id, "alice"))
	}
	require.NoError(t, b.svc.MakePaperBatches(b.ctx))
	batches = b.waitBatches(t, 3)
	again := batches[0]
	require.Equal(t, "CARDIO", again.Service)
	require.Equal(t, 2, again.Letters)

	// The history of a letter tells its batches.
	v, err := b.svc.ReportDetail(b.ctx, "test", first.ReportID)
	require.NoError(t, err)
	var events []string
	for _, e := range v.Timeline {
		if e.DeliveryID == first.DeliveryID && e.Event != dispatch.EventCreated {
			events = append(events, e.Event)
		}
	}
	require.Equal(t, []string{dispatch.EventBatched, dispatch.EventPaperSent, dispatch.EventReturned,
		dispatch.EventApproved, dispatch.EventBatched}, events)

	// One letter alone, to reprint.
	letter, err := b.svc.LetterPDF(b.ctx, "test", first.DeliveryID)
	require.NoError(t, err)
	require.Contains(t, pdfText(t, letter), "DUPONT-DEMO")
	_, err = b.svc.LetterPDF(b.ctx, "test", 999999)
	require.ErrorIs(t, err, dispatch.ErrNotFound)
}

// TestPaperBatchSkipsUnprintable: a letter that cannot be made (its
// document purged) goes back to review with why; the others are batched.
func TestPaperBatchSkipsUnprintable(t *testing.T) {
	t.Parallel()
	outbox, err := mail.NewOutbox(t.TempDir())
	require.NoError(t, err)
	b := setupWith(t, outbox, func(w *river.Workers, pool *pgxpool.Pool, _ prometheus.Registerer) {
		require.NoError(t, dispatch.AddPaperBatches(w, dispatch.PaperConfig{Pool: pool, Letterhead: letterhead, Logger: quiet}))
	})
	var reports []int64
	for i := range 2 {
		r := testReport(t)
		setDocumentID(t, &r, r.Document.ID+string(rune('a'+i)))
		reports = append(reports, b.receive(t, r).ReportID)
	}
	letters := map[int64]int64{}
	for _, id := range reports {
		v := b.waitReport(t, id, "a letter to print", func(v dispatch.ReportView) bool {
			for _, d := range v.Deliveries {
				if d.Channel == "paper" && d.Status == dispatch.StatusPaperPending {
					return true
				}
			}
			return false
		})
		for _, d := range v.Deliveries {
			if d.Channel == "paper" {
				letters[id] = d.ID
			}
		}
	}
	_, err = b.pool.Exec(b.ctx, `UPDATE documents SET pdf = NULL, cda = '', purged_at = now() WHERE report_id = $1`, reports[0])
	require.NoError(t, err)

	require.NoError(t, b.svc.MakePaperBatches(b.ctx))
	batches := b.waitBatches(t, 1)
	require.Equal(t, 1, batches[0].Letters)
	v, err := b.svc.ReportDetail(b.ctx, "test", reports[0])
	require.NoError(t, err)
	// The letter's last event (the emails' events go on meanwhile).
	var last dispatch.TimelineEvent
	for _, e := range v.Timeline {
		if e.DeliveryID == letters[reports[0]] {
			last = e
		}
	}
	require.Equal(t, dispatch.EventHeld, last.Event)
	require.Equal(t, dispatch.StatusReview, last.To)
	require.Contains(t, last.Detail, "purgé")
}
