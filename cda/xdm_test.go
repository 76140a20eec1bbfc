package cda

import (
	"archive/zip"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"
)

var updateXDM = flag.Bool("update-xdm", false, "rewrite the golden files of testdata/xdm/golden")

// xdmCase is one input of the XDM tests.
type xdmCase struct {
	name   string // golden directory
	file   string // testdata file
	action string
}

var xdmCases = []xdmCase{
	{name: "n1-pdf", file: "n1-pdf.xml"},
	{name: "cr-bio-n3", file: "cr-bio-n3.xml", action: "C"},
	{name: "n3-pdf-media", file: "n3-pdf-media.xml"},
	{name: "ldl-ses-n3", file: "ldl-ses-n3.xml"},
}

// xdmTestOptions returns options with a fixed time and a seeded random
// source, so the output is stable.
func xdmTestOptions(action string) XDMOptions {
	return XDMOptions{
		SourceID:       "1.2.250.1.999.42.9",
		SubmissionTime: time.Date(2024, 3, 12, 14, 45, 0, 0, time.UTC),
		Action:         action,
		Recipients: []XDMRecipient{{
			Address:      "paul.durand@medecin.mssante.fr",
			ID:           II{Root: OIDRPPS, Extension: "810009876543"},
			Family:       "DURAND",
			Given:        "Paul",
			Organization: "Cabinet du Dr Durand",
		}},
		Application: "mssdispatch test",
		rand:        mrand.NewChaCha8([32]byte{'x', 'd', 'm'}),
	}
}

// readXDMTestdata returns testdata/name.
func readXDMTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// unzipXDM returns the files of an XDM zip by name, in archive order.
func unzipXDM(t testing.TB, z []byte) (map[string][]byte, []string) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	require.NoError(t, err)
	files := map[string][]byte{}
	var names []string
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		files[f.Name] = b
		names = append(names, f.Name)
	}
	return files, names
}

func packageCase(t testing.TB, c xdmCase) (cdaDoc []byte, files map[string][]byte, names []string) {
	t.Helper()
	cdaDoc = readXDMTestdata(t, c.file)
	z, err := PackageXDM(cdaDoc, xdmTestOptions(c.action))
	require.NoError(t, err)
	files, names = unzipXDM(t, z)
	return cdaDoc, files, names
}

// TestPackageXDMGolden compares METADATA.XML, README.TXT and INDEX.HTM
// with testdata/xdm/golden/<case>/ (rewrite with -update-xdm).
func TestPackageXDMGolden(t *testing.T) {
	t.Parallel()
	for _, c := range xdmCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, files, _ := packageCase(t, c)
			dir := filepath.Join("testdata", "xdm", "golden", c.name)
			for _, f := range []string{XDMMetadata, XDMReadme, XDMIndex} {
				golden := filepath.Join(dir, filepath.Base(f))
				if *updateXDM {
					require.NoError(t, os.MkdirAll(dir, 0o755))
					require.NoError(t, os.WriteFile(golden, files[f], 0o644))
				}
				want, err := os.ReadFile(golden)
				require.NoError(t, err)
				require.Equal(t, string(want), string(files[f]), "%s is stale: run go test ./cda -run TestPackageXDMGolden -update-xdm", golden)
			}
		})
	}
}

// TestPackageXDMDeterministic checks the same randomness gives the same zip.
func TestPackageXDMDeterministic(t *testing.T) {
	t.Parallel()
	cdaDoc := readXDMTestdata(t, "n1-pdf.xml")
	a, err := PackageXDM(cdaDoc, xdmTestOptions(""))
	require.NoError(t, err)
	b, err := PackageXDM(cdaDoc, xdmTestOptions(""))
	require.NoError(t, err)
	require.Equal(t, a, b)
}

