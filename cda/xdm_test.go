package cda

import (
	"archive/zip"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
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

	"github.com/mssdispatch/mssdispatch/internal/mailtest"
)

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

// xdmPackageCase is one package of several documents, or with options
// beyond those of xdmTestOptions.
type xdmPackageCase struct {
	name  string   // golden directory
	files []string // testdata files, in package order
	opt   func(*XDMOptions)
}

// xdmTestSender is the sender of the HL7 message (its PRT SB segment), the
// author of the submission set when XDMOptions.SubmissionAuthor is set.
var xdmTestSender = Author{
	Person:       Person{ID: II{Root: OIDRPPS, Extension: "810007778889"}, Family: "ENVOI", Given: "Anne"},
	Organization: Organization{ID: II{Root: "1.2.250.1.71.4.2.2", Extension: "1999000097"}, Name: "Service d'envoi des comptes rendus"},
}

// The report as a level 1 (PDF) and a level 3 document for one patient:
// n1-pdf.xml has the INS and an IPP, n3-pdf-media.xml the INS only, so both
// have the INS as patientId.
var xdmPackageCases = []xdmPackageCase{
	{name: "n1-pdf+n3-pdf-media", files: []string{"n1-pdf.xml", "n3-pdf-media.xml"}},
	{name: "n1-pdf+n3-pdf-media-sender", files: []string{"n1-pdf.xml", "n3-pdf-media.xml"}, opt: func(o *XDMOptions) {
		o.Action = "C"
		o.SubmissionAuthor = xdmTestSender
	}},
}

// options returns the options of the case, with a fresh random source.
func (c xdmPackageCase) options() XDMOptions {
	opt := xdmTestOptions("")
	if c.opt != nil {
		c.opt(&opt)
	}
	return opt
}

// packageDocs prepares the testdata files and packages them with opt; it
// returns the documents read and the files of the zip.
func packageDocs(t testing.TB, opt XDMOptions, names ...string) (cdaDocs [][]byte, z []byte) {
	t.Helper()
	var docs []*XDMDocument
	for _, n := range names {
		cdaDoc := readXDMTestdata(t, n)
		x, err := PrepareXDM(cdaDoc)
		require.NoError(t, err)
		cdaDocs = append(cdaDocs, cdaDoc)
		docs = append(docs, x)
	}
	z, err := Package(opt, docs...)
	require.NoError(t, err)
	return cdaDocs, z
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

func packageCase(t testing.TB, c xdmCase) (cdaDoc []byte, files map[string][]byte, names []string) {
	t.Helper()
	cdaDoc = readXDMTestdata(t, c.file)
	z, err := PackageXDM(cdaDoc, xdmTestOptions(c.action))
	require.NoError(t, err)
	files, names = mailtest.Unzip(t, z)
	return cdaDoc, files, names
}

// TestPackageXDMGolden compares METADATA.XML, README.TXT and INDEX.HTM
// with testdata/xdm/golden/<case>/ (rewrite with -update).
func TestPackageXDMGolden(t *testing.T) {
	t.Parallel()
	// check compares the files of the zip with the golden files of case name.
	check := func(t *testing.T, name string, files map[string][]byte) {
		dir := filepath.Join("testdata", "xdm", "golden", name)
		for _, f := range []string{XDMMetadata, XDMReadme, XDMIndex} {
			golden := filepath.Join(dir, filepath.Base(f))
			if *Update {
				require.NoError(t, os.MkdirAll(dir, 0o755))
				require.NoError(t, os.WriteFile(golden, files[f], 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), string(files[f]), "%s is stale: run go test ./cda -run TestPackageXDMGolden -update", golden)
		}
	}
	for _, c := range xdmCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, files, _ := packageCase(t, c)
			check(t, c.name, files)
		})
	}
	for _, c := range xdmPackageCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, z := packageDocs(t, c.options(), c.files...)
			files, _ := mailtest.Unzip(t, z)
			check(t, c.name, files)
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
	validate := func(t *testing.T, meta []byte) {
		f := filepath.Join(t.TempDir(), "METADATA.XML")
		require.NoError(t, os.WriteFile(f, meta, 0o644))
		out, err := exec.Command(xmllint, "--noout", "--nonet", "--schema", schema, f).CombinedOutput()
		require.NoError(t, err, "xmllint: %s", out)
		require.Contains(t, string(out), "validates")
	}
	for _, c := range xdmCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, files, _ := packageCase(t, c)
			validate(t, files[XDMMetadata])
		})
	}
	for _, c := range xdmPackageCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, z := packageDocs(t, c.options(), c.files...)
			files, _ := mailtest.Unzip(t, z)
			validate(t, files[XDMMetadata])
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

