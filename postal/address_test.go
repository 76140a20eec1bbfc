package postal_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/postal"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// long is a street line of 41 characters that abbreviations shorten.
const long = "12 avenue du Maréchal de Lattre de Tassigny"

func TestAddressBlock(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		to   string
		a    postal.PostalAddress
		want []string
	}{
		{
			name: "simple",
			to:   "Dr Claire DUPONT-DEMO",
			a:    postal.PostalAddress{Lines: []string{"12 rue de la Paix"}, RoutingLine: "75002 PARIS", PostalCode: "75002", City: "PARIS"},
			want: []string{"Dr Claire DUPONT-DEMO", "12 RUE DE LA PAIX", "75002 PARIS"},
		},
		{
			name: "accents and punctuation, routing line from postal code and city",
			to:   "Dr Zoé  LŒUVRE ",
			a:    postal.PostalAddress{Lines: []string{"Bâtiment B, Résidence « Les Œillets »", "12, rue de l'Église", "  "}, PostalCode: "69130", City: "Écully"},
			want: []string{"Dr Zoé LŒUVRE", "BATIMENT B RESIDENCE LES OEILLETS", "12 RUE DE L EGLISE", "69130 ECULLY"},
		},
		{
			name: "city holding the postal code",
			to:   "Dr A",
			a:    postal.PostalAddress{PostalCode: "33000", City: "33000 Bordeaux"},
			want: []string{"Dr A", "33000 BORDEAUX"},
		},
		{
			name: "routing line without punctuation",
			to:   "Dr A",
			a:    postal.PostalAddress{City: "L'Isle-Adam", PostalCode: "95290"},
			want: []string{"Dr A", "95290 L ISLE ADAM"},
		},
		{
			name: "routing line holding only the postal code",
			to:   "Dr A",
			a:    postal.PostalAddress{RoutingLine: "13001", City: "Marseille"},
			want: []string{"Dr A", "13001 MARSEILLE"},
		},
		{
			name: "CEDEX",
			to:   "Dr Claire DUPONT-DEMO",
			a:    postal.PostalAddress{Lines: []string{"CS 60001"}, PostalCode: "75700", City: "Paris Cedex 07"},
			want: []string{"Dr Claire DUPONT-DEMO", "CS 60001", "75700 PARIS CEDEX 07"},
		},
		{
			name: "CEDEX moved to the end",
			to:   "Dr Claire DUPONT-DEMO",
			a:    postal.PostalAddress{Lines: []string{"BP 12"}, RoutingLine: "33076 CEDEX 9 Bordeaux"},
			want: []string{"Dr Claire DUPONT-DEMO", "BP 12", "33076 BORDEAUX CEDEX 9"},
		},
		{
			name: "long CEDEX routing line: abbreviated, then its locality truncated",
			to:   "Dr A",
			a:    postal.PostalAddress{RoutingLine: "38590 SAINT-ETIENNE-DE-SAINT-GEOIRS-LA-MONTAGNE CEDEX 12"},
			want: []string{"Dr A", "38590 ST ETIENNE DE ST GEOIRS CEDEX 12"},
		},
		{
			name: "long routing line abbreviated",
			to:   "Dr A",
			a:    postal.PostalAddress{PostalCode: "38590", City: "Saint-Étienne-de-Saint-Geoirs-Cedex"},
			want: []string{"Dr A", "38590 ST ETIENNE DE ST GEOIRS CEDEX"},
		},
		{
			name: "overseas department named as country",
			to:   "Dr Marie-Hélène CÉSAIRE",
			a:    postal.PostalAddress{Lines: []string{"Quartier Bois-Carré"}, PostalCode: "97232", City: "Le Lamentin", Country: "Martinique"},
			want: []string{"Dr Marie-Hélène CÉSAIRE", "QUARTIER BOIS-CARRE", "97232 LE LAMENTIN"},
		},
		{
			name: "overseas territory, country FR",
			to:   "Dr Teva TEMARU",
			a:    postal.PostalAddress{Lines: []string{"BP 1234"}, RoutingLine: "98713 PAPEETE", Country: "FR"},
			want: []string{"Dr Teva TEMARU", "BP 1234", "98713 PAPEETE"},
		},
		{
			name: "Nouvelle-Calédonie and La Réunion",
			to:   "Dr A",
			a:    postal.PostalAddress{RoutingLine: "98800 Nouméa", Country: "Nouvelle-Calédonie"},
			want: []string{"Dr A", "98800 NOUMEA"},
		},
		{
			name: "La Réunion",
			to:   "Dr A",
			a:    postal.PostalAddress{RoutingLine: "97400 Saint-Denis", Country: "La Réunion"},
			want: []string{"Dr A", "97400 SAINT DENIS"},
		},
		{
			name: "France spelled out",
			to:   "Dr A",
			a:    postal.PostalAddress{RoutingLine: "75002 PARIS", Country: "République française"},
			want: []string{"Dr A", "75002 PARIS"},
		},
		{
			name: "abroad",
			to:   "Dr Hans MÜLLER",
			a:    postal.PostalAddress{Lines: []string{"Universitätsklinikum", "Hauptstraße 5"}, PostalCode: "79098", City: "Freiburg im Breisgau", Country: "Allemagne"},
			want: []string{"Dr Hans MÜLLER", "UNIVERSITATSKLINIKUM", "HAUPTSTRASSE 5", "79098 FREIBURG IM BREISGAU", "ALLEMAGNE"},
		},
		{
			name: "abroad with a German postal code in the 97 range",
			to:   "Dr A",
			a:    postal.PostalAddress{RoutingLine: "97070 Würzburg", Country: "DE"},
			want: []string{"Dr A", "97070 WURZBURG", "ALLEMAGNE"},
		},
		{
			name: "abroad, country code",
			to:   "Dr Anne PEETERS",
			a:    postal.PostalAddress{Lines: []string{"Rue Haute 322"}, RoutingLine: "1000 Bruxelles", Country: "BE"},
			want: []string{"Dr Anne PEETERS", "RUE HAUTE 322", "1000 BRUXELLES", "BELGIQUE"},
		},
		{
			name: "long name cut at a word",
			to:   "Dr Jean-Christophe DE LA ROCHEFOUCAULD-MONTMORENCY",
			a:    postal.PostalAddress{Lines: []string{"12 rue de la Paix"}, RoutingLine: "75002 PARIS"},
			want: []string{"Dr Jean-Christophe DE LA", "ROCHEFOUCAULD-MONTMORENCY", "12 RUE DE LA PAIX", "75002 PARIS"},
		},
		{
			name: "long street line cut at a word",
			to:   "Dr A",
			a:    postal.PostalAddress{Lines: []string{long}, RoutingLine: "33000 BORDEAUX"},
			want: []string{"Dr A", "12 AVENUE DU MARECHAL DE LATTRE DE", "TASSIGNY", "33000 BORDEAUX"},
		},
		{
			name: "long lines, complements merged to make room",
			to:   "Dr Jean-Christophe DE LA ROCHEFOUCAULD-MONTMORENCY",
			a:    postal.PostalAddress{Lines: []string{"Cabinet médical", "Résidence du Parc", "Bâtiment C", long}, RoutingLine: "33000 BORDEAUX"},
			want: []string{"Dr Jean-Christophe DE LA", "ROCHEFOUCAULD-MONTMORENCY", "CABINET MEDICAL RES DU PARC BAT C", "12 AVENUE DU MARECHAL DE LATTRE DE", "TASSIGNY", "33000 BORDEAUX"},
		},
		{
			name: "no room to cut: abbreviated",
			to:   "Docteur Jean-Christophe ROCHEFOUCAULD-MONTMORENCY",
			a:    postal.PostalAddress{Lines: []string{"Service de cardiologie pédiatrique", "Centre hospitalier universitaire", "Hôpital Pellegrin", long}, RoutingLine: "33076 BORDEAUX CEDEX", Country: "France"},
			want: []string{"Dr J.-C. ROCHEFOUCAULD-MONTMORENCY", "SERVICE DE CARDIOLOGIE PEDIATRIQUE", "CENTRE HOSPITALIER UNIVERSITAIRE", "HOPITAL PELLEGRIN", "12 AV DU MAL DE LATTRE DE TASSIGNY", "33076 BORDEAUX CEDEX"},
		},
		{
			name: "no room to cut, abroad: abbreviated and truncated",
			to:   "Madame le Professeur Marie-Anne-Sophie DE LA TOUR-D'AUVERGNE-LAURAGUAIS",
			a:    postal.PostalAddress{Lines: []string{"Département de médecine interne générale", "Hôpitaux universitaires de Genève", "Rue Gabrielle-Perret-Gentil 4"}, RoutingLine: "1205 Genève", Country: "Suisse"},
			want: []string{"Mme le Pr M.-A.-S. DE LA TOUR", "DEPARTEMENT DE MEDECINE INTERNE", "HOPITAUX UNIVERSITAIRES DE GENEVE", "RUE GABRIELLE-PERRET-GENTIL 4", "1205 GENEVE", "SUISSE"},
		},
		{
			name: "seven input lines",
			to:   "Dr Claire DUPONT-DEMO",
			a:    postal.PostalAddress{Lines: []string{"L1", "L2", "L3", "L4", "L5", "L6", "L7"}, RoutingLine: "75002 PARIS"},
			want: []string{"Dr Claire DUPONT-DEMO", "L1 L2 L3 L4", "L5", "L6", "L7", "75002 PARIS"},
		},
		{
			name: "seven long input lines: merged, the first dropped",
			to:   "Dr Claire DUPONT-DEMO",
			a: postal.PostalAddress{Lines: []string{
				"Service de cardiologie interventionnelle", "Centre hospitalier universitaire", "Hôpital Haut-Lévêque",
				"Appartement 12 escalier B", "Résidence Les Jardins", "1 avenue de Magellan", "Lieu-dit Le Bourg",
			}, RoutingLine: "33604 PESSAC CEDEX"},
			want: []string{"Dr Claire DUPONT-DEMO", "CENTRE HOSPITALIER UNIVERSITAIRE", "HOPITAL HAUT-LEVEQUE APT 12 ESC B", "RES LES JARDINS 1 AV DE MAGELLAN", "LIEU-DIT LE BOURG", "33604 PESSAC CEDEX"},
		},
		{
			name: "a word longer than a line",
			to:   "Dr Anne-Marie-Christine-Bernadette-Josephine",
			a:    postal.PostalAddress{Lines: []string{"Lieu-dit Saint-Martin-de-la-Grande-Montagne-Fleurie"}, RoutingLine: "75002 PARIS"},
			want: []string{"Dr A.-M.-C.-B.-J.", "LIEU-DIT ST-MARTIN-DE-LA-GRANDE", "75002 PARIS"},
		},
		{
			name: "no name",
			to:   " ",
			a:    postal.PostalAddress{Lines: []string{"12 rue de la Paix"}, RoutingLine: "75002 PARIS"},
			want: []string{"12 RUE DE LA PAIX", "75002 PARIS"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := postal.AddressBlock(tt.to, tt.a)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			checkBlock(t, got)
		})
	}
}

