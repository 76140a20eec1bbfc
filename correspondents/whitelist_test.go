package correspondents

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

func TestNormaliseDomain(t *testing.T) {
	t.Parallel()

	tests := []struct {
		input   string
		want    string // Empty when an error is expected.
		wantErr string
	}{
		{input: "ch-demo.mssante.fr", want: "ch-demo.mssante.fr"},
		{input: "UC-CMP.MSSante.fr", want: "uc-cmp.mssante.fr"},
		{input: "  ch-demo.mssante.fr \n", want: "ch-demo.mssante.fr"},
		{input: "ch-demo.mssante.fr.", want: "ch-demo.mssante.fr"},
		{input: "15-20.mssante.fr", want: "15-20.mssante.fr"},
		{input: "a.b", want: "a.b"},
		{input: "localhost", want: "localhost"},
		// Unicode names; expected values checked with Python's "idna" codec
		// (IDNA 2003), and with its "punycode" codec for ß, which IDNA 2003
		// maps to "ss".
		{input: "hôpital.fr", want: "xn--hpital-ixa.fr"},
		{input: "HÔPITAL.FR", want: "xn--hpital-ixa.fr"},
		{input: "ÇA.FR", want: "xn--a-5fa.fr"},
		{input: "ho\u0302pital.fr", want: "xn--hpital-ixa.fr"}, // Decomposed ô.
		{input: "hôpital-démo.fr", want: "xn--hpital-dmo-i7a8j.fr"},
		{input: "clinique-été.mssante.fr", want: "xn--clinique-t-j7ab.mssante.fr"},
		{input: "Bücher.example", want: "xn--bcher-kva.example"},
		{input: "MÜNCHEN.de", want: "xn--mnchen-3ya.de"},
		{input: "ça.fr", want: "xn--a-5fa.fr"},
		{input: "straße.de", want: "xn--strae-oqa.de"}, // Non-transitional: ß is not "ss".
		{input: "STRASSE.de", want: "strasse.de"},
		{input: "hôpital\u3002fr", want: "xn--hpital-ixa.fr"},  // Ideographic full stop.
		{input: "hôpital.fr\uff0e", want: "xn--hpital-ixa.fr"}, // Full-width full stop, trailing.
		{input: "ＨÔＰＩＴＡＬ．ｆｒ", want: "xn--hpital-ixa.fr"},       // Full-width letters and full stop.
		{input: "XN--HPITAL-IXA.fr", want: "xn--hpital-ixa.fr"},
		{input: "h\u2665pital.fr", want: "xn--hpital-ip9c.fr"}, // UTS #46 keeps the symbols IDNA 2008 refuses.
		{input: strings.Repeat("a", 63) + ".fr", want: strings.Repeat("a", 63) + ".fr"},
		{input: strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 61), want: strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 61)},

		{input: "", wantErr: "empty"},
		{input: " . ", wantErr: "empty"},
		{input: "a..fr", wantErr: `invalid label "a..fr"`},
		{input: ".mssante.fr", wantErr: `invalid label ".mssante.fr"`},
		{input: "ch-demo.mssante.fr..", wantErr: "empty label"},
		{input: "ch-demo.mssante.fr.\u3002", wantErr: "empty label"},
		{input: "-demo.fr", wantErr: `invalid label "-demo"`},
		{input: "demo-.fr", wantErr: `invalid label "demo-"`},
		{input: "ab--cd.fr", wantErr: `invalid label "ab--cd"`}, // Hyphens in 3rd and 4th position, reserved.
		{input: "xn--.fr", wantErr: "invalid label"},
		{input: "xn--a.fr", wantErr: "invalid label"},   // Not Punycode.
		{input: "\u0301x.fr", wantErr: "invalid label"}, // Starts with a combining mark.
		{input: "a\u200d.fr", wantErr: "invalid label"}, // Joiner out of context.
		{input: "\u05d0a.fr", wantErr: "invalid label"}, // Bidi rule.
		{input: "ch_demo.mssante.fr", wantErr: "disallowed rune U+005F"},
		{input: "ch demo.mssante.fr", wantErr: "disallowed rune U+0020"},
		{input: "*.mssante.fr", wantErr: "disallowed rune U+002A"},
		{input: "jean@mssante.fr", wantErr: "disallowed rune U+0040"},
		{input: "hôpital\u00a0.fr", wantErr: "disallowed rune U+00A0"},
		{input: "h\ue000pital.fr", wantErr: "disallowed rune U+E000"},
		{input: strings.Repeat("a", 64) + ".fr", wantErr: "invalid label"},
		{input: strings.Repeat("é", 60) + ".fr", wantErr: `invalid label "xn--`},                                    // Over 63 bytes once encoded.
		{input: strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 62), wantErr: "invalid label"}, // 254 bytes.
		{input: "caf\xe9.fr", wantErr: "not UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			t.Parallel()

			got, err := NormaliseDomain(tt.input)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalidDomain)
				require.ErrorContains(t, err, tt.wantErr)
				require.Empty(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			again, err := NormaliseDomain(got)
			require.NoError(t, err)
			require.Equal(t, got, again, "NormaliseDomain must be idempotent")
		})
	}
}