// TestPackageXDMSchema validates each METADATA.XML with xmllint against the
// ebRIM/ebRS 3.0 schemas of testdata/xdm/schema.
func TestPackageXDMSchema(t *testing.T) {
	t.Parallel()
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Fatalf("xmllint not found (%v): install it (Debian: apt-get install -y libxml2-utils); this test validates METADATA.XML against the ebRIM schemas and must not be skipped", err)
	}
	schema, err := filepath.Abs(filepath.Join("testdata", "xdm", "schema", "lcm.xsd"))
	require.NoError(t, err)
	for _, c := range xdmCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, files, _ := packageCase(t, c)
			f := filepath.Join(t.TempDir(), "METADATA.XML")
			require.NoError(t, os.WriteFile(f, files[XDMMetadata], 0o644))
			out, err := exec.Command(xmllint, "--noout", "--nonet", "--schema", schema, f).CombinedOutput()
			require.NoError(t, err, "xmllint: %s", out)
			require.Contains(t, string(out), "validates")
		})
	}
}

// metadata is a parsed METADATA.XML.
type metadata struct {
	de, ss *etree.Element
	root   *etree.Element
}

func parseMetadata(t testing.TB, b []byte) metadata {
	t.Helper()
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromBytes(b))
	root := doc.Root()
	require.Equal(t, "SubmitObjectsRequest", root.Tag)
	require.Equal(t, nsLCM, root.NamespaceURI())
	list := root.FindElement("RegistryObjectList")
	require.NotNil(t, list)
	m := metadata{root: root, de: list.FindElement("ExtrinsicObject"), ss: list.FindElement("RegistryPackage")}
	require.NotNil(t, m.de)
	require.NotNil(t, m.ss)
	return m
}

// slotValues returns the values of the slot name of e.
func slotValues(e *etree.Element, name string) []string {
	for _, s := range e.SelectElements("Slot") {
		if s.SelectAttrValue("name", "") == name {
			var out []string
			for _, v := range s.FindElements("ValueList/Value") {
				out = append(out, v.Text())
			}
			return out
		}
	}
	return nil
}

// classified returns the Classification of e with the scheme.
func classified(e *etree.Element, scheme string) *etree.Element {
	for _, c := range e.SelectElements("Classification") {
		if c.SelectAttrValue("classificationScheme", "") == scheme {
			return c
		}
	}
	return nil
}

// code returns "code|codingScheme|display" of a coded classification.
func classifiedCode(e *etree.Element, scheme string) string {
	c := classified(e, scheme)
	if c == nil {
		return ""
	}
	display := ""
	if ls := c.FindElement("Name/LocalizedString"); ls != nil {
		display = ls.SelectAttrValue("value", "")
	}
	return c.SelectAttrValue("nodeRepresentation", "") + "|" + strings.Join(slotValues(c, "codingScheme"), ",") + "|" + display
}

// externalID returns the value of the ExternalIdentifier of e with the scheme.
func externalID(e *etree.Element, scheme string) string {
	for _, x := range e.SelectElements("ExternalIdentifier") {
		if x.SelectAttrValue("identificationScheme", "") == scheme {
			return x.SelectAttrValue("value", "")
		}
	}
	return ""
}