// documentEntries returns the ExtrinsicObjects of m, in order.
func (m metadata) documentEntries() []*etree.Element {
	return m.root.FindElement("RegistryObjectList").SelectElements("ExtrinsicObject")
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
	files, _ := mailtest.Unzip(t, z)
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
				z, perr = Package(options(), x)
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
			z, err := Package(xdmTestOptions(c.action), x)
			require.NoError(t, err)
			want, err := PackageXDM(cdaDoc, xdmTestOptions(c.action))
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, z), "Package and PackageXDM differ")

			files, names := mailtest.Unzip(t, z) // reads each file to its end: checks its CRC-32
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
		wg.Go(func() { zips[i], errs[i] = Package(options(i), x) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		opt := options(i)
		want, err := PackageXDM(cdaDoc, opt)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, zips[i]), "recipient %d: Package and PackageXDM differ", i)
		files, _ := mailtest.Unzip(t, zips[i])
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
	files, _ := mailtest.Unzip(t, z)
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
	n3 := readXDMTestdata(f, "n3-pdf-media.xml")
	other, err := PrepareXDM(n3)
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte) {
		opt := xdmTestOptions("")
		z, err := PackageXDM(data, opt)
		if err != nil {
			return
		}
		files, _ := mailtest.Unzip(t, z)
		require.Equal(t, data, files[XDMDocumentFile])
		doc := etree.NewDocument()
		require.NoError(t, doc.ReadFromBytes(files[XDMMetadata]))

		// With a second document: refused unless both are for one patient.
		x, err := PrepareXDM(data)
		require.NoError(t, err)
		z, err = Package(xdmTestOptions(""), x, other)
		if err != nil {
			require.ErrorIs(t, err, ErrXDM)
			require.Nil(t, z)
			return
		}
		files, _ = mailtest.Unzip(t, z)
		require.Equal(t, data, files[XDMDocumentPath(1)])
		require.Equal(t, n3, files[XDMDocumentPath(2)])
		m := parseMetadata(t, files[XDMMetadata])
		require.Len(t, m.documentEntries(), 2)
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

// TestXDMDocumentPath checks the names of the documents in the zip.
func TestXDMDocumentPath(t *testing.T) {
	t.Parallel()
	require.Equal(t, XDMDocumentFile, XDMDocumentPath(1))
	require.Equal(t, "IHE_XDM/SUBSET01/DOC0002.XML", XDMDocumentPath(2))
	require.Equal(t, "IHE_XDM/SUBSET01/DOC0123.XML", XDMDocumentPath(123))
	require.Equal(t, "DOC0002.XML", xdmDocumentName(2))
}

// TestPackageTwoDocuments packages a report sent as a level 1 (PDF) and a
// level 3 CDA document: one submission set with two document entries, each
// with its own values, and both documents in the zip.
func TestPackageTwoDocuments(t *testing.T) {
	t.Parallel()
	opt := xdmTestOptions("C")
	cdaDocs, z := packageDocs(t, opt, "n1-pdf.xml", "n3-pdf-media.xml")
	files, names := mailtest.Unzip(t, z)
	require.Equal(t, []string{XDMReadme, XDMIndex, XDMMetadata, XDMDocumentPath(1), XDMDocumentPath(2)}, names)
	name83 := regexp.MustCompile(`^[A-Z0-9_]{1,8}(\.[A-Z0-9_]{1,3})?$`)
	for _, n := range names {
		for _, part := range strings.Split(n, "/") {
			require.Regexp(t, name83, part, "8.3 upper-case name in %s", n)
		}
	}
	require.True(t, bytes.Equal(cdaDocs[0], files[XDMDocumentPath(1)]), "DOC0001.XML differs from the first document")
	require.True(t, bytes.Equal(cdaDocs[1], files[XDMDocumentPath(2)]), "DOC0002.XML differs from the second document")

	// The documents are stored precompressed with the header CreateHeader
	// would write.
	want := createHeaderZip(t, files, names, opt.SubmissionTime)
	require.Equal(t, zipHeaders(t, want), zipHeaders(t, z))
	require.True(t, bytes.Equal(want, z), "the zip differs from the one CreateHeader writes")

	m := parseMetadata(t, files[XDMMetadata])
	des := m.documentEntries()
	require.Len(t, des, 2)
	type wantDE struct {
		uniqueID, uri, format, typeCode, confidentiality, sourcePatientID, authorPerson, authorSpecialty string
	}
	wantDEs := []wantDE{{
		uniqueID:        "1.2.250.1.999.42.1.4^LDL-20240312-000123",
		uri:             "DOC0001.XML",
		format:          "urn:ihe:iti:xds-sd:pdf:2008|1.3.6.1.4.1.19376.1.2.3|Document à corps non structuré en Pdf/A-1",
		typeCode:        "11490-0|2.16.840.1.113883.6.1|Lettre de sortie",
		confidentiality: "N|2.16.840.1.113883.5.25|Normal",
		sourcePatientID: "IPP0012345^^^&1.2.250.1.999.42.1.1&ISO^PI",
		authorPerson:    "810001234567^MARTIN^Jean^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
		authorSpecialty: "G15_10/SM27^Médecin - Médecine interne (SM)^1.2.250.1.213.1.1.4.5",
	}, {
		uniqueID:        "1.2.250.1.999.77.3^CRBIO-20240715-0007",
		uri:             "DOC0002.XML",
		format:          "urn:ihe:lab:xd-lab:2008|1.3.6.1.4.1.19376.1.2.3|CR d'examens biologiques",
		typeCode:        "11502-2|2.16.840.1.113883.6.1|CR d'examens biologiques",
		confidentiality: "N|2.16.840.1.113883.5.25|N",
		sourcePatientID: "280017512345678^^^&1.2.250.1.213.1.4.10&ISO^NH",
		authorPerson:    "810005554443^BERNARD^Claire^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
	}}
	const patientID = "280017512345678^^^&1.2.250.1.213.1.4.10&ISO^NH"
	deIDs := map[string]bool{}
	for i, de := range des {
		w := wantDEs[i]
		id := de.SelectAttrValue("id", "")
		require.False(t, deIDs[id], "document entries %d: duplicate id %s", i+1, id)
		deIDs[id] = true
		sum := sha1.Sum(cdaDocs[i])
		require.Equal(t, []string{hex.EncodeToString(sum[:])}, slotValues(de, "hash"), "document %d", i+1)
		require.Equal(t, []string{strconv.Itoa(len(cdaDocs[i]))}, slotValues(de, "size"), "document %d", i+1)
		require.Equal(t, []string{w.uri}, slotValues(de, "URI"), "document %d", i+1)
		require.Equal(t, []string{"C"}, slotValues(de, XDMActionSlot), "document %d", i+1)
		require.Equal(t, []string{w.sourcePatientID}, slotValues(de, "sourcePatientId"), "document %d", i+1)
		require.Equal(t, w.uniqueID, externalID(de, xdsDEUniqueID), "document %d", i+1)
		require.Equal(t, patientID, externalID(de, xdsDEPatientID), "document %d", i+1)
		require.Equal(t, w.format, classifiedCode(de, xdsDEFormatCode), "document %d", i+1)
		require.Equal(t, w.typeCode, classifiedCode(de, xdsDETypeCode), "document %d", i+1)
		require.Equal(t, w.confidentiality, classifiedCode(de, xdsDEConfidentialityCode), "document %d", i+1)
		author := classified(de, xdsDEAuthor)
		require.NotNil(t, author, "document %d", i+1)
		require.Equal(t, id, author.SelectAttrValue("classifiedObject", ""), "document %d", i+1)
		require.Equal(t, []string{w.authorPerson}, slotValues(author, "authorPerson"), "document %d", i+1)
		if w.authorSpecialty == "" {
			require.Empty(t, slotValues(author, "authorSpecialty"), "document %d", i+1)
		} else {
			require.Equal(t, []string{w.authorSpecialty}, slotValues(author, "authorSpecialty"), "document %d", i+1)
		}
		for _, c := range de.SelectElements("Classification") {
			require.Equal(t, id, c.SelectAttrValue("classifiedObject", ""), "document %d: classification of another object", i+1)
		}
	}

	// One submission set, named and typed after the first document, with
	// the first document's author (no SubmissionAuthor).
	list := m.root.FindElement("RegistryObjectList")
	require.Len(t, list.SelectElements("RegistryPackage"), 1)
	ssID := m.ss.SelectAttrValue("id", "")
	require.Equal(t, "Lettre de liaison de sortie", m.ss.FindElement("Name/LocalizedString").SelectAttrValue("value", ""))
	require.Equal(t, wantDEs[0].typeCode, classifiedCode(m.ss, xdsSSContentTypeCode))
	require.Equal(t, patientID, externalID(m.ss, xdsSSPatientID))
	ssAuthor := classified(m.ss, xdsSSAuthor)
	require.NotNil(t, ssAuthor)
	require.Equal(t, []string{wantDEs[0].authorPerson}, slotValues(ssAuthor, "authorPerson"))
	require.Equal(t, []string{wantDEs[0].authorSpecialty}, slotValues(ssAuthor, "authorSpecialty"))
	nodes := list.SelectElements("Classification")
	require.Len(t, nodes, 1)
	require.Equal(t, ssID, nodes[0].SelectAttrValue("classifiedObject", ""))

	// One HasMember association per document entry, in order.
	assocs := list.SelectElements("Association")
	require.Len(t, assocs, 2)
	for i, as := range assocs {
		require.Equal(t, rimHasMember, as.SelectAttrValue("associationType", ""))
		require.Equal(t, ssID, as.SelectAttrValue("sourceObject", ""))
		require.Equal(t, des[i].SelectAttrValue("id", ""), as.SelectAttrValue("targetObject", ""))
		require.Equal(t, []string{"Original"}, slotValues(as, "SubmissionSetStatus"))
	}

	// Every id is distinct.
	seen := map[string]bool{}
	for _, e := range m.root.FindElements("//*[@id]") {
		id := e.SelectAttrValue("id", "")
		require.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
	}

	// README.TXT and INDEX.HTM list both documents.
	readme, index := string(files[XDMReadme]), string(files[XDMIndex])
	require.Contains(t, readme, "  IHE_XDM/SUBSET01/DOC0001.XML  HL7 CDA R2 document: Lettre de liaison de sortie\r\n")
	require.Contains(t, readme, "  IHE_XDM/SUBSET01/DOC0002.XML  HL7 CDA R2 document: Compte rendu d'examens biologiques\r\n")
	require.Contains(t, index, `<a href="IHE_XDM/SUBSET01/DOC0001.XML">IHE_XDM/SUBSET01/DOC0001.XML</a> : Lettre de liaison de sortie`)
	require.Contains(t, index, `<a href="IHE_XDM/SUBSET01/DOC0002.XML">IHE_XDM/SUBSET01/DOC0002.XML</a> : Compte rendu d&#39;examens biologiques`)

	// In the other order, the other document comes first everywhere.
	cdaDocs, z = packageDocs(t, xdmTestOptions(""), "n3-pdf-media.xml", "n1-pdf.xml")
	files, _ = mailtest.Unzip(t, z)
	require.True(t, bytes.Equal(cdaDocs[0], files[XDMDocumentPath(1)]))
	require.True(t, bytes.Equal(cdaDocs[1], files[XDMDocumentPath(2)]))
	m = parseMetadata(t, files[XDMMetadata])
	des = m.documentEntries()
	require.Len(t, des, 2)
	require.Equal(t, wantDEs[1].uniqueID, externalID(des[0], xdsDEUniqueID))
	require.Equal(t, []string{"DOC0001.XML"}, slotValues(des[0], "URI"))
	require.Equal(t, wantDEs[0].uniqueID, externalID(des[1], xdsDEUniqueID))
	require.Equal(t, []string{"DOC0002.XML"}, slotValues(des[1], "URI"))
	require.Equal(t, "Compte rendu d'examens biologiques", m.ss.FindElement("Name/LocalizedString").SelectAttrValue("value", ""))
	require.Equal(t, wantDEs[1].typeCode, classifiedCode(m.ss, xdsSSContentTypeCode))
	require.Equal(t, []string{wantDEs[1].authorPerson}, slotValues(classified(m.ss, xdsSSAuthor), "authorPerson"))
}

// TestPackageDocumentsRefused checks Package refuses documents it must not
// put in one package, above all documents of different patients, and that
// its errors name the documents, never the patient.
func TestPackageDocumentsRefused(t *testing.T) {
	t.Parallel()
	n1 := string(readXDMTestdata(t, "n1-pdf.xml"))
	n3 := string(readXDMTestdata(t, "n3-pdf-media.xml"))
	const ins = `<id root="1.2.250.1.213.1.4.10" extension="280017512345678"/>`
	n1NoINS := strings.Replace(n1, ins, "", 1)
	require.NotEqual(t, n1, n1NoINS)
	n3OtherINS := strings.Replace(n3, ins, `<id root="1.2.250.1.213.1.4.10" extension="280017512345679"/>`, 1)
	require.NotEqual(t, n3, n3OtherINS)
	n3OtherID := strings.Replace(n3, `extension="CRBIO-20240715-0007"/>
  <code`, `extension="CRBIO-20240715-0008"/>
  <code`, 1)
	require.NotEqual(t, n3, n3OtherID)
	prepare := func(doc string) *XDMDocument {
		x, err := PrepareXDM([]byte(doc))
		require.NoError(t, err)
		return x
	}
	x1, x3 := prepare(n1), prepare(n3)
	tests := []struct {
		name    string
		docs    []*XDMDocument
		opt     func(*XDMOptions)
		message string
	}{
		{name: "no document", message: "no document"},
		{name: "nil document", docs: []*XDMDocument{x1, nil}, message: "document 2 is nil"},
		{name: "another patient", docs: []*XDMDocument{x1, prepare(string(readXDMTestdata(t, "cr-bio-n3.xml")))},
			message: "document 2 (1.2.250.1.999.77.3.20240104.2) is not for the patient of document 1 (1.2.250.1.999.42.1.4^LDL-20240312-000123)"},
		{name: "another INS", docs: []*XDMDocument{x1, prepare(n3OtherINS)}, message: "document 2 (1.2.250.1.999.77.3^CRBIO-20240715-0007) is not for the patient"},
		// The same person, but one document has the INS and the other the
		// IPP only: their patientIds differ, and Package cannot tell.
		{name: "INS and IPP only", docs: []*XDMDocument{prepare(n1NoINS), x3}, message: "is not for the patient"},
		{name: "third document", docs: []*XDMDocument{x1, x3, prepare(n3OtherINS)}, message: "document 3 "},
		{name: "same document twice", docs: []*XDMDocument{x1, x3, x1}, message: "documents 1 and 3 have the same id 1.2.250.1.999.42.1.4^LDL-20240312-000123"},
		{name: "bad options first", opt: func(o *XDMOptions) { o.Action = "X" }, message: "Action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opt := xdmTestOptions("")
			if tt.opt != nil {
				tt.opt(&opt)
			}
			z, err := Package(opt, tt.docs...)
			require.Nil(t, z)
			require.ErrorIs(t, err, ErrXDM)
			require.Contains(t, err.Error(), tt.message)
			for _, patient := range []string{"280017512345678", "280017512345679", "IPP0012345", "DUPONT", "LEGRAND"} {
				require.NotContains(t, err.Error(), patient, "the error names the patient")
			}
		})
	}

	// Two documents of one patient with different ids are packaged.
	z, err := Package(xdmTestOptions(""), x3, prepare(n3OtherID))
	require.NoError(t, err)
	files, _ := mailtest.Unzip(t, z)
	require.Len(t, parseMetadata(t, files[XDMMetadata]).documentEntries(), 2)
}

