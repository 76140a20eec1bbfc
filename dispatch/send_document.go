package dispatch

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
)

// sendDocument is what a report's emails attach: its CDA ready to be packaged
// as IHE_XDM.ZIP for each recipient (nil when the report has none, a deletion
// without its CDA) and its PDF.
type sendDocument struct {
	xdm *cda.XDMDocument
	pdf []byte
}

// prepareDocument reads a report's CDA once for all its emails, with
// storedPDF's arguments pdf and inCDA: the CDA's PDF comes from the same
// read.
func prepareDocument(cdaDoc, pdf []byte, inCDA bool) (sendDocument, error) {
	if len(cdaDoc) == 0 {
		return sendDocument{pdf: pdf}, nil
	}
	tree, err := cda.Read(cdaDoc)
	if err != nil {
		return sendDocument{}, err
	}
	if pdf, err = storedPDF(pdf, inCDA, tree.PDF); err != nil {
		return sendDocument{}, err
	}
	xdm, err := tree.XDM()
	return sendDocument{xdm: xdm, pdf: pdf}, err
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
func (c *documentCache) get(ctx context.Context, q dbtx, reportID int64) (sendDocument, error) {
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

// loadSendDocument loads and prepares report reportID's document. A CDA
// that cannot be packaged is a *mail.PermanentError: no retry helps.
func loadSendDocument(ctx context.Context, q dbtx, reportID int64) (sendDocument, error) {
	cdaDoc, pdf, inCDA, err := loadDocument(ctx, q, reportID)
	if err != nil {
		return sendDocument{}, err
	}
	doc, err := prepareDocument(cdaDoc, pdf, inCDA)
	if err != nil {
		return sendDocument{}, &mail.PermanentError{Err: fmt.Errorf("IHE_XDM.ZIP: %w", err)}
	}
	return doc, nil
}
