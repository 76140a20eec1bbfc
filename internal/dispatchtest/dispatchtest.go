// Package dispatchtest runs the domain (package dispatch) for the tests of
// dispatch and of the packages beside it (letters): a fresh database
// holding the demo directory, the workers (package dispatch/worker), the
// River queue and a Service (Start), and the report they receive (Report,
// Receive).
package dispatchtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/worker"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/internal/queuetest"
	"github.com/mssdispatch/mssdispatch/queue"
)

// Sender is the BAL applicative the workers send from.
const Sender = "bal-applicative@ch-demo.mssante.fr"

// Env is the domain running for a test.
type Env struct {
	Ctx      context.Context
	Pool     *pgxpool.Pool
	Service  *dispatch.Service
	Client   *queue.Client
	Registry *prometheus.Registry // the workers' metrics
}

// Start starts the domain's workers on a fresh database holding the demo
// directory, sending through transport: more, when not nil, registers
// more workers before the queue starts; configure may change the workers'
// configuration.
func Start(t *testing.T, transport mail.Transport, more func(*river.Workers, *pgxpool.Pool, prometheus.Registerer),
	configure ...func(*worker.WorkerConfig)) *Env {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := correspondents.NewStore(pool)
	_, err := store.ImportDirectoryFrom(ctx, file("testdata/demo/Extraction_Correspondance_MSSante.txt"), correspondents.ImportOptions{})
	require.NoError(t, err)
	_, err = store.ImportWhitelist(ctx, "demo", []string{"medecin-demo.mssante.fr", "ch-demo.mssante.fr"}, correspondents.ImportOptions{})
	require.NoError(t, err)

	workers := river.NewWorkers()
	registry := prometheus.NewRegistry()
	resolver := correspondents.NewResolver(store)
	quiet := slog.New(slog.DiscardHandler)
	cfg := worker.WorkerConfig{
		Pool: pool, Resolver: resolver, Transport: transport, Sender: Sender, Registerer: registry, Logger: quiet,
	}
	for _, c := range configure {
		c(&cfg)
	}
	require.NoError(t, worker.AddWorkers(workers, cfg))
	if more != nil {
		more(workers, pool, registry)
	}
	client := queuetest.Start(t, pool, workers)
	svc, err := dispatch.NewService(dispatch.ServiceConfig{Pool: pool, Jobs: client, Resolver: resolver, Logger: quiet})
	require.NoError(t, err)
	return &Env{Ctx: ctx, Pool: pool, Service: svc, Client: client, Registry: registry}
}

// file is the path of name, a path from the module's root.
func file(name string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..", filepath.FromSlash(name))
}

// Report is a report carrying the cda package's level-1 sample, listing
// a correspondent known by RPPS, one with a trusted address from the DPI, and
// one the directory knows twice.
func Report(t *testing.T) dispatch.Report {
	t.Helper()
	doc, err := os.ReadFile(file("cda/testdata/n1-pdf.xml"))
	require.NoError(t, err)
	header, err := cda.Parse(doc)
	require.NoError(t, err)
	pdf, err := cda.ExtractPDF(doc)
	require.NoError(t, err)
	return dispatch.Report{
		Action:   dispatch.ActionNew,
		Flags:    dispatch.DefaultFlags,
		Patient:  dispatch.Patient{Family: "DUPONT", Given: "Marie", BirthDate: "19800115", Sex: "F", INS: "280017512345678", INSOID: "1.2.250.1.213.1.4.10", IPP: "IPP1"},
		Document: dispatch.Document{ID: header.UniqueID(), Code: header.Code.Code, Title: header.Title, CDA: doc, PDF: pdf},
		Recipients: []dispatch.Recipient{
			{Role: "RCT", Kind: dispatch.KindProfessional, NationalID: "899900000002", RPPS: "99900000002", Family: "DUPONT-DEMO", Given: "Claire"},
			{Role: "RCT", Kind: dispatch.KindProfessional, NationalID: "899900000007", RPPS: "99900000007", Family: "ROUX", Given: "Julie", Address: "julie.roux@medecin-demo.mssante.fr"},
			{Role: "RCT", Kind: dispatch.KindProfessional, NationalID: "899900000001", RPPS: "99900000001", Family: "MARTIN", Given: "Jean"},
		},
	}
}

// documentIDElement is the ClinicalDocument/id of a CDA: its first id.
var documentIDElement = regexp.MustCompile(`<id root="[^"]*"(?: extension="[^"]*")?/>`)

// SetDocumentID gives r's document the id id (root^extension), in the
// report and in its CDA: another document.
func SetDocumentID(t *testing.T, r *dispatch.Report, id string) {
	t.Helper()
	root, ext, _ := strings.Cut(id, "^")
	element := `<id root="` + root + `"`
	if ext != "" {
		element += ` extension="` + ext + `"`
	}
	loc := documentIDElement.FindIndex(r.Document.CDA)
	require.NotNil(t, loc, "the CDA has an id")
	r.Document.CDA = slices.Concat(r.Document.CDA[:loc[0]], []byte(element+"/>"), r.Document.CDA[loc[1]:])
	r.Document.ID = id
}

// Inbound is the message that carried a report with controlID and content.
func Inbound(controlID, content string) dispatch.Inbound {
	return dispatch.Inbound{Kind: "hl7", Source: "mllp", SendingApplication: "DPI", SendingFacility: "CH",
		ControlID: controlID, MessageType: "ORU^R01", Fingerprint: []byte(content)}
}

// Respond answers a report with "ACK <id>".
func Respond(id int64, _ string, _ time.Time, _ []dispatch.Warning) []byte {
	return fmt.Appendf(nil, "ACK %d", id)
}

// Receive stores r as a message keyed by its action and document.
func (e *Env) Receive(t *testing.T, r dispatch.Report) dispatch.Receipt {
	t.Helper()
	key := string(r.Action) + " " + r.Document.ID
	rc, err := e.Service.Receive(e.Ctx, Inbound(key, key), r, Respond)
	require.NoError(t, err)
	return rc
}

// WaitReport waits until the report satisfies cond, described by what. The
// minute it allows is for loaded machines (a package's tests at once on two
// CPUs took more than 20 seconds for a few jobs); it costs nothing when cond
// comes true, as it does in well under a second on an idle one.
func (e *Env) WaitReport(t *testing.T, reportID int64, what string, cond func(dispatch.ReportView) bool) dispatch.ReportView {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		v, err := e.Service.Report(e.Ctx, "test", reportID)
		require.NoError(t, err)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("report %d: want %s, have %+v", reportID, what, v.Deliveries)
		}
	}
}