// TestPackageSubmissionAuthor checks XDMOptions.SubmissionAuthor is the
// author of the submission set, while each document entry keeps its CDA's.
func TestPackageSubmissionAuthor(t *testing.T) {
	t.Parallel()
	const (
		martin     = "810001234567^MARTIN^Jean^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
		hospital   = "Centre Hospitalier de Test^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1999000014"
		specialty  = "G15_10/SM27^Médecin - Médecine interne (SM)^1.2.250.1.213.1.1.4.5"
		sender     = "810007778889^ENVOI^Anne^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
		senderOrg  = "Service d'envoi des comptes rendus^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1999000097"
		bernard    = "810005554443^BERNARD^Claire^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
		laboratory = "Laboratoire de Test^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1999000030"
	)
	type authorSlots struct{ person, institution, specialty string } // "" = absent
	tests := []struct {
		name   string
		author Author
		want   authorSlots
	}{
		{name: "zero: the CDA's author", want: authorSlots{martin, hospital, specialty}},
		{name: "only a time: the CDA's author", author: Author{Time: time.Date(2024, 3, 12, 14, 0, 0, 0, time.UTC)}, want: authorSlots{martin, hospital, specialty}},
		{name: "person and organisation", author: xdmTestSender, want: authorSlots{person: sender, institution: senderOrg}},
		{name: "organisation only", author: Author{Organization: xdmTestSender.Organization}, want: authorSlots{institution: senderOrg}},
		{name: "person only", author: Author{Person: xdmTestSender.Person}, want: authorSlots{person: sender}},
	}
	check := func(t *testing.T, what string, e *etree.Element, want authorSlots) {
		t.Helper()
		require.NotNil(t, e, what)
		for slot, v := range map[string]string{"authorPerson": want.person, "authorInstitution": want.institution, "authorSpecialty": want.specialty} {
			if v == "" {
				require.Empty(t, slotValues(e, slot), "%s %s", what, slot)
			} else {
				require.Equal(t, []string{v}, slotValues(e, slot), "%s %s", what, slot)
			}
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opt := xdmTestOptions("")
			opt.SubmissionAuthor = tt.author
			_, z := packageDocs(t, opt, "n1-pdf.xml", "n3-pdf-media.xml")
			files, _ := mailtest.Unzip(t, z)
			m := parseMetadata(t, files[XDMMetadata])
			check(t, "SubmissionSet author", classified(m.ss, xdsSSAuthor), tt.want)
			des := m.documentEntries()
			require.Len(t, des, 2)
			check(t, "DocumentEntry 1 author", classified(des[0], xdsDEAuthor), authorSlots{martin, hospital, specialty})
			check(t, "DocumentEntry 2 author", classified(des[1], xdsDEAuthor), authorSlots{person: bernard, institution: laboratory})
		})
	}
}

