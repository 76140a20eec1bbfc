package letters

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/paper"
	"github.com/mssdispatch/mssdispatch/postal"
	"github.com/mssdispatch/mssdispatch/queue"
)

// This file holds the batches: the daily batches of letters per service,
// their sink (the local printer, or later a hybrid mail provider), and the
// print-ready letter of a paper delivery they are made of.

// Batch statuses.
const (
	BatchReady     = "ready"     // to print and post by the secretaries
	BatchSubmitted = "submitted" // the sink posts it (a hybrid mail provider)
	BatchPosted    = "posted"    // marked posted: its letters are paper_sent
)

// Batch is a batch of letters: one PDF to print, for a day and a service.
type Batch struct {
	ID       int64
	Day      time.Time // the day (Europe/Paris) it was made
	Service  string
	Status   string
	Sink     string
	Letters  int
	Pages    int
	Created  time.Time
	PostedAt *time.Time
	PostedBy string
	// Duplicates counts the letters the batch did not print because they
	// repeat one printed (see BatchLetter.DuplicateOf).
	Duplicates int
}

// BatchLetter is a letter of a batch, with its delivery's status now.
type BatchLetter struct {
	DeliveryID int64
	ReportID   int64
	// Position is the letter's in the batch, from 1; for a duplicate, that
	// of the letter printed for it, 0 when it is in an earlier batch.
	Position int
	Pages    int
	Name     string
	City     string
	Status   dispatch.Status
	// InBatch is true for a letter printed in the batch that is still in
	// it, to post or posted; see Withdrawn.
	InBatch bool
	// Patient is who the letter's report is about (names, birth date, sex
	// and IPP): how a secretary finds the letter in the printed pile.
	Patient dispatch.Patient
	// DuplicateOf is, for a letter the batch did not print because it
	// repeats one printed for the same recipient and document (the DPI
	// sent the document again), the delivery of the letter printed; 0 for
	// a letter printed.
	DuplicateOf int64
	// DuplicateBatch is the earlier batch where DuplicateOf was printed, 0
	// when it is this one (or it was posted alone).
	DuplicateBatch int64
}

// Withdrawn reports whether l was printed in its batch and left it since
// (held, cancelled, replaced by a new version): it must not be posted.
func (l BatchLetter) Withdrawn() bool { return !l.InBatch && l.DuplicateOf == 0 }

// Sink takes the batches once made: Submit returns true when the sink
// posts them itself (the batch is then submitted), false when they wait for
// the secretaries to print them (ready).
type Sink interface {
	// Name names the sink in the batches' records.
	Name() string
	Submit(ctx context.Context, b Batch, pdf []byte) (posts bool, err error)
}

// LocalPrint is the hospital's own printing: the batches wait in the
// dashboard for the secretaries to print them; with Dir set, each batch's PDF
// is also written there (a printer's hot folder, a print server's spool).
type LocalPrint struct {
	Dir string
}

// Name is "local".
func (LocalPrint) Name() string { return "local" }

// Submit writes the batch to Dir, if set; the secretaries print and post it.
func (p LocalPrint) Submit(_ context.Context, b Batch, pdf []byte) (bool, error) {
	if p.Dir == "" {
		return false, nil
	}
	service := fileSafe.ReplaceAllString(b.Service, "_")
	if service == "" {
		service = "sans-service"
	}
	name := fmt.Sprintf("lot-%d-%s-%s.pdf", b.ID, b.Day.Format(time.DateOnly), service)
	tmp := filepath.Join(p.Dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, pdf, 0o640); err != nil {
		return false, fmt.Errorf("write batch %d: %w", b.ID, err)
	}
	if err := os.Rename(tmp, filepath.Join(p.Dir, name)); err != nil {
		return false, fmt.Errorf("write batch %d: %w", b.ID, err)
	}
	return false, nil
}

// fileSafe is what a file name in the print folder must not hold.
var fileSafe = regexp.MustCompile(`[^\pL\pN._-]+`)

// BatchArgs is the periodic job that puts the letters to print in
// batches, one per service.
type BatchArgs struct{}

