package correspondents

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
)

func TestLocalCorrespondents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := NewStore(pgtest.NewPool(t))

	c, err := store.SaveLocal(ctx, LocalCorrespondent{NationalID: " 899900000002 ", Family: "Dupont-Démo", Given: "Claire",
		MSSanteAddress: "Claire.Dupont@Medecin-Demo.MSSante.fr", Preference: PreferenceBoth,
		PostalAddress: PostalAddress{Lines: []string{"8 B BD DU TEST"}, PostalCode: "33000", City: "BORDEAUX"}}, "secretaire1")
	require.NoError(t, err)
	require.NotZero(t, c.ID)
	require.Equal(t, "899900000002", c.NationalID)
	require.Equal(t, "claire.dupont@medecin-demo.mssante.fr", c.MSSanteAddress)
	require.Equal(t, "secretaire1", c.UpdatedBy)
	require.False(t, c.UpdatedAt.IsZero())

	known, err := store.Know(ctx, []Recipient{{NationalID: "899900000002"}, {NationalID: "899900000003"}})
	require.NoError(t, err)
	got, ok := known.Local("899900000002", "")
	require.True(t, ok)
	require.Equal(t, c, got)
	_, ok = known.Local("899900000003", "")
	require.False(t, ok)

	org, err := store.SaveLocal(ctx, LocalCorrespondent{FINESS: "999000017", Organisation: "Centre hospitalier démo"}, "admin")
	require.NoError(t, err)
	require.Equal(t, PreferenceDirectory, org.Preference, "the default preference")
	known, err = store.Know(ctx, []Recipient{{FINESS: "999000017"}})
	require.NoError(t, err)
	got, ok = known.Local("", "999000017")
	require.True(t, ok)
	require.Equal(t, org.ID, got.ID)

	// Search by name prefix, whatever the accents and case, and by identifier.
	for q, want := range map[string][]int64{
		"dupont demo": {c.ID}, "DUPONT-DÉMO CL": {c.ID}, "centre hosp": {org.ID}, "899900000002": {c.ID},
		"999000017": {org.ID}, "": {org.ID, c.ID}, "martin": nil,
	} {
		list, err := store.ListLocal(ctx, q, 10)
		require.NoError(t, err, q)
		var ids []int64
		for _, l := range list {
			ids = append(ids, l.ID)
		}
		require.Equal(t, want, ids, q)
	}

	// Update, conflict, not found, delete.
	c.Preference = PreferencePaper
	updated, err := store.SaveLocal(ctx, c, "secretaire2")
	require.NoError(t, err)
	require.Equal(t, PreferencePaper, updated.Preference)
	require.Equal(t, "secretaire2", updated.UpdatedBy)
	_, err = store.SaveLocal(ctx, LocalCorrespondent{NationalID: "899900000002", Family: "Autre"}, "x")
	require.ErrorIs(t, err, ErrConflict)
	_, err = store.SaveLocal(ctx, LocalCorrespondent{ID: 999, NationalID: "899900000009", Family: "X"}, "x")
	require.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, store.DeleteLocal(ctx, c.ID, "secretaire2"))
	require.ErrorIs(t, store.DeleteLocal(ctx, c.ID, "x"), ErrNotFound)
	_, err = store.Local(ctx, c.ID)
	require.ErrorIs(t, err, ErrNotFound)

	// Every change is in the audit log, with the fields before and after;
	// the refused ones are not.
	records, err := audit.NewLog(store.pool).Read(ctx, audit.Filter{})
	require.NoError(t, err)
	var trail []string
	for _, r := range records {
		trail = append(trail, r.Actor+" "+r.Action+" "+r.Detail)
	}
	require.Equal(t, []string{
		"secretaire2 correspondent_deleted supprimé : identifiant national 899900000002 ; nom Dupont-Démo ; prénom Claire ; " +
			"adresse MSSanté claire.dupont@medecin-demo.mssante.fr ; adresse postale 8 B BD DU TEST, 33000 BORDEAUX ; préférence paper",
		"secretaire2 correspondent_changed préférence : both → paper",
		"admin correspondent_created créé : FINESS 999000017 ; organisation Centre hospitalier démo ; préférence directory",
		"secretaire1 correspondent_created créé : identifiant national 899900000002 ; nom Dupont-Démo ; prénom Claire ; " +
			"adresse MSSanté claire.dupont@medecin-demo.mssante.fr ; adresse postale 8 B BD DU TEST, 33000 BORDEAUX ; préférence both",
	}, trail)
}

