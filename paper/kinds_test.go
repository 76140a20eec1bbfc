package paper_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/paper"
	"github.com/mssdispatch/mssdispatch/postal"
)

// TestRenderCoverKinds checks what the cover letter of each kind says: only
// a recipient without an MSSanté mailbox is invited to open one; a paper
// copy says the document came by MSSanté too; a patient gets their own
// document, not one about "your patient". Before, every letter invited its
// recipient to open an MSSanté mailbox, also the one who had just been sent
// the document by MSSanté.
func TestRenderCoverKinds(t *testing.T) {
	t.Parallel()
	const (
		invitation = "il vous suffit de disposer d'une boîte aux lettres MSSanté publiée dans l'Annuaire Santé"
		paperCopy  = "Ce document vous est également adressé par messagerie sécurisée de santé (MSSanté) : ce courrier en est la copie papier."
		fallback   = "sans que nous ayons la confirmation que vous l'avez reçu : nous vous l'adressons aussi par courrier."
		aboutYours = "concernant votre patient(e) Mme DURAND Léa"
		yours      = "Veuillez trouver ci-joint votre document « Compte rendu d'imagerie médicale », transmis par le service Cœur et vaisseaux."
	)
	tests := []struct {
		kind      paper.Kind
		says      []string
		doesNot   []string
		mentionsM bool // mentions MSSanté at all
	}{
		{paper.KindNoMailbox, []string{invitation, aboutYours}, []string{paperCopy, fallback, yours}, true},
		{paper.KindCopy, []string{paperCopy, aboutYours}, []string{invitation, fallback, yours}, true},
		{paper.KindFallback, []string{fallback, "Si votre adresse MSSanté a changé, merci de la mettre à jour dans l'Annuaire Santé.", aboutYours},
			[]string{invitation, paperCopy, yours}, true},
		{paper.KindChosen, []string{aboutYours}, []string{invitation, paperCopy, fallback, yours}, false},
		{paper.KindPatient, []string{yours}, []string{invitation, paperCopy, fallback, "votre patient"}, false},
	}
	for _, tt := range tests {
		l := letter("Dr Zoé LŒUVRE", postal.PostalAddress{Lines: []string{"12 rue de l'Église"}, PostalCode: "69130", City: "Écully"})
		l.Kind = tt.kind
		pdf, pages, err := paper.Render(letterhead(t), l)
		require.NoError(t, err)
		require.Equal(t, 2, pages, "kind %d: the cover letter holds on one page", tt.kind)
		text := strings.Join(strings.Fields(pageText(t, pdf, 1)), " ")
		for _, want := range append(tt.says, "Madame, Monsieur,", "salutations distinguées.") {
			require.Contains(t, text, want, "kind %d", tt.kind)
		}
		for _, not := range tt.doesNot {
			require.NotContains(t, text, not, "kind %d", tt.kind)
		}
		require.Equal(t, tt.mentionsM, strings.Contains(text, "MSSanté"), "kind %d", tt.kind)
	}
}
