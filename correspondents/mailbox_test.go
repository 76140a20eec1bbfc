package correspondents

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseMailbox(t *testing.T) {
	t.Parallel()
	valid := map[string]string{
		"Julie.Roux@Medecin-Demo.MSSante.fr":     "julie.roux@medecin-demo.mssante.fr",
		"  dr@ch.mssante.fr ":                    "dr@ch.mssante.fr",
		"o'neil+cardio@ch.mssante.fr":            "o'neil+cardio@ch.mssante.fr",
		"279035121518989@patient.mssante.fr":     "279035121518989@patient.mssante.fr",
		"secretariat@hôpital-exemple.mssante.fr": "secretariat@xn--hpital-exemple-0ob.mssante.fr",
	}
	for in, want := range valid {
		got, err := ParseMailbox(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	invalid := map[string]string{
		"":                                  "vide",
		"julie.roux":                        "local@domaine",
		"@ch.mssante.fr":                    "local@domaine",
		"dr@":                               "local@domaine",
		"a@b@ch.mssante.fr":                 "plus d'un @",
		"addr\r\nbcc:evil@attacker.example": "U+000D",
		"addr bcc:evil@attacker.example":    "interdit avant @",
		`"dr x"@ch.mssante.fr`:              "interdit avant @",
		"Dr <dr@ch.mssante.fr>":             "interdit avant @",
		"dr..x@ch.mssante.fr":               "un point",
		".dr@ch.mssante.fr":                 "un point",
		"dr@localhost":                      "sans point",
		"dr@ch mssante.fr":                  "caractère de contrôle",
		"dr@ch.mssante.fr\x00":              "caractère de contrôle",
		"dr@-ch.mssante.fr":                 `invalid label "-ch"`,
		strings.Repeat("a", 65) + "@ch.mssante.fr": "plus de 64",
	}
	for in, want := range invalid {
		_, err := ParseMailbox(in)
		require.ErrorIs(t, err, ErrInvalidMailbox, "%q", in)
		require.Contains(t, err.Error(), want, "%q", in)
	}
}

// FuzzParseMailbox checks that what ParseMailbox accepts is one mailbox
// with nothing an email header could split on, and parses to itself.
func FuzzParseMailbox(f *testing.F) {
	for _, s := range []string{"dr@ch.mssante.fr", "a\r\nb@c.fr", "é@é.fr", "x@y", "o'neil+x@a-b.c.fr", `"x"@a.fr`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseMailbox(s)
		if err != nil {
			return
		}
		if strings.Count(got, "@") != 1 || strings.ContainsAny(got, " \t\r\n,;<>\"()[]\\:\x00") {
			t.Fatalf("ParseMailbox(%q) = %q", s, got)
		}
		again, err := ParseMailbox(got)
		if err != nil || again != got {
			t.Fatalf("ParseMailbox(%q) = %q, then %q, %v", s, got, again, err)
		}
	})
}
