package cda_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/cda"
)

// minimal returns a small level 1 CDA document whose header elements
// (after the root's typeId) are header and whose body is body.
func minimal(header, body string) []byte {
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  %s
  <component>%s</component>
</ClinicalDocument>`, header, body)
}

const minimalID = `<id root="1.2.250.1.999.1" extension="X1"/>`

func TestParseN1(t *testing.T) {
	t.Parallel()
	d, err := cda.Parse(readTestdata(t, "n1-pdf.xml"))
	require.NoError(t, err)

	cet := time.FixedZone("", 3600)
	rpps := func(ext string) cda.II { return cda.II{Root: cda.OIDRPPS, Extension: ext} }
	hospital := cda.Organization{ID: cda.II{Root: cda.OIDFINESS, Extension: "1999000014"}, Name: "Centre Hospitalier de Test"}
	martin := cda.Person{ID: rpps("810001234567"), Family: "MARTIN", Given: "Jean", Prefix: "M", Suffix: "DR"}
	want := &cda.Document{
		ID:              cda.II{Root: "1.2.250.1.999.42.1.4", Extension: "LDL-20240312-000123"},
		SetID:           cda.II{Root: "1.2.250.1.999.42.1.5", Extension: "LDL-000123"},
		Version:         1,
		Code:            cda.Code{Code: "11490-0", CodeSystem: cda.OIDLOINC, DisplayName: "Lettre de sortie"},
		Title:           "Lettre de liaison de sortie",
		EffectiveTime:   time.Date(2024, 3, 12, 14, 30, 0, 0, cet),
		Confidentiality: cda.Code{Code: "N", CodeSystem: "2.16.840.1.113883.5.25", DisplayName: "Normal"},
		Patient: cda.Patient{
			IDs: []cda.II{
				{Root: cda.OIDINSNIRTest, Extension: "280017512345678"},
				{Root: "1.2.250.1.999.42.1.1", Extension: "IPP0012345"},
			},
			Family: "DUPONT", Given: "Marie", UsedFamily: "DUPONT", UsedGiven: "Marie",
			BirthDate: "19800115", Sex: "F",
		},
		Author:             cda.Author{Person: martin, Organization: hospital, Time: time.Date(2024, 3, 12, 14, 25, 0, 0, cet)},
		Custodian:          hospital,
		LegalAuthenticator: martin,
		Recipients:         []cda.Person{{ID: rpps("810009876543"), Family: "DURAND", Given: "Paul", Prefix: "M", Suffix: "DR"}},
		HasPDF:             true,
	}
	require.Equal(t, want, d)
	require.Equal(t, "1.2.250.1.999.42.1.4^LDL-20240312-000123", d.UniqueID())
	mat, oid, ok := d.Patient.INS()
	require.True(t, ok)
	require.Equal(t, "280017512345678", mat)
	require.Equal(t, cda.OIDINSNIRTest, oid)
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		data  []byte
		check func(t *testing.T, d *cda.Document)
	}{
		{
			name: "level 3 replacement without id extension",
			data: readTestdata(t, "cr-bio-n3.xml"),
			check: func(t *testing.T, d *cda.Document) {
				require.Equal(t, "1.2.250.1.999.77.3.20240104.2", d.UniqueID())
				require.Equal(t, 2, d.Version)
				require.Equal(t, cda.II{Root: "1.2.250.1.999.77.3.20240104.1"}, d.ParentID)
				require.Equal(t, "Compte rendu d'examens biologiques", d.Title, "white space collapsed")
				require.False(t, d.HasPDF)
				require.Equal(t, "BERNARD", d.Author.Family, "first author")
				require.Len(t, d.Recipients, 2)
				require.Equal(t, "PETIT", d.Recipients[1].Family)
				mat, oid, ok := d.Patient.INS()
				require.True(t, ok, "INS after the IPP")
				require.Equal(t, "185077512398765", mat)
				require.Equal(t, cda.OIDINSNIRTest, oid)
				require.Equal(t, "LEGRAND", d.Patient.Family)
				require.Equal(t, "PIERRE", d.Patient.Given, "first birth given name")
				require.Equal(t, "LEGRAND-PETIT", d.Patient.UsedFamily, "qualifier set")
				require.Equal(t, "Pierrot", d.Patient.UsedGiven)
			},
		},
		{
			name: "LDL-SES level 3",
			data: readTestdata(t, "ldl-ses-n3.xml"),
			check: func(t *testing.T, d *cda.Document) {
				require.Equal(t, cda.Code{Code: "11490-0", CodeSystem: cda.OIDLOINC, DisplayName: "Lettre de liaison à la sortie d'un établissement de soins"}, d.Code)
				require.Equal(t, "1.2.250.1.999.88.2^LDLSES-20240920-0031", d.UniqueID())
				require.Equal(t, 1, d.Version)
				require.True(t, d.ParentID.IsZero())
				require.False(t, d.HasPDF, "structured body without attachment")
				mat, oid, ok := d.Patient.INS()
				require.True(t, ok)
				require.Equal(t, "277069912345612", mat)
				require.Equal(t, cda.OIDINSNIRTest, oid)
				require.Equal(t, cda.II{Root: cda.OIDRPPS, Extension: "899900011122"}, d.Author.ID)
				require.Equal(t, "FICTIF", d.Author.Family)
				require.Equal(t, cda.Organization{ID: cda.II{Root: cda.OIDFINESS, Extension: "1999000055"}, Name: "Centre Hospitalier Fictif des Tilleuls"}, d.Custodian)
				require.Equal(t, d.Author.ID, d.LegalAuthenticator.ID)
				require.Equal(t, time.Date(2024, 9, 20, 15, 15, 0, 0, time.UTC), d.EffectiveTime.UTC())
			},
		},
		{
			name: "level 3 with PDF media and local time",
			data: readTestdata(t, "n3-pdf-media.xml"),
			check: func(t *testing.T, d *cda.Document) {
				require.True(t, d.HasPDF)
				require.Equal(t, "1.2.250.1.999.77.3^CRBIO-20240715-0007", d.UniqueID())
				require.Equal(t, time.Date(2024, 7, 15, 7, 30, 0, 0, time.UTC), d.EffectiveTime.UTC(), "Paris summer time")
				require.Empty(t, d.Recipients)
				require.Empty(t, d.Patient.UsedFamily)
			},
		},
		{
			name: "prefixed namespace",
			data: readTestdata(t, "n1-prefixed.xml"),
			check: func(t *testing.T, d *cda.Document) {
				require.Equal(t, cda.II{Root: "1.2.250.1.999.42.1.4", Extension: "PREFIXED-1"}, d.ID, "foreign-namespace id ignored")
				require.Equal(t, "Lettre de liaison de sortie", d.Title)
				require.Equal(t, "DUPONT", d.Patient.Family)
				require.True(t, d.HasPDF)
			},
		},
		{
			name: "ISO-8859-1",
			data: readTestdata(t, "latin1.xml"),
			check: func(t *testing.T, d *cda.Document) {
				require.Equal(t, "Compte rendu opératoire", d.Title)
				require.Equal(t, "LEFÈVRE", d.Patient.Family)
				require.Equal(t, "Hélène", d.Patient.Given)
				require.False(t, d.HasPDF)
			},
		},
		{
			name: "windows-1252",
			data: []byte("<?xml version=\"1.0\" encoding=\"windows-1252\"?>\n<ClinicalDocument xmlns=\"urn:hl7-org:v3\">" +
				minimalID + "<title>Co\xfbt \x80 \x93ok\x94</title></ClinicalDocument>"),
			check: func(t *testing.T, d *cda.Document) {
				require.Equal(t, "Coût € “ok”", d.Title)
			},
		},
		{
			name: "ISO-8859-15 over several reads",
			data: []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?>\n<ClinicalDocument xmlns=\"urn:hl7-org:v3\">" +
				minimalID + "<title>" + strings.Repeat("\xe9t\xe9 \xa4 ", 2000) + "</title></ClinicalDocument>"),
			check: func(t *testing.T, d *cda.Document) {
				require.Equal(t, strings.TrimSpace(strings.Repeat("été € ", 2000)), d.Title)
			},
		},
		{
			name: "UTF-8 byte order mark",
			data: append([]byte("\xEF\xBB\xBF"), minimal(minimalID, "")...),
			check: func(t *testing.T, d *cda.Document) {
				require.Equal(t, "1.2.250.1.999.1^X1", d.UniqueID())
			},
		},
		{
			name: "minimal header",
			data: minimal(`<id root="1.2.250.1.999.1"/>`, ""),
			check: func(t *testing.T, d *cda.Document) {
				require.Equal(t, "1.2.250.1.999.1", d.UniqueID())
				require.Zero(t, d.Version)
				require.True(t, d.EffectiveTime.IsZero())
				require.True(t, d.ParentID.IsZero())
				require.Empty(t, d.Patient.IDs)
				_, _, ok := d.Patient.INS()
				require.False(t, ok)
				require.False(t, d.HasPDF)
			},
		},
		{
			name: "appendum is not a replacement",
			data: minimal(minimalID+`<relatedDocument typeCode="APND"><parentDocument><id root="1.2.3"/></parentDocument></relatedDocument>`, ""),
			check: func(t *testing.T, d *cda.Document) {
				require.True(t, d.ParentID.IsZero())
			},
		},
		{
			name: "INS-NIR preferred by order, nullFlavor ids skipped",
			data: minimal(minimalID+`<recordTarget><patientRole>
				<id nullFlavor="UNK"/>
				<id root="1.2.250.1.213.1.4.8"/>
				<id root="1.2.250.1.213.1.4.8" extension="180017512345678"/>
				<id root="1.2.250.1.213.1.4.9" extension="180017512345679"/>
				</patientRole></recordTarget>`, ""),
			check: func(t *testing.T, d *cda.Document) {
				require.Len(t, d.Patient.IDs, 3)
				mat, oid, ok := d.Patient.INS()
				require.True(t, ok)
				require.Equal(t, "180017512345678", mat, "an INS root without matricule is skipped")
				require.Equal(t, cda.OIDINSNIR, oid)
			},
		},
		{
			name: "INS-NIA and demo roots",
			data: minimal(minimalID+`<recordTarget><patientRole>
				<id root="1.2.250.1.999.1" extension="IPP1"/>
				<id root="1.2.250.1.213.1.4.11" extension="280017512345600"/>
				</patientRole></recordTarget>`, ""),
			check: func(t *testing.T, d *cda.Document) {
				mat, oid, ok := d.Patient.INS()
				require.True(t, ok)
				require.Equal(t, "280017512345600", mat)
				require.Equal(t, cda.OIDINSNIRDemo, oid)
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := cda.Parse(tt.data)
			require.NoError(t, err)
			tt.check(t, d)
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	deep := minimal(minimalID, strings.Repeat("<section>", 300)+strings.Repeat("</section>", 300))
	for _, tt := range []struct {
		name    string
		data    []byte
		is      error  // the sentinel error, if any
		message string // a part of the message
	}{
		{name: "empty", data: nil, is: cda.ErrMalformed},
		{name: "not XML", data: []byte("MSH|^~\\&|DPI"), is: cda.ErrMalformed},
		{name: "truncated", data: readTestdata(t, "malformed-truncated.xml"), is: cda.ErrMalformed},
		{name: "DOCTYPE with entities", data: readTestdata(t, "doctype-entities.xml"), is: cda.ErrDoctype},
		{name: "DOCTYPE alone", data: []byte(`<!DOCTYPE ClinicalDocument><ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2"/></ClinicalDocument>`), is: cda.ErrDoctype},
		{name: "no namespace", data: readTestdata(t, "not-cda.xml"), is: cda.ErrNotCDA, message: "{}ClinicalDocument"},
		{name: "other root", data: []byte(`<Document xmlns="urn:hl7-org:v3"/>`), is: cda.ErrNotCDA},
		{name: "no id", data: readTestdata(t, "no-id.xml"), is: cda.ErrMissingID},
		{name: "two roots", data: append(minimal(minimalID, ""), "<ClinicalDocument/>"...), is: cda.ErrMalformed, message: "more than one root"},
		{name: "text after root", data: append(minimal(minimalID, ""), "junk"...), is: cda.ErrMalformed, message: "text outside"},
		{name: "unsupported charset", data: []byte(`<?xml version="1.0" encoding="EBCDIC"?><ClinicalDocument xmlns="urn:hl7-org:v3"/>`), is: cda.ErrMalformed, message: "EBCDIC"},
		{name: "too deep", data: deep, is: cda.ErrMalformed},
		{name: "too large", data: make([]byte, cda.MaxSize+1), is: cda.ErrTooLarge},
		{name: "bad version", data: minimal(minimalID+`<versionNumber value="deux"/>`, ""), message: "versionNumber"},
		{name: "bad effectiveTime", data: minimal(minimalID+`<effectiveTime value="2024-03-12"/>`, ""), message: "effectiveTime"},
		{name: "bad author time", data: minimal(minimalID+`<author><time value="20241312"/></author>`, ""), message: "author/time"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := cda.Parse(tt.data)
			require.Error(t, err)
			require.Nil(t, d)
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
			}
			require.Contains(t, err.Error(), tt.message)
			require.True(t, strings.HasPrefix(err.Error(), "cda: "), "error %q names the package", err)
		})
	}
}

