package letters_test

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/internal/dispatchtest"
	"github.com/mssdispatch/mssdispatch/letters"
	"github.com/mssdispatch/mssdispatch/paper"
	"github.com/mssdispatch/mssdispatch/queue"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

// letterhead is the test hospital's.
var letterhead = paper.Letterhead{Name: "CH Démo", Lines: []string{"1 rue de l'Hôpital", "33000 Bordeaux"}}

// testBundle is the domain running for a test, with the paper channel.
type testBundle struct {
	*dispatchtest.Env
	desk *letters.Desk
}

// setup starts the domain with the paper batches, handed to sink
// (LocalPrint{} when nil), and a Desk.
func setup(t *testing.T, sink letters.Sink) *testBundle {
	t.Helper()
	outbox, err := mail.NewOutbox(t.TempDir())
	require.NoError(t, err)
	var cfg letters.Config
	env := dispatchtest.Start(t, outbox, func(w *river.Workers, pool *pgxpool.Pool, _ prometheus.Registerer) {
		cfg = letters.Config{Pool: pool, Letterhead: letterhead, Sink: sink, Logger: slog.New(slog.DiscardHandler)}
		require.NoError(t, letters.AddBatches(w, cfg))
	})
	desk, err := letters.NewDesk(cfg, env.Client)
	require.NoError(t, err)
	return &testBundle{Env: env, desk: desk}
}

// batchNow makes the paper batches now, and waits until it is done (until
// then, asking again would not batch the letters since).
func (b *testBundle) batchNow(t *testing.T) {
	t.Helper()
	require.NoError(t, b.desk.MakeBatches(b.Ctx))
	require.Eventually(t, func() bool {
		res, err := b.Client.JobList(b.Ctx, river.NewJobListParams().Kinds(letters.BatchArgs{}.Kind()).States(queue.ActiveStates...))
		require.NoError(t, err)
		return len(res.Jobs) == 0
	}, 30*time.Second, 50*time.Millisecond)
}

// waitBatches waits until there are want batches.
func (b *testBundle) waitBatches(t *testing.T, want int) []letters.Batch {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		batches, err := b.desk.Batches(b.Ctx, 0)
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
	spool := t.TempDir()
	b := setup(t, letters.LocalPrint{Dir: spool})
	// Claire gets a paper copy of each report (she did not tick dématérialisation).
	var reports []int64
	for i, service := range []string{"CARDIO", "CARDIO", "ONCO"} {
		r := dispatchtest.Report(t)
		r.Service = service
		dispatchtest.SetDocumentID(t, &r, r.Document.ID+string(rune('a'+i)))
		reports = append(reports, b.Receive(t, r).ReportID)
	}
	for _, id := range reports {
		b.waitLetters(t, id, 1)
	}

	b.batchNow(t)
	batches := b.waitBatches(t, 2)
	byService := map[string]letters.Batch{}
	for _, batch := range batches {
		byService[batch.Service] = batch
		require.Equal(t, letters.BatchReady, batch.Status)
		require.Equal(t, "local", batch.Sink)
	}
	cardio := byService["CARDIO"]
	require.Equal(t, 2, cardio.Letters)
	require.Equal(t, 1, byService["ONCO"].Letters)
	pdf, err := b.desk.BatchPDF(b.Ctx, "test", cardio.ID)
	require.NoError(t, err)
	text := pdfText(t, pdf)
	require.Contains(t, text, "CH Démo")
	require.Equal(t, 4, strings.Count(text, "DUPONT-DEMO"), "the summary sheet, then each letter's address block")
	files, err := filepath.Glob(filepath.Join(spool, "lot-*.pdf"))
	require.NoError(t, err)
	require.Len(t, files, 2, "each batch is written to the print folder")

	_, rows, err := b.desk.Batch(b.Ctx, "test", cardio.ID)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	first, second := rows[0], rows[1]
	require.Equal(t, 1, first.Position)
	require.True(t, first.InBatch)
	require.Greater(t, first.Pages, 1, "the cover page, then the report's")
	require.Equal(t, cardio.Pages, first.Pages+second.Pages)

	// Batching again finds nothing new.
	b.batchNow(t)
	b.waitBatches(t, 2)

	// A letter held after printing is not posted with its batch.
	require.NoError(t, b.Desk.Hold(b.Ctx, second.DeliveryID, "alice", "adresse à vérifier"))
	_, rows, err = b.desk.Batch(b.Ctx, "test", cardio.ID)
	require.NoError(t, err)
	require.False(t, rows[1].InBatch)
	n, err := b.desk.MarkBatchPosted(b.Ctx, cardio.ID, "alice")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = b.desk.MarkBatchPosted(b.Ctx, cardio.ID, "alice")
	require.ErrorIs(t, err, dispatch.ErrTransition, "a batch is posted once")
	cardio, rows, err = b.desk.Batch(b.Ctx, "test", cardio.ID)
	require.NoError(t, err)
	require.Equal(t, letters.BatchPosted, cardio.Status)
	require.Equal(t, "alice", cardio.PostedBy)
	require.Equal(t, dispatch.StatusPaperSent, rows[0].Status)
	require.Equal(t, dispatch.StatusReview, rows[1].Status)

	// The posted letter comes back (NPAI), is corrected and approved: it is
	// printed again, with the held one, in a new batch.
	require.NoError(t, b.Desk.PostalReturn(b.Ctx, first.DeliveryID, "alice", "NPAI"))
	for _, id := range []int64{first.DeliveryID, second.DeliveryID} {
		require.NoError(t, b.Desk.Approve(b.Ctx, id, "alice"))
	}
	b.batchNow(t)
	batches = b.waitBatches(t, 3)
	again := batches[0]
	require.Equal(t, "CARDIO", again.Service)
	require.Equal(t, 2, again.Letters)

	// The history of a letter tells its batches.
	v, err := readmodel.New(b.Pool).ReportDetail(b.Ctx, "test", first.ReportID)
	require.NoError(t, err)
	var events []dispatch.Event
	for _, e := range v.Timeline {
		if e.DeliveryID == first.DeliveryID && e.Event != dispatch.EventCreated {
			events = append(events, e.Event)
		}
	}
	require.Equal(t, []dispatch.Event{dispatch.EventBatched, dispatch.EventPaperSent, dispatch.EventReturned,
		dispatch.EventApproved, dispatch.EventBatched}, events)

	// One letter alone, to reprint.
	letter, err := b.desk.LetterPDF(b.Ctx, "test", first.DeliveryID)
	require.NoError(t, err)
	require.Contains(t, pdfText(t, letter), "DUPONT-DEMO")
	_, err = b.desk.LetterPDF(b.Ctx, "test", 999999)
	require.ErrorIs(t, err, dispatch.ErrNotFound)
}

