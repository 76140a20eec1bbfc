package letters

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/desk"
	"github.com/mssdispatch/mssdispatch/paper"
)

// TestLetterKind checks what each letter says of MSSanté (see
// paper.Kind): the invitation to open a mailbox goes only to a recipient
// no MSSanté address is known for; one who gets the email too gets a paper
// copy. Before, every letter carried the invitation.
func TestLetterKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		kind   string
		reason correspondents.Reason
		status dispatch.Status
		want   paper.Kind
	}{
		{"no address", dispatch.KindProfessional, correspondents.ReasonNoAddress, "", paper.KindNoMailbox},
		{"untrusted address", dispatch.KindProfessional, correspondents.ReasonUntrustedAddress, "", paper.KindNoMailbox},
		{"paper copy of an email sent", dispatch.KindProfessional, correspondents.ReasonPaperCopy, dispatch.StatusSent, paper.KindCopy},
		{"paper copy of an email read", dispatch.KindProfessional, correspondents.ReasonPaperCopy, dispatch.StatusRead, paper.KindCopy},
		{"paper copy of an email delayed by a rule", dispatch.KindProfessional, correspondents.ReasonPaperCopy, dispatch.StatusScheduled, paper.KindCopy},
		{"paper copy of an email held in review", dispatch.KindProfessional, correspondents.ReasonPaperCopy, dispatch.StatusReview, paper.KindChosen},
		{"a secretary's letter after the email left", dispatch.KindProfessional, desk.ReasonUserPaper, dispatch.StatusDelivered, paper.KindCopy},
		{"a secretary's letter instead of the email", dispatch.KindProfessional, desk.ReasonUserPaper, dispatch.StatusCancelled, paper.KindChosen},
		{"a secretary's letter after a failure", dispatch.KindProfessional, desk.ReasonUserPaper, dispatch.StatusFailed, paper.KindFallback},
		{"the rule's fallback", dispatch.KindProfessional, dispatch.ReasonFallbackPaper, dispatch.StatusSent, paper.KindFallback},
		{"the local directory says paper", dispatch.KindOrganisation, correspondents.ReasonLocalPaper, "", paper.KindChosen},
		{"an address completed by a secretary", dispatch.KindProfessional, desk.ReasonUserEdit, "", paper.KindNoMailbox},
		{"the patient", dispatch.KindPatient, correspondents.ReasonPatientNotQualified, "", paper.KindPatient},
	}
	for _, tt := range tests {
		l := letterFacts{RecipientKind: tt.kind, Reason: tt.reason, EmailStatus: tt.status}
		require.Equal(t, tt.want, l.kind(), tt.name)
	}
}