// TestPackageOneDocumentUnchanged checks a single document gives, for the
// same randomness, what PackageXDM gives, whether prepared or not: the
// golden files of TestPackageXDMGolden pin that output.
func TestPackageOneDocumentUnchanged(t *testing.T) {
	t.Parallel()
	for _, c := range xdmCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cdaDocs, z := packageDocs(t, xdmTestOptions(c.action), c.file)
			want, err := PackageXDM(cdaDocs[0], xdmTestOptions(c.action))
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, z))
			_, names := mailtest.Unzip(t, z)
			require.Equal(t, []string{XDMReadme, XDMIndex, XDMMetadata, XDMDocumentFile}, names)
		})
	}
}

func ExamplePackage() {
	var docs []*XDMDocument
	// The same report as a CDA level 1 (PDF) and a level 3 document.
	for _, name := range []string{"n1-pdf.xml", "n3-pdf-media.xml"} {
		cdaDoc, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			panic(err)
		}
		x, err := PrepareXDM(cdaDoc)
		if err != nil {
			panic(err)
		}
		docs = append(docs, x)
	}
	z, err := Package(XDMOptions{
		SourceID:   "1.2.250.1.999.42.9",
		Recipients: []XDMRecipient{{Address: "paul.durand@medecin.mssante.fr"}},
		SubmissionAuthor: Author{
			Person:       Person{ID: II{Root: OIDRPPS, Extension: "810007778889"}, Family: "ENVOI", Given: "Anne"},
			Organization: Organization{ID: II{Root: "1.2.250.1.71.4.2.2", Extension: "1999000097"}, Name: "Centre Hospitalier de Test"},
		},
	}, docs...)
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
	// IHE_XDM/SUBSET01/DOC0002.XML
}
