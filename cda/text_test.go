package cda_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/cda"
)

// TestText checks the narrative of a level 3 document using every block
// of the CDA narrative.
func TestText(t *testing.T) {
	t.Parallel()
	got, err := cda.Text(readTestdata(t, "cr-imagerie-n3.xml"))
	require.NoError(t, err)
	want := []cda.TextSection{
		{Title: "Indication", Paragraphs: []string{
			"Douleur thoracique atypique.",
			"Suspicion d'œdème pulmonaire (données de test).",
		}},
		{Title: "Technique", Paragraphs: []string{
			"Scanner thoracique avec injection, 80 mL d'iode à 350 mg/mL.",
			"PDL : 420 mGy·cm ; CO2 ; 103 images.",
			"Coupe axiale",
		}},
		{Title: "Résultats", Paragraphs: []string{
			"Constatations",
			"• Pas d'embolie pulmonaire.",
			"• Épanchement pleural",
			"  • droit : minime",
			"  • gauche : absent",
			"• Cœur de taille normale.",
			"Mesures",
			"Structure | Mesure | Référence",
			"Mesures en mm",
			"Aorte ascendante | 32 | < 40",
			"Tronc de l'artère pulmonaire | 24 | < 29",
			"Index cardiothoracique 0,45.",
		}},
		{Title: "Comparaison", Depth: 1, Paragraphs: []string{"Examen du 12/05/2026 : stable."}},
		{Title: "Conclusion", Paragraphs: []string{
			"1. Pas d'embolie pulmonaire.",
			"2. Minime épanchement pleural droit, à contrôler dans 3 mois (« suivi »).",
		}},
		{Paragraphs: []string{"Compte rendu validé électroniquement."}},
	}
	require.Equal(t, want, got)
}

// TestTextCases checks the narrative of small documents, one rule each.
func TestTextCases(t *testing.T) {
	t.Parallel()
	section := func(s string) string { return `<component><section>` + s + `</section></component>` }
	for _, tt := range []struct {
		name string
		body string
		want []cda.TextSection
	}{
		{
			name: "empty structuredBody",
			body: `<structuredBody/>`,
			want: nil,
		},
		{
			name: "title only",
			body: `<structuredBody>` + section(`<title> Antécédents <content>familiaux</content><br/>et personnels </title>`) + `</structuredBody>`,
			want: []cda.TextSection{{Title: "Antécédents familiaux et personnels"}},
		},
		{
			name: "item with paragraphs keeps its bullet on the first",
			body: `<structuredBody>` + section(`<title>T</title><text><list><item><paragraph/><paragraph>un</paragraph><paragraph>deux</paragraph></item><item>trois</item></list>après</text>`) + `</structuredBody>`,
			want: []cda.TextSection{{Title: "T", Paragraphs: []string{"• un", "deux", "• trois", "après"}}},
		},
		{
			name: "rows directly under table, cell with a list",
			body: `<structuredBody>` + section(`<text><table><tr><th>A</th><td><list><item>x</item><item>y</item></list></td></tr></table></text>`) + `</structuredBody>`,
			want: []cda.TextSection{{Paragraphs: []string{"A | • x • y"}}},
		},
		{
			name: "table in a cell",
			body: `<structuredBody>` + section(`<text><table><tbody><tr><td>A</td><td><table><tr><th>x</th><td>y<br/>z</td></tr><tr><td>w</td></tr></table></td></tr></tbody></table></text>`) + `</structuredBody>`,
			want: []cda.TextSection{{Paragraphs: []string{"A | x y z w"}}},
		},
		{
			name: "foreign markup keeps its text, comments dropped",
			body: `<structuredBody>` + section(`<text>a<x:b xmlns:x="urn:other">b</x:b><!-- hidden -->c</text>`) + `</structuredBody>`,
			want: []cda.TextSection{{Paragraphs: []string{"abc"}}},
		},
		{
			name: "deeply nested sections",
			body: `<structuredBody>` + section(`<title>1</title>`+section(`<title>1.1</title>`+section(`<title>1.1.1</title>`))) + section(`<title>2</title>`) + `</structuredBody>`,
			want: []cda.TextSection{{Title: "1"}, {Title: "1.1", Depth: 1}, {Title: "1.1.1", Depth: 2}, {Title: "2"}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := cda.Text(minimal(minimalID, tt.body))
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// TestTextGolden compares the narrative of every level 3 testdata
// document, as JSON, with testdata/golden/<name>.text.json; -update
// rewrites them.
func TestTextGolden(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"cr-bio-n3.xml", "cr-imagerie-n3.xml", "ldl-ses-n3.xml", "n3-pdf-media.xml"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sections, err := cda.Text(readTestdata(t, name))
			require.NoError(t, err)
			require.NotEmpty(t, sections)
			got, err := json.MarshalIndent(sections, "", "  ")
			require.NoError(t, err)
			got = append(got, '\n')
			golden := filepath.Join("testdata", "golden", strings.TrimSuffix(name, ".xml")+".text.json")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./cda -run TestTextGolden -update")
			require.Equal(t, string(want), string(got))
		})
	}
}

func TestTextErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		data []byte
		is   error
	}{
		{"level 1", readTestdata(t, "n1-pdf.xml"), cda.ErrNoStructuredBody},
		{"level 1 without PDF", readTestdata(t, "n1-not-pdf.xml"), cda.ErrNoStructuredBody},
		{"no body", minimal(minimalID, ""), cda.ErrNoStructuredBody},
		{"not CDA", readTestdata(t, "not-cda.xml"), cda.ErrNotCDA},
		{"malformed", readTestdata(t, "malformed-truncated.xml"), cda.ErrMalformed},
		{"DOCTYPE", readTestdata(t, "doctype-entities.xml"), cda.ErrDoctype},
		{"empty", nil, cda.ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sections, err := cda.Text(tt.data)
			require.ErrorIs(t, err, tt.is)
			require.Nil(t, sections)
		})
	}
	_, err := cda.Text(readTestdata(t, "n1-pdf.xml"))
	require.EqualError(t, err, "cda: no structuredBody (not a level 3 document): the body is a nonXMLBody")
}

func FuzzText(f *testing.F) {
	for _, name := range testdataXML(f) {
		f.Add(readTestdata(f, name))
	}
	f.Add(minimal(minimalID, `<structuredBody><component><section><text><list><item><table><tr><td><br/></td></tr></table></item></list></text></section></component></structuredBody>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sections, err := cda.Text(data)
		if err != nil {
			require.Nil(t, sections)
			return
		}
		for _, s := range sections {
			require.True(t, s.Title != "" || len(s.Paragraphs) > 0, "empty section kept")
			require.GreaterOrEqual(t, s.Depth, 0)
			require.Equal(t, strings.Join(strings.Fields(s.Title), " "), s.Title, "title white space")
			for _, p := range s.Paragraphs {
				require.NotEmpty(t, strings.TrimSpace(p))
				require.NotContains(t, p, "\n")
				require.True(t, utf8.ValidString(p))
			}
		}
	})
}
