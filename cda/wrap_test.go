package cda_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/cda"
)

// wrapHeader is a complete header for WrapPDF, as read back by Parse.
func wrapHeader() cda.WrapHeader {
	cet := time.FixedZone("", 3600)
	hospital := cda.Organization{ID: cda.II{Root: cda.OIDFINESS, Extension: "1999000014"}, Name: "Centre Hospitalier de Test & Co"}
	martin := cda.Person{ID: cda.II{Root: cda.OIDRPPS, Extension: "810001234567"}, Family: "MARTIN", Given: "Jean", Prefix: "M", Suffix: "DR"}
	return cda.WrapHeader{
		Document: cda.Document{
			ID:              cda.II{Root: "1.2.250.1.999.42.1.4", Extension: "CR-2"},
			SetID:           cda.II{Root: "1.2.250.1.999.42.1.5", Extension: "CR"},
			Version:         2,
			ParentID:        cda.II{Root: "1.2.250.1.999.42.1.4", Extension: "CR-1"},
			Code:            cda.Code{Code: "11490-0", CodeSystem: cda.OIDLOINC, DisplayName: "Lettre de sortie"},
			Title:           "Lettre de liaison de sortie <révisée>",
			EffectiveTime:   time.Date(2024, 3, 12, 14, 30, 0, 0, cet),
			Confidentiality: cda.Code{Code: "R", CodeSystem: cda.OIDConfidentiality, DisplayName: "Restreint"},
			Patient: cda.Patient{
				IDs:        []cda.II{{Root: cda.OIDINSNIRTest, Extension: "280017512345678"}, {Root: "1.2.250.1.999.42.1.1", Extension: "IPP0012345"}},
				Family:     "DUPONT",
				Given:      "Marie",
				UsedFamily: "DUPONT-DURAND",
				UsedGiven:  "Marie",
				BirthDate:  "19800115",
				Sex:        "F",
			},
			Author:             cda.Author{Person: martin, Organization: hospital, Time: time.Date(2024, 3, 12, 14, 25, 0, 0, cet)},
			Custodian:          hospital,
			LegalAuthenticator: martin,
			Recipients: []cda.Person{
				{ID: cda.II{Root: cda.OIDRPPS, Extension: "810009876543"}, Family: "DURAND", Given: "Paul", Prefix: "M", Suffix: "DR"},
				{ID: cda.II{Root: cda.OIDRPPS, Extension: "810001112223"}, Family: "PETIT", Given: "Sophie"},
			},
			HasPDF: true,
		},
		PracticeSetting:        cda.Code{Code: "ETABLISSEMENT", CodeSystem: "1.2.250.1.213.1.1.4.9", DisplayName: "Etablissement de santé"},
		HealthcareFacilityType: cda.Code{Code: "SA01", CodeSystem: "1.2.250.1.71.4.2.4", DisplayName: "Etablissement public de santé"},
	}
}

func TestWrapPDFRoundTrip(t *testing.T) {
	t.Parallel()
	sample := readTestdata(t, "sample.pdf")
	h := wrapHeader()
	out, err := cda.WrapPDF(sample, h)
	require.NoError(t, err)

	d, err := cda.Parse(out)
	require.NoError(t, err)
	require.Equal(t, &h.Document, d)
	pdf, err := cda.ExtractPDF(out)
	require.NoError(t, err)
	require.Equal(t, sample, pdf)

	golden := filepath.Join("testdata", "golden", "wrap.xml")
	if *update {
		require.NoError(t, os.WriteFile(golden, out, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./cda -run TestWrapPDF -update")
	require.Equal(t, string(want), string(out))
}

func TestWrapPDFDefaults(t *testing.T) {
	t.Parallel()
	h := wrapHeader()
	h.SetID, h.Version, h.ParentID = cda.II{}, 0, cda.II{}
	h.Confidentiality = cda.Code{}
	h.Author.Time = time.Time{}
	h.LegalAuthenticator = cda.Person{}
	h.Recipients = nil
	h.Patient = cda.Patient{IDs: h.Patient.IDs[:1]}
	h.Author.Person = cda.Person{ID: h.Author.ID}
	h.PracticeSetting, h.HealthcareFacilityType = cda.Code{}, cda.Code{}

	out, err := cda.WrapPDF(readTestdata(t, "sample.pdf"), h)
	require.NoError(t, err)
	d, err := cda.Parse(out)
	require.NoError(t, err)
	require.Equal(t, h.ID, d.SetID)
	require.Equal(t, 1, d.Version)
	require.True(t, d.ParentID.IsZero())
	require.Equal(t, cda.Code{Code: "N", CodeSystem: cda.OIDConfidentiality, DisplayName: "Normal"}, d.Confidentiality)
	require.True(t, h.EffectiveTime.Equal(d.Author.Time))
	require.Equal(t, h.Author.Person, d.LegalAuthenticator)
	require.Empty(t, d.Recipients)
	require.Equal(t, h.Patient, d.Patient)
	require.True(t, d.HasPDF)
	require.Contains(t, string(out), `<name nullFlavor="UNK"/>`)
	require.NotContains(t, string(out), "standardIndustryClassCode")
	require.NotContains(t, string(out), "healthCareFacility")
}

func TestWrapPDFErrors(t *testing.T) {
	t.Parallel()
	sample := readTestdata(t, "sample.pdf")
	_, err := cda.WrapPDF([]byte("<html/>"), wrapHeader())
	require.ErrorIs(t, err, cda.ErrInvalidPDF)

	_, err = cda.WrapPDF(sample, cda.WrapHeader{})
	require.ErrorIs(t, err, cda.ErrInvalidHeader)
	for _, f := range []string{"ID.Root", "Code.Code", "Title", "EffectiveTime", "Patient.IDs", "Author.ID.Root", "Custodian.ID.Root"} {
		require.Contains(t, err.Error(), f)
	}

	h := wrapHeader()
	h.Version = -1
	_, err = cda.WrapPDF(sample, h)
	require.ErrorIs(t, err, cda.ErrInvalidHeader)
}

// TestWrapPDFBase64Lines checks the body is wrapped at 76 columns.
func TestWrapPDFBase64Lines(t *testing.T) {
	t.Parallel()
	out, err := cda.WrapPDF(readTestdata(t, "sample.pdf"), wrapHeader())
	require.NoError(t, err)
	s := string(out)
	body := s[strings.Index(s, `representation="B64">`)+len(`representation="B64">`) : strings.Index(s, "</text>")]
	lines := strings.Split(strings.TrimSpace(body), "\n")
	require.Greater(t, len(lines), 1)
	for _, l := range lines[:len(lines)-1] {
		require.Len(t, l, 76)
	}
}
