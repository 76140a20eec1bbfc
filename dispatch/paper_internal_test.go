package dispatch

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/paper"
)

// TestLetterKind checks what each letter says of MSSanté (see
// paper.Kind): the invitation to open a mailbox goes only to a recipient
// no MSSanté address is known for; one who gets the email too gets a paper
// copy. Before, every letter carried the invitation.
func TestLetterKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		kind, reason, status string
		want                 paper.Kind
	}{
		{"no address", KindProfessional, correspondents.ReasonNoAddress, "", paper.KindNoMailbox},
		{"untrusted address", KindProfessional, correspondents.ReasonUntrustedAddress, "", paper.KindNoMailbox},
		{"paper copy of an email sent", KindProfessional, correspondents.ReasonPaperCopy, StatusSent, paper.KindCopy},
		{"paper copy of an email read", KindProfessional, correspondents.ReasonPaperCopy, StatusRead, paper.KindCopy},
		{"paper copy of an email delayed by a rule", KindProfessional, correspondents.ReasonPaperCopy, StatusScheduled, paper.KindCopy},
		{"paper copy of an email held in review", KindProfessional, correspondents.ReasonPaperCopy, StatusReview, paper.KindChosen},
		{"a secretary's letter after the email left", KindProfessional, ReasonUserPaper, StatusDelivered, paper.KindCopy},
		{"a secretary's letter instead of the email", KindProfessional, ReasonUserPaper, StatusCancelled, paper.KindChosen},
		{"a secretary's letter after a failure", KindProfessional, ReasonUserPaper, StatusFailed, paper.KindFallback},
		{"the rule's fallback", KindProfessional, ReasonFallbackPaper, StatusSent, paper.KindFallback},
		{"the local directory says paper", KindOrganisation, correspondents.ReasonLocalPaper, "", paper.KindChosen},
		{"an address completed by a secretary", KindProfessional, ReasonUserEdit, "", paper.KindNoMailbox},
		{"the patient", KindPatient, correspondents.ReasonPatientNotQualified, "", paper.KindPatient},
	}
	for _, tt := range tests {
		l := letterFacts{RecipientKind: tt.kind, Reason: tt.reason, EmailStatus: tt.status}
		require.Equal(t, tt.want, l.kind(), tt.name)
	}
}