// TestPackageXDMSlots reads METADATA.XML back and checks each value.
func TestPackageXDMSlots(t *testing.T) {
	t.Parallel()
	type want struct {
		de, ss, deCodes, ssCodes, deIDs, ssIDs map[string]string // "" = absent
		deAuthor                               map[string]string
	}
	recipient := "Cabinet du Dr Durand|810009876543^DURAND^Paul^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS|^^Internet^paul.durand@medecin.mssante.fr"
	cases := map[string]want{
		"n1-pdf": {
			de: map[string]string{
				"creationTime":       "20240312133000",
				"languageCode":       "fr-FR",
				"legalAuthenticator": "810001234567^MARTIN^Jean^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
				"serviceStartTime":   "20240305090000",
				"serviceStopTime":    "20240312110000",
				"sourcePatientId":    "IPP0012345^^^&1.2.250.1.999.42.1.1&ISO^PI",
				"sourcePatientInfo":  "PID-5|DUPONT^Marie^^^^^L,PID-7|19800115,PID-8|F",
				"URI":                "DOC0001.XML",
				XDMActionSlot:        "",
			},
			deAuthor: map[string]string{
				"authorPerson":      "810001234567^MARTIN^Jean^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
				"authorInstitution": "Centre Hospitalier de Test^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1999000014",
				"authorSpecialty":   "G15_10/SM27^Médecin - Médecine interne (SM)^1.2.250.1.213.1.1.4.5",
			},
			deCodes: map[string]string{
				xdsDEClassCode:           "10|1.2.250.1.213.1.1.4.1|Compte rendu",
				xdsDEConfidentialityCode: "N|2.16.840.1.113883.5.25|Normal",
				xdsDEFormatCode:          "urn:ihe:iti:xds-sd:pdf:2008|1.3.6.1.4.1.19376.1.2.3|Document à corps non structuré en Pdf/A-1",
				xdsDEHealthcareFacility:  "SA01|1.2.250.1.71.4.2.4|Etablissement public de santé",
				xdsDEPracticeSetting:     "ETABLISSEMENT|1.2.250.1.213.1.1.4.9|Etablissement de santé",
				xdsDETypeCode:            "11490-0|2.16.840.1.113883.6.1|Lettre de sortie",
			},
			deIDs: map[string]string{
				xdsDEPatientID: "280017512345678^^^&1.2.250.1.213.1.4.10&ISO^NH",
				xdsDEUniqueID:  "1.2.250.1.999.42.1.4^LDL-20240312-000123",
			},
			ss: map[string]string{
				"submissionTime":    "20240312144500",
				"intendedRecipient": recipient,
			},
			ssCodes: map[string]string{xdsSSContentTypeCode: "11490-0|2.16.840.1.113883.6.1|Lettre de sortie"},
			ssIDs: map[string]string{
				xdsSSSourceID:  "1.2.250.1.999.42.9",
				xdsSSPatientID: "280017512345678^^^&1.2.250.1.213.1.4.10&ISO^NH",
			},
		},
		"cr-bio-n3": {
			de: map[string]string{
				"creationTime":      "20240104150527",
				"languageCode":      "fr-FR",
				"serviceStartTime":  "20240104082200",
				"serviceStopTime":   "20240104150500",
				"sourcePatientId":   "LAB-998877^^^&1.2.250.1.999.77.1&ISO^PI",
				"sourcePatientInfo": "PID-5|LEGRAND^PIERRE^^^^^L,PID-7|19850704,PID-8|M",
				XDMActionSlot:       "C",
			},
			deCodes: map[string]string{
				xdsDEFormatCode:         "urn:ihe:lab:xd-lab:2008|1.3.6.1.4.1.19376.1.2.3|CR d'examens biologiques",
				xdsDEHealthcareFacility: "SA01|1.2.250.1.71.4.2.4|Etablissement public de santé",
				xdsDETypeCode:           "11502-2|2.16.840.1.113883.6.1|CR d'examens biologiques",
			},
			deIDs: map[string]string{
				xdsDEPatientID: "185077512398765^^^&1.2.250.1.213.1.4.10&ISO^NH",
				xdsDEUniqueID:  "1.2.250.1.999.77.3.20240104.2",
			},
			ss: map[string]string{"intendedRecipient": recipient},
		},
		"n3-pdf-media": {
			de: map[string]string{
				"creationTime":     "20240715073000",
				"languageCode":     "fr-FR", // no languageCode in the CDA: the default
				"serviceStartTime": "20240715053000",
				"serviceStopTime":  "",
				// No local identifier: the INS is the sourcePatientId too.
				"sourcePatientId": "280017512345678^^^&1.2.250.1.213.1.4.10&ISO^NH",
				XDMActionSlot:     "",
			},
			deAuthor: map[string]string{"authorSpecialty": ""},
			deCodes: map[string]string{
				// Structured body with a PDF attachment: not XDS-SD.
				xdsDEFormatCode:          "urn:ihe:lab:xd-lab:2008|1.3.6.1.4.1.19376.1.2.3|CR d'examens biologiques",
				xdsDEConfidentialityCode: "N|2.16.840.1.113883.5.25|N",
			},
			deIDs: map[string]string{xdsDEUniqueID: "1.2.250.1.999.77.3^CRBIO-20240715-0007"},
		},
		"ldl-ses-n3": {
			de: map[string]string{
				"creationTime":       "20240920151500",
				"languageCode":       "fr-FR",
				"legalAuthenticator": "899900011122^FICTIF^Agathe^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
				"serviceStartTime":   "20240912080000",
				"serviceStopTime":    "20240920143000",
				"sourcePatientId":    "IPP-556677^^^&1.2.250.1.999.88.1&ISO^PI",
				"sourcePatientInfo":  "PID-5|TESTLDL^JULIETTE^^^^^L,PID-7|19770615,PID-8|F",
				"URI":                "DOC0001.XML",
				XDMActionSlot:        "",
			},
			deAuthor: map[string]string{
				"authorPerson":      "899900011122^FICTIF^Agathe^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
				"authorInstitution": "Centre Hospitalier Fictif des Tilleuls^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1999000055",
				"authorSpecialty":   "G15_10/SM27^Médecin - Médecine interne (SM)^1.2.250.1.213.1.1.4.5",
			},
			deCodes: map[string]string{
				xdsDEClassCode:           "10|1.2.250.1.213.1.1.4.1|Compte rendu",
				xdsDEConfidentialityCode: "N|2.16.840.1.113883.5.25|Normal",
				// The ANS concept map ASS-A11 for the LDL-SES template 1.2.250.1.213.1.1.1.29.
				xdsDEFormatCode:         "urn:asip:ci-sis:ldl-ses:2017|1.2.250.1.213.1.1.4.2.282|Lettre de Liaison à la sortie de l'établissement de santé",
				xdsDEHealthcareFacility: "SA01|1.2.250.1.71.4.2.4|Etablissement public de santé",
				xdsDEPracticeSetting:    "ETABLISSEMENT|1.2.250.1.213.1.1.4.9|Etablissement de santé",
				xdsDETypeCode:           "11490-0|2.16.840.1.113883.6.1|Lettre de liaison à la sortie d'un établissement de soins",
			},
			deIDs: map[string]string{
				xdsDEPatientID: "277069912345612^^^&1.2.250.1.213.1.4.10&ISO^NH",
				xdsDEUniqueID:  "1.2.250.1.999.88.2^LDLSES-20240920-0031",
			},
			ss: map[string]string{
				"submissionTime":    "20240312144500",
				"intendedRecipient": recipient,
			},
			ssCodes: map[string]string{xdsSSContentTypeCode: "11490-0|2.16.840.1.113883.6.1|Lettre de liaison à la sortie d'un établissement de soins"},
			ssIDs: map[string]string{
				xdsSSSourceID:  "1.2.250.1.999.42.9",
				xdsSSPatientID: "277069912345612^^^&1.2.250.1.213.1.4.10&ISO^NH",
			},
		},
	}
	for _, c := range xdmCases {
		w, ok := cases[c.name]
		require.True(t, ok, c.name)
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cdaDoc, files, _ := packageCase(t, c)
			m := parseMetadata(t, files[XDMMetadata])
			check := func(what string, got []string, want string) {
				t.Helper()
				if want == "" {
					require.Empty(t, got, what)
					return
				}
				require.Equal(t, want, strings.Join(got, ","), what)
			}
			for k, v := range w.de {
				check("DocumentEntry slot "+k, slotValues(m.de, k), v)
			}
			author := classified(m.de, xdsDEAuthor)
			require.NotNil(t, author)
			for k, v := range w.deAuthor {
				check("DocumentEntry author slot "+k, slotValues(author, k), v)
			}
			for k, v := range w.deCodes {
				require.Equal(t, v, classifiedCode(m.de, k), "DocumentEntry classification %s", k)
			}
			for k, v := range w.deIDs {
				require.Equal(t, v, externalID(m.de, k), "DocumentEntry external id %s", k)
			}
			for k, v := range w.ss {
				check("SubmissionSet slot "+k, slotValues(m.ss, k), v)
			}
			for k, v := range w.ssCodes {
				require.Equal(t, v, classifiedCode(m.ss, k), "SubmissionSet classification %s", k)
			}
			for k, v := range w.ssIDs {
				require.Equal(t, v, externalID(m.ss, k), "SubmissionSet external id %s", k)
			}

			// Always present.
			sum := sha1.Sum(cdaDoc)
			check("hash", slotValues(m.de, "hash"), hex.EncodeToString(sum[:]))
			check("size", slotValues(m.de, "size"), strconv.Itoa(len(cdaDoc)))
			require.Equal(t, "text/xml", m.de.SelectAttrValue("mimeType", ""))
			require.Equal(t, xdsDocumentEntryType, m.de.SelectAttrValue("objectType", ""))
			d, err := Parse(cdaDoc)
			require.NoError(t, err)
			require.Equal(t, d.Title, m.de.FindElement("Name/LocalizedString").SelectAttrValue("value", ""))
			require.Regexp(t, `^2\.25\.[1-9][0-9]*$`, externalID(m.ss, xdsSSUniqueID))
			require.Equal(t, "1.2.250.1.999.42.9", externalID(m.ss, xdsSSSourceID))
			require.Equal(t, externalID(m.de, xdsDEPatientID), externalID(m.ss, xdsSSPatientID))
			require.Equal(t, classifiedCode(m.de, xdsDETypeCode), classifiedCode(m.ss, xdsSSContentTypeCode))

			// Every id is a urn:uuid, and they are distinct.
			uuidRE := regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
			seen := map[string]bool{}
			for _, e := range m.root.FindElements("//*[@id]") {
				id := e.SelectAttrValue("id", "")
				require.Regexp(t, uuidRE, id)
				require.False(t, seen[id], "duplicate id %s", id)
				seen[id] = true
			}

			// The registry package is classified as a submission set, and
			// holds the document entry.
			list := m.root.FindElement("RegistryObjectList")
			var node, assoc *etree.Element
			for _, e := range list.SelectElements("Classification") {
				node = e
			}
			for _, e := range list.SelectElements("Association") {
				assoc = e
			}
			require.NotNil(t, node)
			require.Equal(t, xdsSubmissionSetNode, node.SelectAttrValue("classificationNode", ""))
			require.Equal(t, m.ss.SelectAttrValue("id", ""), node.SelectAttrValue("classifiedObject", ""))
			require.NotNil(t, assoc)
			require.Equal(t, rimHasMember, assoc.SelectAttrValue("associationType", ""))
			require.Equal(t, m.ss.SelectAttrValue("id", ""), assoc.SelectAttrValue("sourceObject", ""))
			require.Equal(t, m.de.SelectAttrValue("id", ""), assoc.SelectAttrValue("targetObject", ""))
			check("SubmissionSetStatus", slotValues(assoc, "SubmissionSetStatus"), "Original")
		})
	}
}

