package dispatch

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWrapPDFAuthor checks the author id of the CDA around a bare PDF: the
// national id of the author's RPPS, and only of an RPPS.
func TestWrapPDFAuthor(t *testing.T) {
	t.Parallel()
	pdf, err := os.ReadFile("../cda/testdata/sample.pdf")
	require.NoError(t, err)
	s := &Service{custodian: Organisation{FINESS: "999000001", Name: "CH DEMO"}}
	r := Report{Document: Document{ID: "1.2.250.1.999.1^42", Code: "11490-0", Title: "Lettre de sortie", PDF: pdf},
		Patient: Patient{INS: "279035121518989", INSOID: "1.2.250.1.213.1.4.8"},
		Author:  Recipient{Family: "DUPONT-DEMO", RPPS: "10001234567"}}
	out, err := s.wrapPDF(r, time.Now())
	require.NoError(t, err)
	require.Contains(t, string(out), `root="1.2.250.1.71.4.2.1" extension="810001234567"`)

	for _, rpps := range []string{"", "1000123456", "810001234567", "1000123456X"} {
		r.Author.RPPS = rpps
		_, err := s.wrapPDF(r, time.Now())
		var invalid *InvalidError
		require.ErrorAs(t, err, &invalid, "RPPS %q", rpps)
		require.Equal(t, "author.rpps", invalid.Field)
	}
}