func TestParseTS(t *testing.T) {
	t.Parallel()
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	for _, tt := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{in: "20240312143000+0100", want: time.Date(2024, 3, 12, 13, 30, 0, 0, time.UTC)},
		{in: "20240312143000-0330", want: time.Date(2024, 3, 12, 18, 0, 0, 0, time.UTC)},
		{in: "202403121430+0000", want: time.Date(2024, 3, 12, 14, 30, 0, 0, time.UTC)},
		{in: "20240312143000.25+0100", want: time.Date(2024, 3, 12, 13, 30, 0, 250e6, time.UTC)},
		{in: "2024031214", want: time.Date(2024, 3, 12, 14, 0, 0, 0, paris)},
		{in: "20240715093000", want: time.Date(2024, 7, 15, 9, 30, 0, 0, paris)},
		{in: "20240312", want: time.Date(2024, 3, 12, 0, 0, 0, 0, paris)},
		{in: "202403", want: time.Date(2024, 3, 1, 0, 0, 0, 0, paris)},
		{in: "2024", want: time.Date(2024, 1, 1, 0, 0, 0, 0, paris)},
		{in: "", err: true},
		{in: "2024-03-12", err: true},
		{in: "202403121", err: true},
		{in: "20240230", err: true},
		{in: "20241312", err: true},
		{in: "20240312246000", err: true},
		{in: "20240312143000+01", err: true},
		{in: "20240312143000+2500", err: true},
		{in: "202403121430.5", err: true},
		{in: "20240312143000.", err: true},
		{in: "+0100", err: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := cda.ParseTS(tt.in)
			if tt.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.True(t, tt.want.Equal(got), "got %s, want %s", got, tt.want)
		})
	}
}