// TestPackageXDMRoundTrip unzips the package and checks names, content and
// the hash and size of the document.
func TestPackageXDMRoundTrip(t *testing.T) {
	t.Parallel()
	name83 := regexp.MustCompile(`^[A-Z0-9_]{1,8}(\.[A-Z0-9_]{1,3})?$`)
	for _, c := range xdmCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cdaDoc, files, names := packageCase(t, c)
			require.Equal(t, []string{XDMReadme, XDMIndex, XDMMetadata, XDMDocumentFile}, names)
			for _, n := range names {
				for _, part := range strings.Split(n, "/") {
					require.Regexp(t, name83, part, "8.3 upper-case name in %s", n)
				}
			}
			require.True(t, bytes.Equal(cdaDoc, files[XDMDocumentFile]), "DOC0001.XML differs from the input")
			m := parseMetadata(t, files[XDMMetadata])
			sum := sha1.Sum(files[XDMDocumentFile])
			require.Equal(t, []string{hex.EncodeToString(sum[:])}, slotValues(m.de, "hash"))
			require.Equal(t, []string{strconv.Itoa(len(files[XDMDocumentFile]))}, slotValues(m.de, "size"))
			require.Equal(t, []string{"DOC0001.XML"}, slotValues(m.de, "URI"))
			require.Contains(t, string(files[XDMIndex]), `href="IHE_XDM/SUBSET01/DOC0001.XML"`)
			require.Contains(t, string(files[XDMIndex]), `href="IHE_XDM/SUBSET01/METADATA.XML"`)
			require.Contains(t, string(files[XDMReadme]), "1.2.250.1.999.42.9")
		})
	}
}

