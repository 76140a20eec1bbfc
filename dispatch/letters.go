package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/mssdispatch/mssdispatch/paper"
	"github.com/mssdispatch/mssdispatch/postal"
)

// LettersPDF renders the letters of the paper deliveries ids, in order, as
// one PDF to print (each reading in the audit log, in the name of viewer).
// It renders nothing when one of them cannot be printed: refused maps each
// such delivery to why (ErrNotFound: not a letter, postal.ErrNotPostable:
// its address is incomplete, ErrDocumentPurged), so that the secretary
// fixes or leaves it out and nobody posts half a selection unknowingly.
func (s *Service) LettersPDF(ctx context.Context, viewer string, ids []int64) (pdf []byte, refused map[int64]error, err error) {
	if len(ids) == 0 {
		return nil, nil, fmt.Errorf("%w: no letter to print", ErrNotFound)
	}
	refused = map[int64]error{}
	for _, id := range ids {
		l, err := loadLetter(ctx, s.pool, id)
		switch {
		case errors.Is(err, ErrNotFound):
			refused[id] = err
		case err != nil:
			return nil, nil, err
		case l.Purged:
			refused[id] = ErrDocumentPurged
		case !l.Address.Known():
			refused[id] = postal.ErrNotPostable
		}
	}
	if len(refused) > 0 {
		return nil, refused, nil
	}
	letters := make([][]byte, len(ids))
	for i, id := range ids {
		if letters[i], err = s.LetterPDF(ctx, viewer, id); err != nil {
			return nil, nil, err
		}
	}
	pdf, err = paper.Merge(letters...)
	return pdf, nil, err
}
