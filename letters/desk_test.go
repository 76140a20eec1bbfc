package letters_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/internal/dispatchtest"
	"github.com/mssdispatch/mssdispatch/postal"
)

// TestLettersPDF: a selection of letters prints as one PDF, or not at all
// when one of them cannot be printed, saying which and why.
func TestLettersPDF(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	var letters []int64
	for _, name := range []string{"A", "B"} {
		r := dispatchtest.Report(t)
		dispatchtest.SetDocumentID(t, &r, r.Document.ID+"-"+name)
		letters = append(letters, b.waitLetters(t, b.Receive(t, r).ReportID, 1)[0].ID) // Claire's paper copy
	}
	pdf, refused, err := b.desk.LettersPDF(b.Ctx, "alice", letters)
	require.NoError(t, err)
	require.Empty(t, refused)
	one, err := b.desk.LetterPDF(b.Ctx, "test", letters[0])
	require.NoError(t, err)
	require.Greater(t, len(pdf), len(one), "both letters")
	records, err := audit.NewLog(b.Pool).Read(b.Ctx, audit.Filter{Actor: "alice", Action: "letter_printed"})
	require.NoError(t, err)
	require.Len(t, records, 2)

	_, err = b.Pool.Exec(b.Ctx, `UPDATE deliveries SET postal_address = '{}' WHERE id = $1`, letters[1])
	require.NoError(t, err)
	pdf, refused, err = b.desk.LettersPDF(b.Ctx, "alice", append(letters, 999999))
	require.NoError(t, err)
	require.Nil(t, pdf)
	require.ErrorIs(t, refused[letters[1]], postal.ErrNotPostable)
	require.ErrorIs(t, refused[999999], dispatch.ErrNotFound)
	require.NotContains(t, refused, letters[0])
	records, err = audit.NewLog(b.Pool).Read(b.Ctx, audit.Filter{Actor: "alice", Action: "letter_printed"})
	require.NoError(t, err)
	require.Len(t, records, 2, "nothing printed, nothing recorded")
}