// TestPackageXDMOptions checks the options override the CDA and defaults.
func TestPackageXDMOptions(t *testing.T) {
	t.Parallel()
	opt := xdmTestOptions("D")
	opt.PracticeSetting = Code{Code: "AMBULATOIRE", CodeSystem: "1.2.250.1.213.1.1.4.9", DisplayName: "Ambulatoire"}
	opt.HealthcareFacilityType = Code{Code: "SA07", CodeSystem: "1.2.250.1.71.4.2.4", DisplayName: "Cabinet individuel"}
	opt.Class = Code{Code: "11", CodeSystem: "1.2.250.1.213.1.1.4.1", DisplayName: "Synthèse"}
	opt.Recipients = append(opt.Recipients, XDMRecipient{Address: "a|b^c@x.fr"}, XDMRecipient{})
	z, err := PackageXDM(readXDMTestdata(t, "n1-pdf.xml"), opt)
	require.NoError(t, err)
	files, _ := unzipXDM(t, z)
	m := parseMetadata(t, files[XDMMetadata])
	require.Equal(t, "AMBULATOIRE|1.2.250.1.213.1.1.4.9|Ambulatoire", classifiedCode(m.de, xdsDEPracticeSetting))
	require.Equal(t, "SA07|1.2.250.1.71.4.2.4|Cabinet individuel", classifiedCode(m.de, xdsDEHealthcareFacility))
	require.Equal(t, "11|1.2.250.1.213.1.1.4.1|Synthèse", classifiedCode(m.de, xdsDEClassCode))
	require.Equal(t, []string{"D"}, slotValues(m.de, XDMActionSlot))
	rec := slotValues(m.ss, "intendedRecipient")
	require.Len(t, rec, 2, "the empty recipient is dropped")
	require.Equal(t, `||^^Internet^a\F\b\S\c@x.fr`, rec[1])
}