// Kind is the River job kind.
func (BatchArgs) Kind() string { return "paper_batch" }

// InsertOpts allows one batching at a time (a click on "now" and the
// schedule do not make two).
func (BatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByState: queue.ActiveStates}}
}

// system is the service acting on its own, in the letters' histories.
var system = dispatch.Actor{Kind: dispatch.ActorSystem}

// Config configures the paper channel: the batches (AddBatches) and the
// Desk (NewDesk).
type Config struct {
	// Pool is the database. Required.
	Pool *pgxpool.Pool
	// Letterhead heads every letter, printed in a batch or alone, and
	// summary sheet.
	Letterhead paper.Letterhead
	// Sink takes the batches. Defaults to LocalPrint{}.
	Sink Sink
	// MaxLetters bounds a batch; more letters of a service make more
	// batches. Defaults to 200.
	MaxLetters int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// AddBatches validates cfg and registers the worker of BatchArgs.
func AddBatches(workers *river.Workers, cfg Config) error {
	if cfg.Pool == nil {
		return errors.New("letters: Config.Pool is required")
	}
	if cfg.Sink == nil {
		cfg.Sink = LocalPrint{}
	}
	if cfg.MaxLetters == 0 {
		cfg.MaxLetters = 200
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := river.AddWorkerSafely(workers, &batchWorker{cfg: cfg}); err != nil {
		return fmt.Errorf("letters: %w", err)
	}
	return nil
}

type batchWorker struct {
	river.WorkerDefaults[BatchArgs]
	cfg Config
}

// Timeout leaves a big batch the time to render.
func (w *batchWorker) Timeout(*river.Job[BatchArgs]) time.Duration { return 10 * time.Minute }

// Work makes the batches: for each service, in one transaction, the letters
// to print not yet in a batch are locked, rendered and merged behind a
// summary sheet, recorded with the batch and handed to the sink. Two
// instances never batch a letter twice (the rows are locked, SKIP LOCKED).
// A letter that repeats one printed, in the batch or before, for the same
// recipient and document is not printed again: it is cancelled and
// recorded with the batch as a duplicate (see BatchLetter.DuplicateOf).
func (w *batchWorker) Work(ctx context.Context, job *river.Job[BatchArgs]) error {
	services, err := unbatchedServices(ctx, w.cfg.Pool)
	if err != nil {
		return err
	}
	made := 0
	for _, service := range services {
		for {
			n, err := w.batch(ctx, service)
			if err != nil {
				return fmt.Errorf("paper batch of service %q: %w", service, err)
			}
			if n == 0 {
				break
			}
			made++
		}
	}
	w.cfg.Logger.InfoContext(ctx, "paper batches made", "batches", made)
	return nil
}

// batch makes one batch of service's letters and returns how many letters
// it took: batched, or sent back to review when one cannot be made.
func (w *batchWorker) batch(ctx context.Context, service string) (int, error) {
	var letters int
	err := pgx.BeginFunc(ctx, w.cfg.Pool, func(tx pgx.Tx) error {
		pending, err := lockUnbatched(ctx, tx, service, w.cfg.MaxLetters)
		if err != nil || len(pending) == 0 {
			return err
		}
		letters = len(pending)
		printed, err := printedLetters(ctx, tx, pending)
		if err != nil {
			return err
		}
		pdfs := make([][]byte, 0, len(pending)+1)
		summary := make([]paper.SummaryLine, 0, len(pending))
		pages := make([]int, 0, len(pending))
		total := 0
		printable := pending[:0:0]
		var dups []duplicate
		for _, l := range pending {
			key, keyed := newLetterKey(l.DocumentID, l.Name, l.Address)
			if of, ok := printed[key]; keyed && ok {
				dups = append(dups, duplicate{DeliveryID: l.DeliveryID, Of: of})
				continue
			}
			pdf, n, err := renderLetter(w.cfg.Letterhead, l)
			if err != nil {
				// One letter that cannot be made must not stop the others:
				// it goes back to a secretary, with why.
				if err := dispatch.Transition(ctx, tx, l.DeliveryID, dispatch.StatusPaperPending, dispatch.StatusReview,
					dispatch.EventHeld, system, "courrier impossible à générer: "+letterProblem(err)); err != nil {
					return err
				}
				continue
			}
			printable = append(printable, l)
			pdfs = append(pdfs, pdf)
			pages = append(pages, n)
			total += n
			summary = append(summary, paper.SummaryLine{Reference: l.reference(), Name: l.Name, City: l.Address.City, Pages: n})
			if keyed {
				printed[key] = printedLetter{DeliveryID: l.DeliveryID, Position: len(printable)}
			}
		}
		if pending = printable; len(pending) == 0 {
			return cancelDuplicates(ctx, tx, dups, 0)
		}
		day := time.Now().In(dispatch.Zone)
		title := fmt.Sprintf("Lot du %s — %s", day.Format("02/01/2006"), serviceLabel(service))
		sheet, err := paper.RenderSummary(w.cfg.Letterhead, title, summary)
		if err != nil {
			return fmt.Errorf("summary sheet: %w", err)
		}
		all, err := paper.Merge(append([][]byte{sheet}, pdfs...)...)
		if err != nil {
			return fmt.Errorf("merge letters: %w", err)
		}
		b := Batch{Day: day, Service: service, Status: BatchReady, Sink: w.cfg.Sink.Name(), Letters: len(pending), Pages: total}
		ids := make([]int64, len(pending))
		for i, l := range pending {
			ids[i] = l.DeliveryID
		}
		if b.ID, err = insertBatch(ctx, tx, b, all, ids, pages, dups); err != nil {
			return err
		}
		if err := cancelDuplicates(ctx, tx, dups, b.ID); err != nil {
			return err
		}
		if err := dispatch.PutInBatch(ctx, tx, b.ID, ids); err != nil {
			return err
		}
		// The sink last: a refusal rolls the batch back, the job retries.
		posts, err := w.cfg.Sink.Submit(ctx, b, all)
		if err != nil {
			return fmt.Errorf("sink %s: %w", b.Sink, err)
		}
		if posts {
			return setBatchStatus(ctx, tx, b.ID, BatchSubmitted)
		}
		return nil
	})
	return letters, err
}

// letterKey is what makes two letters the same: the document they carry
// and what their envelope reads (see postal.Envelope).
type letterKey struct{ document, envelope string }

// newLetterKey returns the key of the letter of document to name at a;
// ok is false when it has none (no document, an address that cannot be
// posted): it is the same as no other.
func newLetterKey(document, name string, a postal.PostalAddress) (key letterKey, ok bool) {
	envelope, err := postal.Envelope(name, a)
	if document == "" || err != nil {
		return letterKey{}, false
	}
	return letterKey{document: document, envelope: envelope}, true
}

// printedLetter is a letter printed for a recipient and a document: in
// the batch being made at Position (from 1), else before, in BatchID (0
// when it was posted alone).
type printedLetter struct {
	DeliveryID int64
	BatchID    int64
	Position   int
}

// duplicate is a letter a batch does not print: it repeats Of.
type duplicate struct {
	DeliveryID int64
	Of         printedLetter
}

// detail says in the duplicate's history why it was not printed, in the
// batch batchID (0 when none was made).
func (d duplicate) detail(batchID int64) string {
	s := fmt.Sprintf("doublon de l'envoi n° %d (même destinataire, même document)", d.Of.DeliveryID)
	switch {
	case d.Of.Position > 0:
		return s + fmt.Sprintf(", imprimé une seule fois dans le lot n° %d", batchID)
	case d.Of.BatchID > 0:
		return s + fmt.Sprintf(", déjà imprimé dans le lot n° %d : pas imprimé une seconde fois", d.Of.BatchID)
	}
	return s + ", déjà posté : pas imprimé une seconde fois"
}

// cancelDuplicates cancels the letters dups, not printed in the batch batchID.
func cancelDuplicates(ctx context.Context, tx pgx.Tx, dups []duplicate, batchID int64) error {
	for _, d := range dups {
		if err := dispatch.Transition(ctx, tx, d.DeliveryID, dispatch.StatusPaperPending, dispatch.StatusCancelled,
			dispatch.EventCancelled, system, d.detail(batchID)); err != nil {
			return err
		}
	}
	return nil
}

// serviceLabel names a batch's service on its summary sheet.
func serviceLabel(service string) string {
	if service == "" {
		return "sans service"
	}
	return "service " + service
}

// letterFacts is what a delivery's letter prints.
type letterFacts struct {
	DeliveryID, ReportID int64
	Name                 string
	Address              postal.PostalAddress
	Patient              dispatch.Patient
	DocumentTitle        string
	Service              string
	ReceivedAt           time.Time
	PDF, CDA             []byte
	Purged               bool
	// DocumentID is the id of the report's document.
	DocumentID string
	// RecipientKind and Reason are the recipient's kind and why the letter
	// goes on paper; EmailStatus is the status of the recipient's MSSanté
	// delivery of the report, "" when there is none (see kind).
	RecipientKind string
	Reason        correspondents.Reason
	EmailStatus   dispatch.Status
}

// kind is what l's cover letter says of MSSanté: to a patient, of their
// own document; after an email that failed or was not acknowledged, that
// it came by MSSanté without a confirmation; with an email on its way or
// gone, that it is a paper copy; when paper was chosen though an address
// was known, nothing; and only when no MSSanté address is known, an
// invitation to open a mailbox.
func (l letterFacts) kind() paper.Kind {
	switch {
	case l.RecipientKind == dispatch.KindPatient:
		return paper.KindPatient
	case l.Reason == dispatch.ReasonFallbackPaper || l.EmailStatus == dispatch.StatusFailed:
		return paper.KindFallback
	case slices.Contains([]dispatch.Status{dispatch.StatusScheduled, dispatch.StatusQueued, dispatch.StatusSent, dispatch.StatusDelivered,
		dispatch.StatusRead}, l.EmailStatus):
		return paper.KindCopy
	case l.EmailStatus != "" || l.Reason == correspondents.ReasonLocalPaper:
		return paper.KindChosen
	}
	return paper.KindNoMailbox
}

// reference is the letter's reference: its delivery and report.
func (l letterFacts) reference() string {
	return fmt.Sprintf("Envoi %d / CR %d", l.DeliveryID, l.ReportID)
}

// letterProblem says in French why a letter could not be made.
func letterProblem(err error) string {
	switch {
	case errors.Is(err, ErrDocumentPurged):
		return "le document a été purgé, le redemander au DPI"
	case errors.Is(err, postal.ErrNotPostable):
		return "adresse postale incomplète"
	}
	return err.Error()
}

// ErrDocumentPurged is returned for a letter whose document the retention purged.
var ErrDocumentPurged = errors.New("the document was purged: ask the DPI to send it again")

// renderLetter renders the letter of l and returns it with its page count.
func renderLetter(lh paper.Letterhead, l letterFacts) ([]byte, int, error) {
	if l.Purged {
		return nil, 0, ErrDocumentPurged
	}
	letter := paper.Letter{Reference: l.reference(), Name: l.Name, Address: l.Address, Date: time.Now().In(dispatch.Zone),
		Patient: patientLine(l.Patient), DocumentTitle: l.DocumentTitle, Service: l.Service, ReportPDF: l.PDF, Kind: l.kind()}
	if len(l.PDF) == 0 {
		sections, err := cda.Text(l.CDA)
		if err != nil {
			return nil, 0, fmt.Errorf("report text: %w", err)
		}
		letter.ReportText = sections
	}
	return paper.Render(lh, letter)
}

// patientLine names the patient on a letter: "Mme DURAND Léa, née le 02/03/1975".
func patientLine(p dispatch.Patient) string {
	civility, born := "", "né(e)"
	switch p.Sex {
	case "F":
		civility, born = "Mme ", "née"
	case "M":
		civility, born = "M. ", "né"
	}
	s := civility + strings.TrimSpace(p.Family+" "+p.Given)
	if p.BirthDate != "" {
		s += ", " + born + " le " + p.DisplayBirthDate()
	}
	return s
}