func TestUniqueID(t *testing.T) {
	t.Parallel()
	require.Equal(t, "1.2.3", (&cda.Document{ID: cda.II{Root: "1.2.3"}}).UniqueID())
	require.Equal(t, "1.2.3^ABC", (&cda.Document{ID: cda.II{Root: "1.2.3", Extension: "ABC"}}).UniqueID())
}

func TestExtractPDF(t *testing.T) {
	t.Parallel()
	sample := readTestdata(t, "sample.pdf")
	for _, tt := range []struct {
		name string
		data []byte
		is   error // nil: the sample PDF is expected
	}{
		{name: "level 1 wrapped base64", data: readTestdata(t, "n1-pdf.xml")},
		{name: "level 3 observationMedia after an image", data: readTestdata(t, "n3-pdf-media.xml")},
		{name: "prefixed namespace, unpadded base64", data: readTestdata(t, "n1-prefixed.xml")},
		{name: "level 1 CRLF, lower-case attributes", data: minimal(minimalID,
			`<nonXMLBody><text mediaType="Application/PDF" representation="b64">`+wrap(b64(sample), 60, "&#13;\r\n")+`</text></nonXMLBody>`)},
		{name: "level 3 ED in an observation text", data: minimal(minimalID,
			`<structuredBody><component><section><text><paragraph>Voir PDF</paragraph></text><entry><observation>
			<text mediaType="application/pdf" representation="B64">`+b64(sample)+`</text></observation></entry></section></component></structuredBody>`)},
		{name: "level 3 without PDF", data: readTestdata(t, "cr-bio-n3.xml"), is: cda.ErrNoPDF},
		{name: "level 1 plain text", data: readTestdata(t, "latin1.xml"), is: cda.ErrNoPDF},
		{name: "level 1 reference", data: minimal(minimalID,
			`<nonXMLBody><text mediaType="application/pdf"><reference value="CR.pdf"/></text></nonXMLBody>`), is: cda.ErrNoPDF},
		{name: "level 1 PDF not base64", data: minimal(minimalID,
			`<nonXMLBody><text mediaType="application/pdf">%PDF-1.4</text></nonXMLBody>`), is: cda.ErrNoPDF},
		{name: "level 3 PDF outside the HL7 namespace", data: minimal(minimalID,
			`<structuredBody><x:value xmlns:x="urn:example" mediaType="application/pdf" representation="B64">`+b64(sample)+`</x:value></structuredBody>`), is: cda.ErrNoPDF},
		{name: "no body", data: minimal(minimalID, ""), is: cda.ErrNoPDF},
		{name: "bad base64", data: readTestdata(t, "n1-bad-base64.xml"), is: cda.ErrInvalidPDF},
		{name: "empty base64", data: minimal(minimalID,
			`<nonXMLBody><text mediaType="application/pdf" representation="B64">  </text></nonXMLBody>`), is: cda.ErrInvalidPDF},
		{name: "not a PDF", data: readTestdata(t, "n1-not-pdf.xml"), is: cda.ErrInvalidPDF},
		{name: "first level 3 PDF decides", data: minimal(minimalID,
			`<structuredBody><observationMedia><value mediaType="application/pdf" representation="B64">bm9wZQ==</value></observationMedia>
			<observationMedia><value mediaType="application/pdf" representation="B64">`+b64(sample)+`</value></observationMedia></structuredBody>`), is: cda.ErrInvalidPDF},
		{name: "not CDA", data: readTestdata(t, "not-cda.xml"), is: cda.ErrNotCDA},
		{name: "DOCTYPE", data: readTestdata(t, "doctype-entities.xml"), is: cda.ErrDoctype},
		{name: "malformed", data: readTestdata(t, "malformed-truncated.xml"), is: cda.ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pdf, err := cda.ExtractPDF(tt.data)
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
				require.Nil(t, pdf)
				return
			}
			require.NoError(t, err)
			require.Equal(t, sample, pdf)
		})
	}
}