// TestPackageXDMErrors checks the errors name what is wrong.
func TestPackageXDMErrors(t *testing.T) {
	t.Parallel()
	n1 := string(readXDMTestdata(t, "n1-pdf.xml"))
	noINS := strings.Replace(n1, `<id root="1.2.250.1.213.1.4.10" extension="280017512345678"/>`, "", 1)
	require.NotEqual(t, n1, noINS)
	noID := strings.Replace(noINS, `<id root="1.2.250.1.999.42.1.1" extension="IPP0012345"/>`, "", 1)
	require.NotEqual(t, noINS, noID)
	tests := []struct {
		name    string
		doc     string
		opt     func(*XDMOptions)
		is      error
		message string
	}{
		{name: "no patient identifier", doc: noID, is: ErrXDM, message: "no patient identifier"},
		{name: "empty SourceID", doc: n1, opt: func(o *XDMOptions) { o.SourceID = " " }, is: ErrXDM, message: "SourceID"},
		{name: "bad action", doc: n1, opt: func(o *XDMOptions) { o.Action = "X" }, is: ErrXDM, message: "Action"},
		{name: "not a CDA", doc: string(readXDMTestdata(t, "not-cda.xml")), is: ErrNotCDA, message: "not a CDA"},
		{name: "not XML", doc: "%PDF-1.4", is: ErrMalformed},
		{name: "short random source", doc: n1, opt: func(o *XDMOptions) { o.rand = strings.NewReader("short") }, is: ErrXDM, message: "random"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// options returns fresh options: the random source is spent.
			options := func() XDMOptions {
				opt := xdmTestOptions("")
				if tt.opt != nil {
					tt.opt(&opt)
				}
				return opt
			}
			z, err := PackageXDM([]byte(tt.doc), options())
			require.Error(t, err)
			require.Nil(t, z)
			require.True(t, errors.Is(err, tt.is), "%v is not %v", err, tt.is)
			require.Contains(t, err.Error(), tt.message)

			// Prepared then packaged, the input fails the same way.
			x, perr := PrepareXDM([]byte(tt.doc))
			if perr == nil {
				z, perr = x.Package(options())
				require.Nil(t, z)
			} else {
				require.Nil(t, x)
			}
			require.EqualError(t, perr, err.Error())
			require.True(t, errors.Is(perr, tt.is), "%v is not %v", perr, tt.is)
		})
	}
}