// TestPaperBatchSkipsUnprintable: a letter that cannot be made (its
// document purged) goes back to review with why; the others are batched.
func TestPaperBatchSkipsUnprintable(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	var reports []int64
	for i := range 2 {
		r := dispatchtest.Report(t)
		dispatchtest.SetDocumentID(t, &r, r.Document.ID+string(rune('a'+i)))
		reports = append(reports, b.Receive(t, r).ReportID)
	}
	letters := map[int64]int64{}
	for _, id := range reports {
		letters[id] = b.waitLetters(t, id, 1)[0].ID
	}
	_, err := b.Pool.Exec(b.Ctx, `UPDATE documents SET pdf = NULL, cda = '', purged_at = now() WHERE report_id = $1`, reports[0])
	require.NoError(t, err)

	b.batchNow(t)
	batches := b.waitBatches(t, 1)
	require.Equal(t, 1, batches[0].Letters)
	// The letter's last event (the emails' events go on meanwhile).
	last := b.lastEvent(t, reports[0], letters[reports[0]])
	require.Equal(t, dispatch.EventHeld, last.Event)
	require.Equal(t, dispatch.StatusReview, last.To)
	require.Contains(t, last.Detail, "purgé")
}

// waitLetters waits until the report has want letters to print, and
// returns them.
func (b *testBundle) waitLetters(t *testing.T, reportID int64, want int) []readmodel.DeliveryView {
	t.Helper()
	letters := func(v readmodel.ReportView) []readmodel.DeliveryView {
		return slices.DeleteFunc(slices.Clone(v.Deliveries), func(d readmodel.DeliveryView) bool {
			return d.Channel != "paper" || d.Status != dispatch.StatusPaperPending
		})
	}
	return letters(b.WaitReport(t, reportID, fmt.Sprintf("%d letters to print", want),
		func(v readmodel.ReportView) bool { return len(letters(v)) == want }))
}

