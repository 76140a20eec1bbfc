package dispatch_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
)

// matrix is the matrix of MSSanté exchanges of the volet (règles de gestion
// MSSanté, release 2.1.3), a row a line, the values each flag may take,
// with one deviation: row 2 takes INVISIBLE_PATIENT and INVISIBLE_REP_LEGAUX
// either way (the volet writes Y and N), as its official MDM examples send
// to a professional alone with Y, Y (T02) and N, N (T10, T04).
var matrix = []map[string]string{
	{"MASQUE_PS": "N", "INVISIBLE_PATIENT": "N", "INVISIBLE_REP_LEGAUX": "N", "CONNEXION_SECRETE": "NY",
		"MODIF_CONF_CODE": "NY", "DESTDMP": "NY", "DESTMSSANTEPS": "Y", "DESTMSSANTEPAT": "Y"},
	{"MASQUE_PS": "N", "INVISIBLE_PATIENT": "NY", "INVISIBLE_REP_LEGAUX": "NY", "CONNEXION_SECRETE": "NY",
		"MODIF_CONF_CODE": "NY", "DESTDMP": "NY", "DESTMSSANTEPS": "Y", "DESTMSSANTEPAT": "N"},
	{"MASQUE_PS": "NY", "INVISIBLE_PATIENT": "N", "INVISIBLE_REP_LEGAUX": "NY", "CONNEXION_SECRETE": "N",
		"MODIF_CONF_CODE": "NY", "DESTDMP": "N", "DESTMSSANTEPS": "N", "DESTMSSANTEPAT": "Y"},
}

var flagCodes = []string{"MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REP_LEGAUX", "CONNEXION_SECRETE",
	"MODIF_CONF_CODE", "DESTDMP", "DESTMSSANTEPS", "DESTMSSANTEPAT"}

// TestFlagsMatrix checks Flags.Validate against every combination of the
// eight flags: allowed exactly when a row of the matrix has it, and a
// refusal names the flag at fault and the row the destination flags chose.
func TestFlagsMatrix(t *testing.T) {
	t.Parallel()
	for n := range 1 << len(flagCodes) {
		values := map[string]string{}
		f := dispatch.Flags{Present: true}
		set := []*bool{&f.MaskedForPros, &f.InvisiblePatient, &f.InvisibleGuardians, &f.SecretConnection,
			&f.ConfCodeChanged, &f.ToDMP, &f.ToProfessionals, &f.ToPatient}
		var desc []string
		for i, code := range flagCodes {
			values[code] = "N"
			if n&(1<<i) != 0 {
				values[code], *set[i] = "Y", true
			}
			desc = append(desc, code+"="+values[code])
		}
		allowed := false
		for _, row := range matrix {
			match := true
			for code, v := range values {
				match = match && strings.Contains(row[code], v)
			}
			allowed = allowed || match
		}
		err := f.Validate()
		name := strings.Join(desc, " ")
		if allowed {
			require.NoError(t, err, name)
			continue
		}
		var invalid *dispatch.InvalidError
		require.ErrorAs(t, err, &invalid, name)
		code := strings.TrimPrefix(invalid.Field, "flags.")
		require.Contains(t, flagCodes, code, name)
		require.Contains(t, invalid.Msg, code, name)
		switch {
		case f.ToProfessionals && f.ToPatient:
			require.Contains(t, invalid.Msg, "ligne 1", name)
		case f.ToProfessionals:
			require.Contains(t, invalid.Msg, "ligne 2", name)
		case f.ToPatient:
			require.Contains(t, invalid.Msg, "ligne 3", name)
		}
	}
	require.NoError(t, dispatch.Flags{}.Validate(), "no flags: the defaults apply")
	require.NoError(t, dispatch.DefaultFlags.Validate())
}