// TestPackageXDMOptionsFirst checks PackageXDM reports bad options before
// looking at the document, as it always did.
func TestPackageXDMOptionsFirst(t *testing.T) {
	t.Parallel()
	opt := xdmTestOptions("X")
	z, err := PackageXDM([]byte("%PDF-1.4"), opt)
	require.Nil(t, z)
	require.ErrorIs(t, err, ErrXDM)
	require.Contains(t, err.Error(), "Action")
}

// TestPrepareXDMPackage checks Package on a prepared document writes the
// zip PackageXDM writes, which is the zip zip.Writer.CreateHeader writes for
// the same files: the precompressed DOC0001.XML has the same header, CRC-32
// and timestamps as the other files.
func TestPrepareXDMPackage(t *testing.T) {
	t.Parallel()
	for _, c := range xdmCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cdaDoc := readXDMTestdata(t, c.file)
			x, err := PrepareXDM(cdaDoc)
			require.NoError(t, err)
			z, err := x.Package(xdmTestOptions(c.action))
			require.NoError(t, err)
			want, err := PackageXDM(cdaDoc, xdmTestOptions(c.action))
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, z), "Package and PackageXDM differ")

			files, names := unzipXDM(t, z) // reads each file to its end: checks its CRC-32
			require.True(t, bytes.Equal(cdaDoc, files[XDMDocumentFile]), "DOC0001.XML differs from the input")
			want = createHeaderZip(t, files, names, xdmTestOptions("").SubmissionTime)
			require.Equal(t, zipHeaders(t, want), zipHeaders(t, z))
			require.True(t, bytes.Equal(want, z), "the zip differs from the one CreateHeader writes")
		})
	}
}

// createHeaderZip zips files in the order of names with zip.Writer.CreateHeader,
// as PackageXDM did before it precompressed the document.
func createHeaderZip(t *testing.T, files map[string][]byte, names []string, modified time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, fastDeflate)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate, Modified: modified.UTC()})
		require.NoError(t, err)
		_, err = w.Write(files[n])
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// zipHeaders returns the headers of the files of zip z.
func zipHeaders(t *testing.T, z []byte) []zip.FileHeader {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	require.NoError(t, err)
	var out []zip.FileHeader
	for _, f := range zr.File {
		out = append(out, f.FileHeader)
	}
	return out
}

