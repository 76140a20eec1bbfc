package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/dispatch"
)

// ErrUnpackable is the failure of an email whose report's documents cannot
// be packaged: a stored CDA that cannot be read or made into IHE_XDM.ZIP, a
// PDF that cannot be taken out of it. The documents are what they are, no
// retry helps: the send worker fails the delivery and applies its fallback,
// as it does for an email the mail server refuses for good.
var ErrUnpackable = errors.New("document cannot be packaged")

// sendDocument is what a report's emails attach: its CDAs (one, or the
// same report in two formats), ready to be packaged together as
// IHE_XDM.ZIP for each recipient (none when the report has no CDA, a
// deletion without its CDA), the PDF of each (once when two are the same),
// and the type code of each for X-MSS-CODECDA.
type sendDocument struct {
	xdm   []*cda.XDMDocument
	pdfs  [][]byte
	codes []string
}

// prepareDocuments reads a report's stored documents once for all its
// emails: each CDA's PDF comes from the same read.
func prepareDocuments(stored []storedDocumentBytes) (sendDocument, error) {
	var out sendDocument
	for _, s := range stored {
		if len(s.cda) == 0 {
			continue
		}
		tree, err := cda.Read(s.cda)
		if err != nil {
			return sendDocument{}, err
		}
		pdf, err := dispatch.StoredPDF(s.pdf, s.inCDA, tree.PDF)
		if err != nil {
			return sendDocument{}, err
		}
		xdm, err := tree.XDM()
		if err != nil {
			return sendDocument{}, err
		}
		out.xdm = append(out.xdm, xdm)
		out.codes = append(out.codes, xdm.Header().Code.Code)
		if len(pdf) > 0 && !slices.ContainsFunc(out.pdfs, func(p []byte) bool { return bytes.Equal(p, pdf) }) {
			out.pdfs = append(out.pdfs, pdf)
		}
	}
	return out, nil
}

// documentCacheSize is how many reports' documents a send worker keeps: a
// report's emails are sent within moments of each other, and an entry
// holds about a compressed CDA and a PDF (≈ 200 kB for a 100 kB PDF).
const documentCacheSize = 32

// documentCache keeps the last reports' sendDocuments, so that a report's
// emails (three in the load test) load its CDA and PDF from PostgreSQL, and
// parse and compress the CDA, once instead of once each. A document does not
// change once stored (retention purges only reports with nothing left to
// send), so an entry is never stale; the oldest goes first.
type documentCache struct {
	mu      sync.Mutex
	entries map[int64]*cachedDocument
	order   []int64 // report ids, oldest first
}

// cachedDocument is loaded once by the first send that asks for it; the
// others wait for it.
type cachedDocument struct {
	once sync.Once
	doc  sendDocument
	err  error
}

// get returns the sendDocument of report reportID, loading it from q when
// it is not kept. A failed load is not kept: the next send tries again.
func (c *documentCache) get(ctx context.Context, q dispatch.DB, reportID int64) (sendDocument, error) {
	c.mu.Lock()
	if c.entries == nil {
		c.entries = make(map[int64]*cachedDocument, documentCacheSize)
	}
	e, ok := c.entries[reportID]
	if !ok {
		if len(c.order) == documentCacheSize {
			delete(c.entries, c.order[0])
			c.order = c.order[1:]
		}
		e = &cachedDocument{}
		c.entries[reportID] = e
		c.order = append(c.order, reportID)
	}
	c.mu.Unlock()
	e.once.Do(func() { e.doc, e.err = loadSendDocument(ctx, q, reportID) })
	if e.err != nil {
		c.mu.Lock()
		if c.entries[reportID] == e {
			delete(c.entries, reportID)
			c.order = slices.DeleteFunc(c.order, func(id int64) bool { return id == reportID })
		}
		c.mu.Unlock()
	}
	return e.doc, e.err
}

// loadSendDocument loads and prepares report reportID's documents. A CDA
// that cannot be packaged is an ErrUnpackable.
func loadSendDocument(ctx context.Context, q dispatch.DB, reportID int64) (sendDocument, error) {
	stored, err := loadDocuments(ctx, q, reportID)
	if err != nil {
		return sendDocument{}, err
	}
	doc, err := prepareDocuments(stored)
	if err != nil {
		return sendDocument{}, fmt.Errorf("%w: IHE_XDM.ZIP: %w", ErrUnpackable, err)
	}
	return doc, nil
}