func TestLocalProposals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := NewStore(pgtest.NewPool(t))
	c, err := store.SaveLocal(ctx, LocalCorrespondent{NationalID: "899900000002", Family: "DUPONT-DEMO", Given: "Claire",
		MSSanteAddress: "claire@medecin-demo.mssante.fr"}, "admin")
	require.NoError(t, err)

	// A secretary proposes: nothing changes until approved.
	changed := c
	changed.MSSanteAddress = "cabinet@medecin-demo.mssante.fr"
	p, err := store.ProposeLocal(ctx, changed, "alice", "nouvelle adresse du cabinet")
	require.NoError(t, err)
	require.Equal(t, ProposalPending, p.Status)
	require.Equal(t, "adresse MSSanté : claire@medecin-demo.mssante.fr → cabinet@medecin-demo.mssante.fr", p.Changes())
	now, err := store.Local(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, "claire@medecin-demo.mssante.fr", now.MSSanteAddress)
	fresh, err := store.ProposeLocal(ctx, LocalCorrespondent{FINESS: "999000025", Organisation: "Clinique"}, "alice", "")
	require.NoError(t, err)
	require.Equal(t, "nouveau : FINESS 999000025 ; organisation Clinique ; préférence directory", fresh.Changes())
	var invalid *ValidationError
	_, err = store.ProposeLocal(ctx, LocalCorrespondent{NationalID: "1", Family: "X"}, "alice", "")
	require.ErrorAs(t, err, &invalid)
	_, err = store.ProposeLocal(ctx, LocalCorrespondent{ID: 999, NationalID: "899900000009", Family: "X"}, "alice", "")
	require.ErrorIs(t, err, ErrNotFound)

	pending, err := store.LocalProposals(ctx, ProposalFilter{Status: ProposalPending})
	require.NoError(t, err)
	require.Len(t, pending, 2)
	require.Equal(t, fresh.ID, pending[0].ID)
	require.Equal(t, "claire@medecin-demo.mssante.fr", pending[1].Current.MSSanteAddress)

	// The admin applies one and rejects the other; a decided one stays decided.
	applied, err := store.ApplyProposal(ctx, p.ID, "root")
	require.NoError(t, err)
	require.Equal(t, "cabinet@medecin-demo.mssante.fr", applied.MSSanteAddress)
	require.Equal(t, "root", applied.UpdatedBy)
	require.NoError(t, store.RejectProposal(ctx, fresh.ID, "root", "doublon"))
	_, err = store.ApplyProposal(ctx, fresh.ID, "root")
	require.ErrorIs(t, err, ErrDecided)
	require.ErrorIs(t, store.RejectProposal(ctx, p.ID, "root", ""), ErrDecided)
	mine, err := store.LocalProposals(ctx, ProposalFilter{ProposedBy: "alice"})
	require.NoError(t, err)
	require.Equal(t, []string{ProposalRejected, ProposalApplied}, []string{mine[0].Status, mine[1].Status})
	require.Equal(t, "doublon", mine[0].Decision)

	records, err := audit.NewLog(store.pool).Read(ctx, audit.Filter{})
	require.NoError(t, err)
	var trail []string
	for _, r := range records {
		trail = append(trail, r.Actor+" "+r.Action)
	}
	require.Equal(t, []string{"root correspondent_proposal_rejected", "root correspondent_changed",
		"alice correspondent_proposed", "alice correspondent_proposed", "admin correspondent_created"}, trail)
	require.Contains(t, records[1].Detail, "(proposition n° ")
}

func TestLocalCorrespondentValidation(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		c     LocalCorrespondent
		field string
	}{
		{LocalCorrespondent{Family: "X"}, "national_id"},
		{LocalCorrespondent{NationalID: "99900000002", Family: "X"}, "national_id"}, // the RPPS without its 8
		{LocalCorrespondent{NationalID: "0999000001", Family: "X"}, ""},             // ADELI
		{LocalCorrespondent{FINESS: "99900001", Organisation: "X"}, "finess"},
		{LocalCorrespondent{FINESS: "2A0000012", Organisation: "Corse"}, ""},
		{LocalCorrespondent{NationalID: "899900000002"}, "family"},
		{LocalCorrespondent{NationalID: "899900000002", Family: "X", Preference: "fax"}, "preference"},
		{LocalCorrespondent{NationalID: "899900000002", Family: "X", MSSanteAddress: "not-an-address"}, "mssante_address"},
	} {
		err := tt.c.normalise()
		if tt.field == "" {
			require.NoError(t, err, "%+v", tt.c)
			continue
		}
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, "%+v", tt.c)
		require.Equal(t, tt.field, ve.Field)
		require.NotEmpty(t, ve.Msg)
	}
}