// TestXDMDocumentConcurrent packages one prepared document for several
// recipients at once (run it with -race): each gets its own metadata and the
// zip PackageXDM writes for it.
func TestXDMDocumentConcurrent(t *testing.T) {
	t.Parallel()
	cdaDoc := readXDMTestdata(t, "n1-pdf.xml")
	x, err := PrepareXDM(cdaDoc)
	require.NoError(t, err)
	// options returns recipient i's options, with a fresh random source.
	options := func(i int) XDMOptions {
		opt := xdmTestOptions([]string{"", "C", "D"}[i%3])
		opt.Recipients = []XDMRecipient{{Address: fmt.Sprintf("recipient%d@test.mssante.fr", i)}}
		return opt
	}
	const n = 8
	zips := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { zips[i], errs[i] = x.Package(options(i)) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		opt := options(i)
		want, err := PackageXDM(cdaDoc, opt)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, zips[i]), "recipient %d: Package and PackageXDM differ", i)
		files, _ := unzipXDM(t, zips[i])
		require.True(t, bytes.Equal(cdaDoc, files[XDMDocumentFile]), "recipient %d: DOC0001.XML differs from the input", i)
		m := parseMetadata(t, files[XDMMetadata])
		require.Equal(t, []string{fmt.Sprintf("||^^Internet^recipient%d@test.mssante.fr", i)}, slotValues(m.ss, "intendedRecipient"))
		if opt.Action == "" {
			require.Empty(t, slotValues(m.de, XDMActionSlot))
		} else {
			require.Equal(t, []string{opt.Action}, slotValues(m.de, XDMActionSlot))
		}
	}
}

// TestPackageXDMWithoutINS checks that a patient known only by the
// hospital's identifier gets it as patientId and sourcePatientId.
func TestPackageXDMWithoutINS(t *testing.T) {
	t.Parallel()
	n1 := string(readXDMTestdata(t, "n1-pdf.xml"))
	noINS := strings.Replace(n1, `<id root="1.2.250.1.213.1.4.10" extension="280017512345678"/>`, "", 1)
	z, err := PackageXDM([]byte(noINS), xdmTestOptions(""))
	require.NoError(t, err)
	files, _ := unzipXDM(t, z)
	m := parseMetadata(t, files[XDMMetadata])
	const ipp = "IPP0012345^^^&1.2.250.1.999.42.1.1&ISO^PI"
	require.Equal(t, ipp, externalID(m.de, xdsDEPatientID))
	require.Equal(t, ipp, externalID(m.ss, xdsSSPatientID))
	require.Equal(t, []string{ipp}, slotValues(m.de, "sourcePatientId"))
}

func TestXDSTime(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                    "",
		"2024":                "2024",
		"20240305":            "20240305",
		"202403051000":        "202403050900",
		"20240305100000+0100": "20240305090000",
		"20240715073000":      "20240715053000", // Paris summer time
		"20240305100000.5":    "20240305090000",
		"garbage":             "",
	} {
		require.Equal(t, want, xdsTime(in), in)
	}
}

func FuzzPackageXDM(f *testing.F) {
	for _, c := range xdmCases {
		f.Add(readXDMTestdata(f, c.file))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		opt := xdmTestOptions("")
		z, err := PackageXDM(data, opt)
		if err != nil {
			return
		}
		files, _ := unzipXDM(t, z)
		require.Equal(t, data, files[XDMDocumentFile])
		doc := etree.NewDocument()
		require.NoError(t, doc.ReadFromBytes(files[XDMMetadata]))
	})
}

func ExamplePackageXDM() {
	cdaDoc, err := os.ReadFile(filepath.Join("testdata", "n1-pdf.xml"))
	if err != nil {
		panic(err)
	}
	z, err := PackageXDM(cdaDoc, XDMOptions{
		SourceID: "1.2.250.1.999.42.9",
		Recipients: []XDMRecipient{{
			Address: "paul.durand@medecin.mssante.fr",
			ID:      II{Root: OIDRPPS, Extension: "810009876543"},
			Family:  "DURAND",
			Given:   "Paul",
		}},
	})
	if err != nil {
		panic(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		panic(err)
	}
	for _, f := range zr.File {
		fmt.Println(f.Name)
	}
	// Output:
	// README.TXT
	// INDEX.HTM
	// IHE_XDM/SUBSET01/METADATA.XML
	// IHE_XDM/SUBSET01/DOC0001.XML
}