// whitelistXML wraps Domaine elements in the published structure.
func whitelistXML(domaines ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema">`)
	b.WriteString("<DateDeGeneration>2026-01-15T03:00:00Z</DateDeGeneration><ListeDomaines>")
	for _, d := range domaines {
		b.WriteString("<Domaine>" + d + "<Description>DEMO</Description></Domaine>")
	}
	b.WriteString("</ListeDomaines></ListeBlancheMSSante>")
	return b.String()
}

func TestParseWhitelist(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		input   string
		want    []string
		wantErr string
	}{
		{
			name:  "published structure",
			input: whitelistXML("<Nom>b-demo.mssante.fr</Nom>", "<Nom>a-demo.mssante.fr</Nom>"),
			want:  []string{"a-demo.mssante.fr", "b-demo.mssante.fr"},
		},
		{
			name: "duplicates after normalisation",
			input: whitelistXML("<Nom>ch-demo.mssante.fr</Nom>", "<Nom>CH-DEMO.mssante.fr.</Nom>",
				"<Nom>hôpital-démo.fr</Nom>", "<Nom>xn--hpital-dmo-i7a8j.fr</Nom>", "<Nom> ch-demo.mssante.fr </Nom>"),
			want: []string{"ch-demo.mssante.fr", "xn--hpital-dmo-i7a8j.fr"},
		},
		{
			name:  "character references and CDATA",
			input: whitelistXML("<Nom>h&#244;pital-d&#xe9;mo.fr</Nom>", "<Nom><![CDATA[ch-demo.mssante.fr]]></Nom>"),
			want:  []string{"ch-demo.mssante.fr", "xn--hpital-dmo-i7a8j.fr"},
		},
		{
			name:  "no namespace",
			input: `<ListeBlancheMSSante><ListeDomaines><Domaine><Nom>ch-demo.mssante.fr</Nom></Domaine></ListeDomaines></ListeBlancheMSSante>`,
			want:  []string{"ch-demo.mssante.fr"},
		},
		{
			name:  "prefixed namespace",
			input: `<lb:ListeBlancheMSSante xmlns:lb="https://listeblanche.mssante.fr/schema"><lb:ListeDomaines><lb:Domaine><lb:Nom>ch-demo.mssante.fr</lb:Nom></lb:Domaine></lb:ListeDomaines></lb:ListeBlancheMSSante>`,
			want:  []string{"ch-demo.mssante.fr"},
		},
		{
			name:    "latin-1 is refused",
			input:   `<?xml version="1.0" encoding="ISO-8859-1"?>` + strings.TrimPrefix(whitelistXML("<Nom>ch-demo.mssante.fr</Nom>"), `<?xml version="1.0" encoding="UTF-8"?>`),
			wantErr: `encoding "ISO-8859-1" not supported`,
		},
		{name: "wrong root", input: `<ListeNoire><Domaine><Nom>ch-demo.mssante.fr</Nom></Domaine></ListeNoire>`, wantErr: `root element is "ListeNoire"`},
		{name: "no domain", input: whitelistXML(), wantErr: "no Domaine"},
		{name: "Domaine without Nom", input: whitelistXML("<Nom>ch-demo.mssante.fr</Nom>", ""), wantErr: "Domaine 2: 0 Nom elements"},
		{name: "Domaine with two Nom", input: whitelistXML("<Nom>a.fr</Nom><Nom>b.fr</Nom>"), wantErr: "Domaine 1: 2 Nom elements"},
		{name: "empty Nom", input: whitelistXML("<Nom> </Nom>"), wantErr: "Domaine 1: invalid domain name: empty"},
		{name: "invalid Nom", input: whitelistXML("<Nom>ch-demo.mssante.fr</Nom>", "<Nom>ch demo.fr</Nom>"), wantErr: `Domaine 2: invalid domain name "ch demo.fr"`},
		{name: "not XML", input: "Nom;Description\nch-demo.mssante.fr;DEMO\n", wantErr: "whitelist: no root element"},
		{name: "empty", input: "", wantErr: "whitelist: no root element"},
		{name: "truncated", input: whitelistXML("<Nom>ch-demo.mssante.fr</Nom>")[:150], wantErr: "whitelist: XML syntax error"},
		{name: "mismatched tags", input: `<ListeBlancheMSSante><Domaine><Nom>a.fr</Domaine></Nom></ListeBlancheMSSante>`, wantErr: "whitelist: etree: invalid XML format"},
		{name: "undefined entity", input: whitelistXML("<Nom>&demo;.fr</Nom>"), wantErr: "whitelist: XML syntax error"},
		{name: "HTML page", input: "<!DOCTYPE html><html><body>Maintenance</body></html>", wantErr: `root element is "html"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got, err := ParseWhitelist(strings.NewReader(tt.input))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Nil(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseWhitelistLimits(t *testing.T) {
	t.Parallel()

	input := whitelistXML("<Nom>ch-demo.mssante.fr</Nom>")
	got, err := parseWhitelist(strings.NewReader(input), int64(len(input)))
	require.NoError(t, err)
	require.Equal(t, []string{"ch-demo.mssante.fr"}, got)

	_, err = parseWhitelist(strings.NewReader(input), int64(len(input)-1))
	require.ErrorContains(t, err, "larger than")

	boom := errors.New("network down")
	_, err = ParseWhitelist(io.MultiReader(strings.NewReader(input[:100]), iotest.ErrReader(boom)))
	require.ErrorIs(t, err, boom)

	deep := "<ListeBlancheMSSante>" + strings.Repeat("<a>", 2000) + strings.Repeat("</a>", 2000) + "</ListeBlancheMSSante>"
	_, err = ParseWhitelist(strings.NewReader(deep))
	require.ErrorContains(t, err, "maximum depth")
}

func TestParseWhitelistGolden(t *testing.T) {
	t.Parallel()

	f, err := os.Open("testdata/whitelist_sample.xml")
	require.NoError(t, err)
	defer f.Close()
	got, err := ParseWhitelist(f)
	require.NoError(t, err)
	checkGolden(t, "testdata/whitelist_sample.golden.txt", []byte(strings.Join(got, "\n")+"\n"))
}

func FuzzParseWhitelist(f *testing.F) {
	for _, path := range []string{"testdata/whitelist_sample.xml", filepath.Join(demoDir, "liste_blanche.xml")} {
		data, err := os.ReadFile(path)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte(whitelistXML("<Nom>hôpital-démo.fr</Nom>", "<Nom>A.fr.</Nom>")))
	f.Add([]byte(whitelistXML()))
	f.Add([]byte("<ListeBlancheMSSante><Domaine><Nom>&#xe9;.fr</Nom></Domaine></ListeBlancheMSSante>"))

	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseWhitelist(strings.NewReader(string(data)))
		if err != nil {
			if got != nil {
				t.Fatalf("domains %q returned with error %v", got, err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("no domain and no error")
		}
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("not sorted or not unique: %q", got)
		}
		for _, d := range got {
			if again, err := NormaliseDomain(d); err != nil || again != d {
				t.Fatalf("%q is not normalised: %q, %v", d, again, err)
			}
		}
	})
}

func FuzzNormaliseDomain(f *testing.F) {
	for _, s := range []string{"ch-demo.mssante.fr", "hôpital-démo.fr.", "ho\u0302pital.FR", "a..b", "\u3002", "xn--bcher-kva.example", strings.Repeat("é", 70),
		"Straße.de", "ＨÔＰＩＴＡＬ．ｆｒ", "a.fr..", "xn--a.fr", "ab--cd.fr", "\u05d0a.fr"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := NormaliseDomain(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidDomain) || d != "" {
				t.Fatalf("NormaliseDomain(%q) = %q, %v", s, d, err)
			}
			return
		}
		if len(d) == 0 || len(d) > 253 {
			t.Fatalf("NormaliseDomain(%q) = %q: bad length", s, d)
		}
		for i := 0; i < len(d); i++ {
			c := d[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("NormaliseDomain(%q) = %q: byte %q", s, d, c)
			}
		}
		if again, err := NormaliseDomain(d); err != nil || again != d {
			t.Fatalf("NormaliseDomain(%q) = %q, but NormaliseDomain(%q) = %q, %v", s, d, d, again, err)
		}
	})
}