// lastEvent is the last event of the delivery id in the report's history.
func (b *testBundle) lastEvent(t *testing.T, reportID, id int64) readmodel.TimelineEvent {
	t.Helper()
	v, err := readmodel.New(b.Pool).ReportDetail(b.Ctx, "test", reportID)
	require.NoError(t, err)
	var last readmodel.TimelineEvent
	for _, e := range v.Timeline {
		if e.DeliveryID == id {
			last = e
		}
	}
	return last
}

// auditedDeliveries lists the deliveries of the audit entries of actor's
// action on object.
func (b *testBundle) auditedDeliveries(t *testing.T, actor, action, object string) []int64 {
	t.Helper()
	rows, err := b.Pool.Query(b.Ctx, `SELECT delivery_id FROM audit_log WHERE actor = $1 AND action = $2 AND object = $3
		ORDER BY delivery_id`, actor, action, object)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	return ids
}

// legrand is a doctor the DPI knows by name and postal address only (no
// RPPS, no MSSanté address): each message that lists him again adds him
// again, and he gets a letter (no MSSanté address is known for him).
var legrand = dispatch.Recipient{Role: dispatch.RoleResultCopiesTo, Kind: dispatch.KindProfessional, Family: "LEGRAND", Given: "Paul",
	PostalAddress: dispatch.PostalAddress{Lines: []string{"3, place Gambetta"}, PostalCode: "33000", City: "Bordeaux"}}

// receiveLegrand receives testReport listing Paul Legrand too, and waits for
// its letters: Claire's paper copy and his.
func (b *testBundle) receiveLegrand(t *testing.T) (r dispatch.Report, reportID int64, letters []readmodel.DeliveryView) {
	t.Helper()
	r = dispatchtest.Report(t)
	r.Recipients = append(r.Recipients, legrand)
	reportID = b.Receive(t, r).ReportID
	return r, reportID, b.waitLetters(t, reportID, 2)
}

// TestPaperBatchDuplicates: the DPI sends a document again, listing anew a
// doctor it knows by name and address only; the batch prints his letter
// once, records the other as a duplicate (cancelled, not posted), and a
// third copy sent after the batch is not printed again. The batch's page
// shows each letter's patient, its reading audited per letter. Before, the
// batch printed the same letter twice, for the secretary to post twice.
func TestPaperBatchDuplicates(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	r, report, _ := b.receiveLegrand(t)
	_, err := b.Service.Receive(b.Ctx, dispatchtest.Inbound("MSG-AGAIN", "again"), r, dispatchtest.Respond)
	require.NoError(t, err)
	letters := b.waitLetters(t, report, 3)
	claire, first, again := letters[0], letters[1], letters[2]
	require.Equal(t, "Claire DUPONT-DEMO", claire.Recipient)
	require.Equal(t, "Paul LEGRAND", first.Recipient)
	require.Equal(t, "Paul LEGRAND", again.Recipient)

	b.batchNow(t)
	batch := b.waitBatches(t, 1)[0]
	require.Equal(t, 2, batch.Letters, "Claire's paper copy, and Paul Legrand's letter once")
	require.Equal(t, 1, batch.Duplicates)
	pdf, err := b.desk.BatchPDF(b.Ctx, "alice", batch.ID)
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(pdfText(t, pdf), "LEGRAND"), "the summary sheet, then one letter's address block")

	got, rows, err := b.desk.Batch(b.Ctx, "alice", batch.ID)
	require.NoError(t, err)
	require.Equal(t, 1, got.Duplicates)
	require.Len(t, rows, 3)
	require.Equal(t, []int64{claire.ID, first.ID, again.ID}, []int64{rows[0].DeliveryID, rows[1].DeliveryID, rows[2].DeliveryID},
		"the letters in print order, the duplicate after the letter printed for it")
	printed, dup := rows[1], rows[2]
	require.True(t, printed.InBatch)
	require.Equal(t, 2, printed.Position)
	require.Equal(t, first.ID, dup.DuplicateOf)
	require.Equal(t, printed.Position, dup.Position)
	require.Zero(t, dup.Pages)
	require.Zero(t, dup.DuplicateBatch)
	require.Equal(t, dispatch.StatusCancelled, dup.Status)
	require.False(t, dup.Withdrawn(), "a duplicate was never in the pile")
	for _, l := range rows {
		require.Equal(t, dispatch.Patient{Family: "DUPONT", Given: "Marie", BirthDate: "19800115", Sex: "F", IPP: "IPP1"}, l.Patient,
			"the batch page shows whom each letter is about")
	}
	e := b.lastEvent(t, report, again.ID)
	require.Equal(t, dispatch.EventCancelled, e.Event)
	require.Equal(t, fmt.Sprintf("doublon de l'envoi n° %d (même destinataire, même document), imprimé une seule fois dans le lot n° %d",
		first.ID, batch.ID), e.Detail)

	// Reading the batch's page is audited once per letter shown, printing
	// its PDF once per letter printed.
	object := fmt.Sprintf("batch:%d", batch.ID)
	require.Equal(t, []int64{claire.ID, first.ID, again.ID}, b.auditedDeliveries(t, "alice", "report_viewed", object))
	require.Equal(t, []int64{claire.ID, first.ID}, b.auditedDeliveries(t, "alice", "letter_printed", object))

	n, err := b.desk.MarkBatchPosted(b.Ctx, batch.ID, "alice")
	require.NoError(t, err)
	require.Equal(t, 2, n)

	// Sent once more after the posting: nothing to print again.
	_, err = b.Service.Receive(b.Ctx, dispatchtest.Inbound("MSG-THIRD", "third"), r, dispatchtest.Respond)
	require.NoError(t, err)
	third := b.WaitReport(t, report, "a third letter to Paul Legrand", func(v readmodel.ReportView) bool {
		return len(v.Deliveries) == 7
	}).Deliveries[6]
	require.Equal(t, "Paul LEGRAND", third.Recipient)
	b.batchNow(t)
	b.WaitReport(t, report, "the third letter cancelled", func(v readmodel.ReportView) bool {
		return v.Deliveries[6].Status == dispatch.StatusCancelled
	})
	require.Equal(t, fmt.Sprintf("doublon de l'envoi n° %d (même destinataire, même document), déjà imprimé dans le lot n° %d : pas imprimé une seconde fois",
		first.ID, batch.ID), b.lastEvent(t, report, third.ID).Detail)
	b.waitBatches(t, 1)
}