// TestHasPDFAgreesWithExtractPDF checks Document.HasPDF on every testdata
// document that parses.
func TestHasPDFAgreesWithExtractPDF(t *testing.T) {
	t.Parallel()
	for _, name := range testdataXML(t) {
		data := readTestdata(t, name)
		d, err := cda.Parse(data)
		if err != nil {
			continue
		}
		_, err = cda.ExtractPDF(data)
		require.Equal(t, err == nil, d.HasPDF, name)
	}
}

// TestGolden compares the header of every valid testdata document,
// as JSON, with testdata/golden/<name>.json; -update rewrites them.
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"n1-pdf.xml", "cr-bio-n3.xml", "n3-pdf-media.xml", "n1-prefixed.xml", "latin1.xml", "ldl-ses-n3.xml"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, err := cda.Parse(readTestdata(t, name))
			require.NoError(t, err)
			got, err := json.MarshalIndent(d, "", "  ")
			require.NoError(t, err)
			got = append(got, '\n')
			golden := filepath.Join("testdata", "golden", strings.TrimSuffix(name, ".xml")+".json")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./cda -run TestGolden -update")
			require.Equal(t, string(want), string(got))
		})
	}
}

// testdataXML lists the XML files of testdata.
func testdataXML(t testing.TB) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	require.NoError(t, err)
	require.NotEmpty(t, names)
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

