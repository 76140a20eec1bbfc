package correspondents

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

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

	got, ok, err := store.LocalFor(ctx, "899900000002", "")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, c, got)
	_, ok, err = store.LocalFor(ctx, "899900000003", "")
	require.NoError(t, err)
	require.False(t, ok)

	org, err := store.SaveLocal(ctx, LocalCorrespondent{FINESS: "999000017", Organisation: "Centre hospitalier démo"}, "admin")
	require.NoError(t, err)
	require.Equal(t, PreferenceDirectory, org.Preference, "the default preference")
	got, ok, err = store.LocalFor(ctx, "", "999000017")
	require.NoError(t, err)
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
	require.NoError(t, store.DeleteLocal(ctx, c.ID))
	require.ErrorIs(t, store.DeleteLocal(ctx, c.ID), ErrNotFound)
	_, err = store.Local(ctx, c.ID)
	require.ErrorIs(t, err, ErrNotFound)
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