// checkBlock checks the rules every address block follows.
func checkBlock(t *testing.T, lines []string) {
	t.Helper()
	require.NotEmpty(t, lines)
	require.LessOrEqual(t, len(lines), postal.MaxAddressLines)
	for _, l := range lines {
		require.LessOrEqual(t, utf8.RuneCountInString(l), postal.MaxLineLen, "%q", l)
		require.NotEmpty(t, l)
		require.Equal(t, strings.Join(strings.Fields(l), " "), l, "white space")
		require.True(t, utf8.ValidString(l))
	}
	last := lines[len(lines)-1]
	for _, r := range last {
		require.False(t, unicode.IsPunct(r), "punctuation in the last line %q", last)
	}
	require.Equal(t, strings.ToUpper(last), last, "lower case in the last line")
}

func TestAddressBlockNotPostable(t *testing.T) {
	t.Parallel()
	for name, a := range map[string]postal.PostalAddress{
		"empty":              {},
		"postal code only":   {Lines: []string{"12 rue de la Paix"}, PostalCode: "75002"},
		"lines only":         {Lines: []string{"12 rue de la Paix", "BP 12"}},
		"blank routing line": {Lines: []string{"12 rue de la Paix"}, RoutingLine: "  ", City: " "},
		"punctuation only":   {RoutingLine: " ; , - "},
		"country only":       {Country: "Belgique"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			lines, err := postal.AddressBlock("Dr Claire DUPONT-DEMO", a)
			require.ErrorIs(t, err, postal.ErrNotPostable)
			require.Nil(t, lines)
		})
	}
}