func b64(b []byte) string {
	var s strings.Builder
	enc := json.NewEncoder(&s) // []byte marshals as standard base64
	_ = enc.Encode(b)
	return strings.Trim(strings.TrimSpace(s.String()), `"`)
}

// wrap cuts s into lines of n characters joined by sep.
func wrap(s string, n int, sep string) string {
	var b bytes.Buffer
	for len(s) > n {
		b.WriteString(s[:n])
		b.WriteString(sep)
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

func FuzzParse(f *testing.F) {
	for _, name := range testdataXML(f) {
		f.Add(readTestdata(f, name))
	}
	f.Add(minimal(minimalID, ""))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := cda.Parse(data)
		if err != nil {
			require.Nil(t, d)
			return
		}
		require.NotEmpty(t, d.ID.Root)
		require.NotEmpty(t, d.UniqueID())
		_, _, _ = d.Patient.INS()
	})
}

func FuzzExtractPDF(f *testing.F) {
	for _, name := range testdataXML(f) {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pdf, err := cda.ExtractPDF(data)
		if err != nil {
			require.Nil(t, pdf)
		} else {
			require.True(t, bytes.HasPrefix(pdf, []byte("%PDF-")))
		}
		if d, perr := cda.Parse(data); perr == nil {
			require.Equal(t, err == nil, d.HasPDF)
		}
	})
}