// TestPaperLetterKinds: Claire, who gets the document by MSSanté too, is
// told her letter is its paper copy and is not invited to open an MSSanté
// mailbox; Paul Legrand, whose MSSanté address nobody knows, is. Before,
// both were invited.
func TestPaperLetterKinds(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	_, _, letters := b.receiveLegrand(t)
	const invitation = "il vous suffit de disposer d'une boîte aux lettres MSSanté publiée dans l'Annuaire Santé"
	text := func(id int64) string {
		pdf, err := b.desk.LetterPDF(b.Ctx, "test", id)
		require.NoError(t, err)
		return strings.Join(strings.Fields(pdfText(t, pdf)), " ")
	}
	claire := text(letters[0].ID)
	require.Contains(t, claire, "Ce document vous est également adressé par messagerie sécurisée de santé (MSSanté) : ce courrier en est la copie papier.")
	require.NotContains(t, claire, invitation)
	require.Contains(t, text(letters[1].ID), invitation)
}

// TestPaperBatchReplacedAfterPrinting: a letter printed in a batch whose
// document is then replaced is shown withdrawn (not to post), and the new
// version is printed in the next batch. Before, the old version was shown
// to post, as if still in the batch.
func TestPaperBatchReplacedAfterPrinting(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	original := dispatchtest.Report(t)
	first := b.Receive(t, original).ReportID
	b.waitLetters(t, first, 1)
	b.batchNow(t)
	batch := b.waitBatches(t, 1)[0]

	v2 := dispatchtest.Report(t)
	v2.Action = dispatch.ActionReplace
	v2.Document.ParentID = original.Document.ID
	dispatchtest.SetDocumentID(t, &v2, original.Document.ID+"-v2")
	v2.Recipients = v2.Recipients[:1]
	second := b.Receive(t, v2).ReportID
	b.waitLetters(t, second, 1)

	_, rows, err := b.desk.Batch(b.Ctx, "test", batch.ID)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, dispatch.StatusSuperseded, rows[0].Status)
	require.False(t, rows[0].InBatch)
	require.True(t, rows[0].Withdrawn(), "the old version must not be posted")
	n, err := b.desk.MarkBatchPosted(b.Ctx, batch.ID, "alice")
	require.NoError(t, err)
	require.Zero(t, n)

	b.batchNow(t)
	next := b.waitBatches(t, 2)[0]
	require.Equal(t, 1, next.Letters, "the new version is printed")
	require.Zero(t, next.Duplicates)
}