// addresses is testdata/addresses.json.
func addresses(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "addresses.json"))
	require.NoError(t, err)
	return b
}

// addressCase is an address of testdata/addresses.json.
type addressCase struct {
	Name    string               `json:"name"`
	Address postal.PostalAddress `json:"address"`
}

// TestAddressBlockGolden compares the address blocks of
// testdata/addresses.json (addresses as the directory publishes them)
// with testdata/golden/addresses.txt; -update rewrites it.
func TestAddressBlockGolden(t *testing.T) {
	t.Parallel()
	var cases []addressCase
	require.NoError(t, json.Unmarshal(addresses(t), &cases))
	var b strings.Builder
	for _, c := range cases {
		lines, err := postal.AddressBlock(c.Name, c.Address)
		if err != nil {
			b.WriteString("error: " + err.Error() + "\n\n")
			continue
		}
		checkBlock(t, lines)
		b.WriteString(strings.Join(lines, "\n") + "\n\n")
	}
	golden := filepath.Join("testdata", "golden", "addresses.txt")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
		require.NoError(t, os.WriteFile(golden, []byte(b.String()), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./postal -run TestAddressBlockGolden -update")
	require.Equal(t, string(want), b.String())
}

func FuzzAddressBlock(f *testing.F) {
	var cases []addressCase
	require.NoError(f, json.Unmarshal(addresses(f), &cases))
	for _, c := range cases {
		a := c.Address
		f.Add(c.Name, strings.Join(a.Lines, "\n"), a.RoutingLine, a.PostalCode, a.City, a.Country)
	}
	f.Fuzz(func(t *testing.T, name, lines, routing, code, city, country string) {
		a := postal.PostalAddress{RoutingLine: routing, PostalCode: code, City: city, Country: country}
		if lines != "" {
			a.Lines = strings.Split(lines, "\n")
		}
		got, err := postal.AddressBlock(name, a)
		if err != nil {
			require.ErrorIs(t, err, postal.ErrNotPostable)
			require.Nil(t, got)
			return
		}
		require.True(t, a.Known())
		checkBlock(t, got)
	})
}

// TestEnvelope checks that letters whose envelopes read the same compare
// equal, whatever the case, accents, punctuation and spacing of their
// name and address, and that another person or address differs.
func TestEnvelope(t *testing.T) {
	t.Parallel()
	claire := postal.PostalAddress{Lines: []string{"12, rue de l'Église"}, PostalCode: "33000", City: "Bordeaux"}
	key, err := postal.Envelope("Dr Claire DUPONT-DEMO", claire)
	require.NoError(t, err)
	require.Equal(t, "DR CLAIRE DUPONT-DEMO 12 RUE DE L EGLISE 33000 BORDEAUX", key)
	tests := []struct {
		name string
		to   string
		a    postal.PostalAddress
		same bool
	}{
		{"written otherwise", "dr  claire dupont-démo", postal.PostalAddress{Lines: []string{"12 RUE DE L EGLISE"}, RoutingLine: "33000 BORDEAUX"}, true},
		{"another person", "Dr Jean MARTIN", claire, false},
		{"another number", "Dr Claire DUPONT-DEMO", postal.PostalAddress{Lines: []string{"14, rue de l'Église"}, PostalCode: "33000", City: "Bordeaux"}, false},
		{"another city", "Dr Claire DUPONT-DEMO", postal.PostalAddress{Lines: claire.Lines, PostalCode: "33700", City: "Mérignac"}, false},
	}
	for _, tt := range tests {
		got, err := postal.Envelope(tt.to, tt.a)
		require.NoError(t, err, tt.name)
		require.Equal(t, tt.same, got == key, "%s: %q", tt.name, got)
	}
	_, err = postal.Envelope("Dr A", postal.PostalAddress{Lines: []string{"1 rue B"}})
	require.ErrorIs(t, err, postal.ErrNotPostable)
}