// hostileDoc returns a minimal CDA document with the id of minimalID, the
// other header elements header and the body body.
func hostileDoc(header, body string) []byte {
	return minimal(minimalID+header, body)
}

// allocated returns the bytes allocated by f (runtime TotalAlloc delta),
// after a GC so that earlier garbage is not counted. It must not run in
// parallel with other tests: TotalAlloc counts every goroutine.
func allocated(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestParseHostile feeds Parse hostile inputs: each one is either refused
// with the expected error or parsed, in bounded time and with allocations
// bounded by a small multiple of the input size.
//
// Not parallel: the allocation measure is process-wide.
func TestParseHostile(t *testing.T) {
	const mb = 1 << 20
	huge := 50 * mb                       // one 50 MB attribute
	big := 16 * mb                        // the other big values, smaller to keep the test fast under -race
	words := strings.Repeat("ab ", big/3) // many words: the worst case for white space collapsing
	// Allocations may be factor times the input: 4.0 was measured at most
	// (6.1 with -race); text with strings.Fields cost 9.9 on a 50 MB title.
	factor := uint64(8)
	if raceEnabled {
		factor = 12
	}
	for _, tt := range []struct {
		name    string
		data    func() []byte
		is      error  // nil: Parse succeeds
		message string // a part of the error message
		check   func(t *testing.T, d *cda.Document)
	}{
		{
			name: "100 000 nested elements",
			data: func() []byte {
				return hostileDoc("", strings.Repeat("<section>", 100_000)+strings.Repeat("</section>", 100_000))
			},
			is: etree.ErrMaxDepth, message: "maximum depth",
		},
		{
			name: "100 000 nested elements, unclosed",
			data: func() []byte { return hostileDoc("", strings.Repeat("<a>", 100_000)) },
			is:   cda.ErrMalformed,
		},
		{
			name: "50 MB attribute in the body",
			data: func() []byte {
				return hostileDoc("", `<structuredBody><section x="`+strings.Repeat("A", huge)+`"/></structuredBody>`)
			},
			check: func(t *testing.T, d *cda.Document) { require.Equal(t, "1.2.250.1.999.1^X1", d.UniqueID()) },
		},
		{
			name: "16 MB attribute read by the header",
			data: func() []byte {
				return minimal(`<id root="1.2.250.1.999.1" extension="`+strings.Repeat("A", big)+`"/>`, "")
			},
			check: func(t *testing.T, d *cda.Document) { require.Len(t, d.ID.Extension, big) },
		},
		{
			name: "16 MB text node in the body",
			data: func() []byte {
				return hostileDoc("", "<structuredBody><section><text>"+words+"</text></section></structuredBody>")
			},
			check: func(t *testing.T, d *cda.Document) { require.False(t, d.HasPDF) },
		},
		{
			name: "16 MB title of short words",
			data: func() []byte { return hostileDoc("<title>"+words+"</title>", "") },
			check: func(t *testing.T, d *cda.Document) {
				require.Len(t, d.Title, len(words)-1, "trailing space trimmed")
			},
		},
		{
			name: "16 MB of CRLF white space in a name",
			data: func() []byte {
				return hostileDoc(`<recordTarget><patientRole><patient><name><family qualifier="BR">`+
					strings.Repeat("\r\n\t", big/3)+`X</family></name></patient></patientRole></recordTarget>`, "")
			},
			check: func(t *testing.T, d *cda.Document) { require.Equal(t, "X", d.Patient.Family) },
		},
		{
			name: "250 000 empty elements",
			data: func() []byte {
				return hostileDoc("", "<structuredBody>"+strings.Repeat("<br/>", 250_000)+"</structuredBody>")
			},
			check: func(t *testing.T, d *cda.Document) { require.False(t, d.HasPDF) },
		},
		{
			name: "500 000 empty elements",
			data: func() []byte {
				return hostileDoc("", "<structuredBody>"+strings.Repeat("<br/>", 500_000)+"</structuredBody>")
			},
			is: cda.ErrTooComplex, message: "limit 300000",
		},
		{
			name: "200 000 attributes",
			data: func() []byte {
				var b strings.Builder
				for i := range 200_000 {
					fmt.Fprintf(&b, ` a%d="v"`, i)
				}
				return hostileDoc("", "<structuredBody"+b.String()+"/>")
			},
			check: func(t *testing.T, d *cda.Document) { require.False(t, d.HasPDF) },
		},
		{
			name: "billion laughs",
			data: func() []byte {
				var b strings.Builder
				b.WriteString(`<?xml version="1.0"?>` + "\n<!DOCTYPE ClinicalDocument [\n" + `<!ENTITY lol0 "lol">` + "\n")
				for i := 1; i < 10; i++ {
					fmt.Fprintf(&b, "<!ENTITY lol%d \"%s\">\n", i, strings.Repeat(fmt.Sprintf("&lol%d;", i-1), 10))
				}
				b.WriteString("]>\n" + `<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2"/><title>&lol9;</title></ClinicalDocument>`)
				return []byte(b.String())
			},
			is: cda.ErrDoctype,
		},
		{
			name: "entity reference without DOCTYPE",
			data: func() []byte { return hostileDoc("<title>&lol9;</title>", "") },
			is:   cda.ErrMalformed,
		},
		{
			name: "external entity",
			data: func() []byte {
				return []byte(`<!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM "file:///etc/passwd">]>` +
					`<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2"/><title>&x;</title></ClinicalDocument>`)
			},
			is: cda.ErrDoctype,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.data()
			require.LessOrEqual(t, len(data), cda.MaxSize)
			var (
				d   *cda.Document
				err error
			)
			start := time.Now()
			alloc := allocated(func() { d, err = cda.Parse(data) })
			elapsed := time.Since(start)
			t.Logf("%d bytes: %d bytes allocated (%.1fx), %s", len(data), alloc, float64(alloc)/float64(len(data)), elapsed)
			// Generous bounds (the race detector slows parsing down), far
			// below what exponential or quadratic behaviour would need.
			require.Less(t, elapsed, 60*time.Second)
			// Allocations: factor times the input, plus 1 KiB per element or
			// attribute (the cost of a DOM node: about 320 bytes an element
			// and 730 an attribute were measured), plus 8 MB of slack. For
			// the inputs made of a few huge values this is factor times the input.
			items := bytes.Count(data, []byte("<")) + bytes.Count(data, []byte("="))
			bound := factor*uint64(len(data)) + 1024*uint64(items) + 8*mb
			require.Less(t, alloc, bound, "allocations bounded by the input size (%d markup items)", items)
			if tt.is != nil {
				require.Less(t, elapsed, 5*time.Second, "refused quickly")
				require.ErrorIs(t, err, tt.is)
				require.Contains(t, err.Error(), tt.message)
				require.True(t, strings.HasPrefix(err.Error(), "cda: "), "error %q names the package", err)
				require.Nil(t, d)
				return
			}
			require.NoError(t, err)
			tt.check(t, d)
		})
	}
}

// TestParseTooLargeBeforeParsing checks an input over MaxSize is refused
// from its length alone: Parse reads nothing (the input is not even XML)
// and allocates next to nothing.
func TestParseTooLargeBeforeParsing(t *testing.T) {
	data := bytes.Repeat([]byte("<"), cda.MaxSize+1) // malformed from the first byte
	var err error
	alloc := allocated(func() { _, err = cda.Parse(data) })
	require.ErrorIs(t, err, cda.ErrTooLarge)
	require.Contains(t, err.Error(), fmt.Sprint(cda.MaxSize))
	require.Less(t, alloc, uint64(64<<10), "refused before parsing")

	// A valid document just over the limit is refused too.
	doc := minimal(minimalID, "<structuredBody><section x=\""+strings.Repeat("A", cda.MaxSize)+"\"/></structuredBody>")
	_, err = cda.Parse(doc)
	require.ErrorIs(t, err, cda.ErrTooLarge)
}
