package cda

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"html"
	"io"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
)

// XDM package layout (IHE ITI TF-1 16, ITI TF-3 4.3.1): 8.3 upper-case names.
const (
	XDMReadme       = "README.TXT"
	XDMIndex        = "INDEX.HTM"
	XDMMetadata     = "IHE_XDM/SUBSET01/METADATA.XML"
	XDMDocumentFile = "IHE_XDM/SUBSET01/DOC0001.XML" // the first document: XDMDocumentPath(1)
)

// XDMDocumentPath returns the name in the zip of the n-th document of a
// package, counting from 1: IHE_XDM/SUBSET01/DOC0001.XML, DOC0002.XML, …
// (8.3 upper-case names up to n = 99999).
func XDMDocumentPath(n int) string {
	return "IHE_XDM/SUBSET01/" + xdmDocumentName(n)
}

// xdmDocumentName returns the file name of the n-th document, its URI in
// the metadata: DOC0001.XML, …
func xdmDocumentName(n int) string {
	return fmt.Sprintf("DOC%04d.XML", n)
}

// XDMActionSlot is the name of the extra metadata slot of the DocumentEntry
// that carries XDMOptions.Action ("C" replace, "D" delete).
//
// The ANS texts reachable when this was written (IG "volet transmission
// document CDA R2", TestContenuCDA) do not name it; this name follows the
// IHE rule for extra metadata (a URN outside urn:ihe:) and the CI-SIS URN
// prefix. Confirm it against the Référentiel MSSanté #2 before production.
const XDMActionSlot = "urn:asip:ci-sis:2010:action"

// FormatCodes written in XDSDocumentEntry.formatCode.
var (
	// FormatCodePDF is the formatCode of a level 1 document whose
	// nonXMLBody is a PDF (IHE XDS-SD; JDV_J60 of the ANS).
	FormatCodePDF = Code{Code: "urn:ihe:iti:xds-sd:pdf:2008", CodeSystem: "1.3.6.1.4.1.19376.1.2.3", DisplayName: "Document à corps non structuré en Pdf/A-1"}
	// FormatCodeText is the formatCode of a level 1 document whose nonXMLBody is text.
	FormatCodeText = Code{Code: "urn:ihe:iti:xds-sd:text:2008", CodeSystem: "1.3.6.1.4.1.19376.1.2.3", DisplayName: "Document à corps non structuré en texte brut"}
	// FormatCodeCISIS is the formatCode of a structured (level 3) document
	// whose template is not in the table of Package: a CDA R2 document
	// with a CI-SIS header.
	FormatCodeCISIS = Code{Code: "urn:asip:ci-sis:2010", CodeSystem: "1.2.250.1.213.1.1.4.2.282", DisplayName: "Document à entête CI-SIS"}
)

// structuredFormatCodes maps the templateId of a structured document model
// to its formatCode, after the ANS concept map
// ASS-A11-CorresModeleCDA-XdsFormatCode-CISIS (only the models the service
// sends are listed; others get FormatCodeCISIS).
var structuredFormatCodes = map[string]Code{
	"1.2.250.1.213.1.1.1.55": {Code: "urn:ihe:lab:xd-lab:2008", CodeSystem: "1.3.6.1.4.1.19376.1.2.3", DisplayName: "CR d'examens biologiques"}, // CR-BIO
	"1.2.250.1.213.1.1.1.29": {Code: "urn:asip:ci-sis:ldl-ses:2017", CodeSystem: "1.2.250.1.213.1.1.4.2.282",
		DisplayName: "Lettre de Liaison à la sortie de l'établissement de santé"}, // LDL-SES
}

// Defaults of the XDS codes Package cannot find in the CDA header.
var (
	// DefaultClassCode is the classCode (JDV_J57-ClassCode-DMP) used when
	// XDMOptions.Class is zero: "Compte rendu".
	DefaultClassCode = Code{Code: "10", CodeSystem: "1.2.250.1.213.1.1.4.1", DisplayName: "Compte rendu"}
	// DefaultPracticeSetting is the practiceSettingCode used when neither
	// the options nor the CDA give one: "Etablissement de santé".
	DefaultPracticeSetting = Code{Code: "ETABLISSEMENT", CodeSystem: "1.2.250.1.213.1.1.4.9", DisplayName: "Etablissement de santé"}
	// DefaultHealthcareFacilityType is the healthcareFacilityTypeCode used
	// when neither the options nor the CDA give one: "Etablissement public de santé".
	DefaultHealthcareFacilityType = Code{Code: "SA01", CodeSystem: "1.2.250.1.71.4.2.4", DisplayName: "Etablissement public de santé"}
)

// XDMRecipient is an intended recipient of the document.
type XDMRecipient struct {
	Address       string // MSSanté address
	ID            II     // RPPS (root 1.2.250.1.71.4.2.1, extension "8"+RPPS) or zero
	Family, Given string
	Organization  string
}

// XDMOptions is what the package needs beyond the CDA.
type XDMOptions struct {
	SourceID       string    // OID of the sending organisation (submission set sourceId). Required.
	SubmissionTime time.Time // defaults to time.Now()
	Action         string    // "" new, "C" replace, "D" delete: the extra metadata "action"
	Recipients     []XDMRecipient
	// PracticeSetting and HealthcareFacilityType: zero = taken from the CDA
	// header when present (documentationOf/serviceEvent/performer/
	// assignedEntity/representedOrganization/standardIndustryClassCode and
	// componentOf/encompassingEncounter/location/healthCareFacility/code),
	// else DefaultPracticeSetting and DefaultHealthcareFacilityType.
	PracticeSetting, HealthcareFacilityType Code
	// Class is the XDS classCode; zero = DefaultClassCode.
	Class Code
	// Application names the sending software in README.TXT; defaults to "mssdispatch".
	Application string
	// SubmissionAuthor is the author of the submission set (authorPerson and
	// authorInstitution): the sender of the message, its PRT SB segment
	// (person and organisation). Only its person and organisation are
	// written, without authorSpecialty. Zero (no person and no
	// organisation) means the author of the first document's CDA, with its
	// specialty. Each document entry's author is always its own CDA's.
	SubmissionAuthor Author

	// rand is the source of the UUIDs and of the submission set uniqueId;
	// nil = crypto/rand. Tests set it for stable output.
	rand io.Reader
}

// ErrXDM is returned (wrapped) by PrepareXDM, Package and PackageXDM for
// documents or options they cannot package.
var ErrXDM = errors.New("cda: XDM")

// XDS metadata identifiers (IHE ITI TF-3 4.2.5).
const (
	xdsDocumentEntryType       = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
	xdsSubmissionSetNode       = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
	xdsDEAuthor                = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
	xdsDEClassCode             = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
	xdsDEConfidentialityCode   = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
	xdsDEFormatCode            = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
	xdsDEHealthcareFacility    = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
	xdsDEPracticeSetting       = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
	xdsDETypeCode              = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
	xdsDEPatientID             = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
	xdsDEUniqueID              = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
	xdsSSAuthor                = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
	xdsSSContentTypeCode       = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
	xdsSSPatientID             = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
	xdsSSSourceID              = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
	xdsSSUniqueID              = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
	rimRegistryPackage         = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"
	rimClassificationType      = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
	rimHasMember               = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
	nsLCM                      = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
	nsRIM                      = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
	xdsTimeLayout              = "20060102150405"
	defaultXDMApplication      = "mssdispatch"
	defaultLanguage            = "fr-FR"
	xdsLongNameMax             = 256
	xdmSubmissionSetStatusSlot = "SubmissionSetStatus"
)

// XDMDocument is a CDA document ready to be packaged as IHE_XDM.ZIP, once
// per recipient, by Package, alone or with the other documents of the same
// report: PrepareXDM has read its header, hashed it and compressed it. It is
// read-only, so safe for concurrent use.
type XDMDocument struct {
	doc    *Document
	header xdmHeader
	sha1   string // hex SHA-1 of the document (the hash slot)
	size   int    // length of the document (the size slot)
	// deflated is the document as stored in the zip (DOC0001.XML, …);
	// crc is its CRC-32.
	deflated []byte
	crc      uint32
}

// PrepareXDM reads the CDA document cdaDoc, hashes it and compresses it for
// Package. It fails with the errors of Parse for input that is not a CDA
// document, and with the errors of Tree.XDM.
func PrepareXDM(cdaDoc []byte) (*XDMDocument, error) {
	tree, err := Read(cdaDoc)
	if err != nil {
		return nil, err
	}
	return tree.XDM()
}

// XDM prepares the document read for Package, as PrepareXDM, for a caller
// that reads its PDF from the same tree. It fails with an error wrapping
// ErrXDM when the patient has no identifier at all.
func (t *Tree) XDM() (*XDMDocument, error) {
	cdaDoc := t.data
	d, err := t.header()
	if err != nil {
		return nil, err
	}
	if _, _, ok := xdsPatientIDs(d.Patient); !ok {
		return nil, fmt.Errorf("%w: no patient identifier: recordTarget/patientRole/id has neither an INS (%s) nor a local identifier with a root and an extension", ErrXDM, strings.Join(insRoots, ", "))
	}
	deflated, err := deflate(cdaDoc)
	if err != nil {
		return nil, fmt.Errorf("%w: compress the document: %w", ErrXDM, err)
	}
	sum := sha1.Sum(cdaDoc)
	return &XDMDocument{
		doc:      d,
		header:   readXDMHeader(t.root),
		sha1:     hex.EncodeToString(sum[:]),
		size:     len(cdaDoc),
		deflated: deflated,
		crc:      crc32.ChecksumIEEE(cdaDoc),
	}, nil
}

// Header is the header of the document, as PrepareXDM read it; it must not
// be changed.
func (x *XDMDocument) Header() *Document { return x.doc }

// Package returns the IHE_XDM.ZIP of docs for the recipients of opt:
// README.TXT, INDEX.HTM, IHE_XDM/SUBSET01/METADATA.XML and the documents, in
// order, as IHE_XDM/SUBSET01/DOC0001.XML, DOC0002.XML, … (XDMDocumentPath;
// 8.3 upper-case names). An HL7 message may carry a report as two CDA
// documents (level 1 and level 3, each with its own id): both go in one
// package.
//
// METADATA.XML is an ebRIM 3.0 lcm:SubmitObjectsRequest holding one document
// entry per document, one submission set and a HasMember association from
// the submission set to each document entry, filled from the CDA headers as
// the ANS maps them (IG "volet transmission document CDA R2", lien entête
// CDA / métadonnées XDS). The submission set takes its name and
// contentTypeCode from the first document, and its author from
// opt.SubmissionAuthor, else from the first document. Each document is
// stored byte for byte. The patientId is the INS (`matricule^^^&OID&ISO^NH`);
// for a patient without one (structuration minimale allows a recordTarget
// with local identifiers only) it is the first local identifier
// (`id^^^&OID&ISO^PI`), and the receiver sees X-MSS-INS: N.
//
// Package fails with an error wrapping ErrXDM when SourceID or Action is
// invalid, when docs is empty or holds nil, when two documents have the same
// id, and when the documents' patientIds differ: a package never mixes
// patients.
func Package(opt XDMOptions, docs ...*XDMDocument) ([]byte, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	patientID, err := checkXDMDocuments(docs)
	if err != nil {
		return nil, err
	}
	if opt.SubmissionTime.IsZero() {
		opt.SubmissionTime = time.Now()
	}
	if opt.Application == "" {
		opt.Application = defaultXDMApplication
	}
	if opt.rand == nil {
		opt.rand = rand.Reader
	}
	meta, err := buildMetadata(docs, patientID, opt)
	if err != nil {
		return nil, err
	}

	size := len(meta) + 4<<10 // the other files deflate to less than meta
	for _, x := range docs {
		size += len(x.deflated)
	}
	var buf bytes.Buffer
	buf.Grow(size)
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, fastDeflate)
	files := []struct {
		name string
		data []byte
	}{
		{XDMReadme, readmeTXT(docs, opt)},
		{XDMIndex, indexHTM(docs, opt)},
		{XDMMetadata, meta},
	}
	var fh *zip.FileHeader
	for _, f := range files {
		fh = &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: opt.SubmissionTime.UTC()}
		w, err := zw.CreateHeader(fh)
		if err != nil {
			return nil, fmt.Errorf("%w: zip %s: %w", ErrXDM, f.name, err)
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, fmt.Errorf("%w: zip %s: %w", ErrXDM, f.name, err)
		}
	}
	// CreateRaw writes the header as given, where CreateHeader fills in the
	// versions, the MS-DOS and extended timestamps of Modified and the data
	// descriptor flag: each document takes the header CreateHeader filled in
	// for METADATA.XML, so that the zip is the one CreateHeader would write.
	for i, x := range docs {
		doc := *fh
		doc.Name = XDMDocumentPath(i + 1)
		doc.Extra = slices.Clone(fh.Extra)
		doc.CRC32 = x.crc
		doc.CompressedSize64 = uint64(len(x.deflated))
		doc.UncompressedSize64 = uint64(x.size)
		w, err := zw.CreateRaw(&doc)
		if err != nil {
			return nil, fmt.Errorf("%w: zip %s: %w", ErrXDM, doc.Name, err)
		}
		if _, err := w.Write(x.deflated); err != nil {
			return nil, fmt.Errorf("%w: zip %s: %w", ErrXDM, doc.Name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("%w: zip: %w", ErrXDM, err)
	}
	return buf.Bytes(), nil
}

// checkXDMDocuments returns the patientId the documents share, or an error
// wrapping ErrXDM when there is no document, one is nil, two have the same
// id or two are for different patients. The errors name the documents by
// position and id, never the patient.
func checkXDMDocuments(docs []*XDMDocument) (patientID string, err error) {
	if len(docs) == 0 {
		return "", fmt.Errorf("%w: no document to package", ErrXDM)
	}
	for i, x := range docs {
		if x == nil {
			return "", fmt.Errorf("%w: document %d is nil", ErrXDM, i+1)
		}
		id, _, _ := xdsPatientIDs(x.doc.Patient)
		if i == 0 {
			patientID = id
			continue
		}
		if id != patientID {
			return "", fmt.Errorf("%w: document %d (%s) is not for the patient of document 1 (%s): their patientIds differ, and one package never mixes patients",
				ErrXDM, i+1, x.doc.UniqueID(), docs[0].doc.UniqueID())
		}
		for j, y := range docs[:i] {
			if y.doc.UniqueID() == x.doc.UniqueID() {
				return "", fmt.Errorf("%w: documents %d and %d have the same id %s", ErrXDM, j+1, i+1, x.doc.UniqueID())
			}
		}
	}
	return patientID, nil
}

// check returns an error wrapping ErrXDM when SourceID or Action is invalid.
func (opt XDMOptions) check() error {
	if strings.TrimSpace(opt.SourceID) == "" {
		return fmt.Errorf("%w: XDMOptions.SourceID (OID of the sending organisation) is empty", ErrXDM)
	}
	switch opt.Action {
	case "", "C", "D":
		return nil
	}
	return fmt.Errorf("%w: XDMOptions.Action %q: want \"\", \"C\" or \"D\"", ErrXDM, opt.Action)
}

// PackageXDM returns the IHE_XDM.ZIP of the CDA document cdaDoc alone for
// the recipients of opt: PrepareXDM then Package. It checks opt first, so a bad
// SourceID or Action is reported whatever cdaDoc holds. A document sent to
// several recipients is better prepared once and packaged for each.
func PackageXDM(cdaDoc []byte, opt XDMOptions) ([]byte, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	x, err := PrepareXDM(cdaDoc)
	if err != nil {
		return nil, err
	}
	return Package(opt, x)
}

// deflate compresses data as the zip writer of Package does, into a slice of
// its exact size (an XDMDocument may be kept a while).
func deflate(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(data)) // the base64 of a PDF deflates to about 3/4
	fw, err := fastDeflate(&buf)
	if err != nil {
		return nil, err
	}
	_, err = fw.Write(data)
	if cerr := fw.Close(); err == nil {
		err = cerr
	}
	return bytes.Clone(buf.Bytes()), err
}

// flateWriters are the compressors of fastDeflate, reused (each is about
// 1 MB).
var flateWriters sync.Pool

// fastDeflate compresses the files of an XDM zip at flate.BestSpeed. The
// document is mostly the base64 of a PDF, which the default level
// compresses little more for twice the time.
func fastDeflate(w io.Writer) (io.WriteCloser, error) {
	if fw, ok := flateWriters.Get().(*flate.Writer); ok {
		fw.Reset(w)
		return &pooledFlate{fw}, nil
	}
	fw, err := flate.NewWriter(w, flate.BestSpeed)
	if err != nil {
		return nil, err
	}
	return &pooledFlate{fw}, nil
}

// pooledFlate returns its writer to flateWriters when closed.
type pooledFlate struct{ *flate.Writer }

func (p *pooledFlate) Close() error {
	err := p.Writer.Close()
	flateWriters.Put(p.Writer)
	return err
}

// xdmHeader holds the header fields Package needs that Document lacks.
type xdmHeader struct {
	templateIDs            []string
	nonXMLMediaType        string // mediaType of component/nonXMLBody/text, "" for a structured body
	language               string
	authorSpecialty        Code // author/assignedAuthor/code
	serviceStart           string
	serviceStop            string
	practiceSetting        Code
	healthcareFacilityType Code
}

func readXDMHeader(root *etree.Element) xdmHeader {
	var h xdmHeader
	for _, t := range children(root, "templateId") {
		if r := attr(t, "root"); r != "" {
			h.templateIDs = append(h.templateIDs, r)
		}
	}
	if nxb := path(root, "component", "nonXMLBody"); nxb != nil {
		h.nonXMLMediaType = strings.ToLower(attr(child(nxb, "text"), "mediaType"))
		if h.nonXMLMediaType == "" {
			h.nonXMLMediaType = "text/plain" // the ED default
		}
	}
	h.language = attr(child(root, "languageCode"), "code")
	h.authorSpecialty = readCode(path(root, "author", "assignedAuthor", "code"))
	se := path(root, "documentationOf", "serviceEvent")
	h.serviceStart = xdsTime(attr(path(se, "effectiveTime", "low"), "value"))
	h.serviceStop = xdsTime(attr(path(se, "effectiveTime", "high"), "value"))
	h.practiceSetting = readCode(path(se, "performer", "assignedEntity", "representedOrganization", "standardIndustryClassCode"))
	h.healthcareFacilityType = readCode(path(root, "componentOf", "encompassingEncounter", "location", "healthCareFacility", "code"))
	return h
}

// xdsTime converts an HL7 TS to the XDS DTM in UTC (YYYYMMDDHHMMSS, or less
// precise when the TS is); "" when absent or malformed.
func xdsTime(ts string) string {
	if ts == "" {
		return ""
	}
	t, err := ParseTS(ts)
	if err != nil {
		return ""
	}
	n := len(ts)
	if i := strings.IndexAny(ts, ".+-"); i >= 0 {
		n = i
	}
	if n <= 8 { // a date without time: no time zone conversion makes sense
		return ts[:n]
	}
	return t.UTC().Format(xdsTimeLayout)[:n]
}

// formatCode returns the XDS formatCode of the document.
func (h xdmHeader) formatCode() Code {
	switch {
	case h.nonXMLMediaType == "application/pdf":
		return FormatCodePDF
	case h.nonXMLMediaType != "":
		return FormatCodeText
	}
	for _, t := range h.templateIDs {
		if c, ok := structuredFormatCodes[t]; ok {
			return c
		}
	}
	return FormatCodeCISIS
}

// metadataBuilder writes the ebRIM elements of METADATA.XML.
type metadataBuilder struct {
	rand io.Reader
	err  error
}

// uuid returns a random (version 4) urn:uuid.
func (b *metadataBuilder) uuid() string {
	u := b.uuidBytes()
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func (b *metadataBuilder) uuidBytes() [16]byte {
	var u [16]byte
	if b.err == nil {
		if _, err := io.ReadFull(b.rand, u[:]); err != nil {
			b.err = fmt.Errorf("%w: random UUID: %w", ErrXDM, err)
		}
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// oid returns a new OID under 2.25 (ITU-T X.667: the decimal of a UUID).
func (b *metadataBuilder) oid() string {
	u := b.uuidBytes()
	return "2.25." + new(big.Int).SetBytes(u[:]).String()
}

func (b *metadataBuilder) slot(parent *etree.Element, name string, values ...string) {
	if len(values) == 0 {
		return
	}
	s := parent.CreateElement("rim:Slot")
	s.CreateAttr("name", name)
	vl := s.CreateElement("rim:ValueList")
	for _, v := range values {
		vl.CreateElement("rim:Value").SetText(truncate(v, xdsLongNameMax))
	}
}

func localizedName(parent *etree.Element, tag, value string) {
	if value == "" {
		return
	}
	ls := parent.CreateElement(tag).CreateElement("rim:LocalizedString")
	ls.CreateAttr("xml:lang", defaultLanguage)
	ls.CreateAttr("charset", "UTF-8")
	ls.CreateAttr("value", truncate(value, 1024))
}

// classification adds a coded Classification of object to parent.
func (b *metadataBuilder) classification(parent *etree.Element, scheme, object string, c Code) {
	cl := parent.CreateElement("rim:Classification")
	cl.CreateAttr("id", b.uuid())
	cl.CreateAttr("objectType", rimClassificationType)
	cl.CreateAttr("classificationScheme", scheme)
	cl.CreateAttr("classifiedObject", object)
	cl.CreateAttr("nodeRepresentation", c.Code)
	b.slot(cl, "codingScheme", c.CodeSystem)
	display := c.DisplayName
	if display == "" {
		display = c.Code
	}
	localizedName(cl, "rim:Name", display)
}

// author adds the author Classification of object to parent.
func (b *metadataBuilder) author(parent *etree.Element, scheme, object string, a Author, specialty Code) {
	cl := parent.CreateElement("rim:Classification")
	cl.CreateAttr("id", b.uuid())
	cl.CreateAttr("objectType", rimClassificationType)
	cl.CreateAttr("classificationScheme", scheme)
	cl.CreateAttr("classifiedObject", object)
	cl.CreateAttr("nodeRepresentation", "")
	if p := xcn(a.Person); p != "" {
		b.slot(cl, "authorPerson", p)
	}
	if o := xon(a.Organization); o != "" {
		b.slot(cl, "authorInstitution", o)
	}
	if specialty.Code != "" {
		b.slot(cl, "authorSpecialty", hl7Join("^", specialty.Code, specialty.DisplayName, specialty.CodeSystem))
	}
}

func (b *metadataBuilder) externalID(parent *etree.Element, scheme, object, value, label string) {
	ei := parent.CreateElement("rim:ExternalIdentifier")
	ei.CreateAttr("id", b.uuid())
	ei.CreateAttr("objectType", "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier")
	ei.CreateAttr("identificationScheme", scheme)
	ei.CreateAttr("registryObject", object)
	ei.CreateAttr("value", value)
	localizedName(ei, "rim:Name", label)
}

// xdsPatientIDs returns the patientId and the sourcePatientId of p: the INS
// and the first local identifier (IPP); either one stands for both when the
// other is missing. ok is false when p has neither.
func xdsPatientIDs(p Patient) (patientID, sourcePatientID string, ok bool) {
	ins, insRoot, hasINS := p.INS()
	local := ""
	for _, id := range p.IDs {
		if id.Extension != "" && id.Root != "" && !slices.Contains(insRoots, id.Root) {
			local = cx(id.Extension, id.Root, "PI")
			break
		}
	}
	switch {
	case hasINS && local != "":
		return cx(ins, insRoot, "NH"), local, true
	case hasINS:
		id := cx(ins, insRoot, "NH")
		return id, id, true
	case local != "":
		return local, local, true
	}
	return "", "", false
}

// buildMetadata returns METADATA.XML of docs, whose patientId is patientID.
func buildMetadata(docs []*XDMDocument, patientID string, opt XDMOptions) ([]byte, error) {
	b := &metadataBuilder{rand: opt.rand}
	// The ids are drawn in this order (for one document: submission set,
	// document entry, association, uniqueId) so that a seeded source gives
	// the same package as before Package took several documents.
	ssID := b.uuid()
	deIDs := make([]string, len(docs))
	for i := range docs {
		deIDs[i] = b.uuid()
	}
	assocIDs := make([]string, len(docs))
	for i := range docs {
		assocIDs[i] = b.uuid()
	}
	ssUniqueID := b.oid()

	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	req := doc.CreateElement("lcm:SubmitObjectsRequest")
	req.CreateAttr("xmlns:lcm", nsLCM)
	req.CreateAttr("xmlns:rim", nsRIM)
	list := req.CreateElement("rim:RegistryObjectList")

	// The document entries.
	for i, x := range docs {
		b.documentEntry(list, deIDs[i], xdmDocumentName(i+1), x, opt)
	}

	// The submission set.
	first := docs[0]
	ss := list.CreateElement("rim:RegistryPackage")
	ss.CreateAttr("id", ssID)
	ss.CreateAttr("objectType", rimRegistryPackage)
	b.slot(ss, "submissionTime", opt.SubmissionTime.UTC().Format(xdsTimeLayout))
	var recipients []string
	for _, r := range opt.Recipients {
		if v := intendedRecipient(r); v != "" {
			recipients = append(recipients, v)
		}
	}
	b.slot(ss, "intendedRecipient", recipients...)
	localizedName(ss, "rim:Name", first.doc.Title)
	if a := opt.SubmissionAuthor; xcn(a.Person) != "" || xon(a.Organization) != "" {
		b.author(ss, xdsSSAuthor, ssID, a, Code{})
	} else {
		b.author(ss, xdsSSAuthor, ssID, first.doc.Author, first.header.authorSpecialty)
	}
	b.classification(ss, xdsSSContentTypeCode, ssID, first.typeCode())
	b.externalID(ss, xdsSSUniqueID, ssID, ssUniqueID, "XDSSubmissionSet.uniqueId")
	b.externalID(ss, xdsSSSourceID, ssID, opt.SourceID, "XDSSubmissionSet.sourceId")
	b.externalID(ss, xdsSSPatientID, ssID, patientID, "XDSSubmissionSet.patientId")

	// The registry package is a submission set.
	cl := list.CreateElement("rim:Classification")
	cl.CreateAttr("id", b.uuid())
	cl.CreateAttr("objectType", rimClassificationType)
	cl.CreateAttr("classifiedObject", ssID)
	cl.CreateAttr("classificationNode", xdsSubmissionSetNode)

	// The submission set holds the document entries.
	for i, deID := range deIDs {
		as := list.CreateElement("rim:Association")
		as.CreateAttr("id", assocIDs[i])
		as.CreateAttr("objectType", "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association")
		as.CreateAttr("associationType", rimHasMember)
		as.CreateAttr("sourceObject", ssID)
		as.CreateAttr("targetObject", deID)
		b.slot(as, xdmSubmissionSetStatusSlot, "Original")
	}

	if b.err != nil {
		return nil, b.err
	}
	doc.Indent(2)
	out, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("%w: write METADATA.XML: %w", ErrXDM, err)
	}
	return out, nil
}

// typeCode returns the XDS typeCode of the document: its LOINC code.
func (x *XDMDocument) typeCode() Code {
	c := x.doc.Code
	if c.CodeSystem == "" {
		c.CodeSystem = OIDLOINC
	}
	return c
}

// documentEntry adds to list the document entry deID of x, whose file in the
// zip is uri (DOC0001.XML, …).
func (b *metadataBuilder) documentEntry(list *etree.Element, deID, uri string, x *XDMDocument, opt XDMOptions) {
	d, h := x.doc, x.header
	patientID, sourcePatientID, _ := xdsPatientIDs(d.Patient)
	practice := firstCode(opt.PracticeSetting, h.practiceSetting, DefaultPracticeSetting)
	facility := firstCode(opt.HealthcareFacilityType, h.healthcareFacilityType, DefaultHealthcareFacilityType)
	class := firstCode(opt.Class, DefaultClassCode)
	language := h.language
	if language == "" {
		language = defaultLanguage
	}

	de := list.CreateElement("rim:ExtrinsicObject")
	de.CreateAttr("id", deID)
	de.CreateAttr("mimeType", "text/xml")
	de.CreateAttr("objectType", xdsDocumentEntryType)
	if !d.EffectiveTime.IsZero() {
		b.slot(de, "creationTime", d.EffectiveTime.UTC().Format(xdsTimeLayout))
	}
	b.slot(de, "hash", x.sha1)
	b.slot(de, "languageCode", language)
	if la := xcn(d.LegalAuthenticator); la != "" {
		b.slot(de, "legalAuthenticator", la)
	}
	if h.serviceStart != "" {
		b.slot(de, "serviceStartTime", h.serviceStart)
	}
	if h.serviceStop != "" {
		b.slot(de, "serviceStopTime", h.serviceStop)
	}
	b.slot(de, "size", strconv.Itoa(x.size))
	b.slot(de, "sourcePatientId", sourcePatientID)
	b.slot(de, "sourcePatientInfo", sourcePatientInfo(d.Patient)...)
	b.slot(de, "URI", uri)
	if opt.Action != "" {
		b.slot(de, XDMActionSlot, opt.Action)
	}
	localizedName(de, "rim:Name", d.Title)
	b.author(de, xdsDEAuthor, deID, d.Author, h.authorSpecialty)
	b.classification(de, xdsDEClassCode, deID, class)
	b.classification(de, xdsDEConfidentialityCode, deID, d.Confidentiality)
	b.classification(de, xdsDEFormatCode, deID, h.formatCode())
	b.classification(de, xdsDEHealthcareFacility, deID, facility)
	b.classification(de, xdsDEPracticeSetting, deID, practice)
	b.classification(de, xdsDETypeCode, deID, x.typeCode())
	b.externalID(de, xdsDEPatientID, deID, patientID, "XDSDocumentEntry.patientId")
	b.externalID(de, xdsDEUniqueID, deID, d.UniqueID(), "XDSDocumentEntry.uniqueId")
}

// firstCode returns the first code with a Code.
func firstCode(cs ...Code) Code {
	for _, c := range cs {
		if c.Code != "" {
			return c
		}
	}
	return Code{}
}

// hl7Escape escapes the HL7 v2 delimiters in a component value.
func hl7Escape(s string) string {
	if !strings.ContainsAny(s, `|^&~\`) {
		return s
	}
	r := strings.NewReplacer(`\`, `\E\`, `|`, `\F\`, `^`, `\S\`, `&`, `\T\`, `~`, `\R\`)
	return r.Replace(s)
}

// hl7Join escapes and joins components, dropping trailing empty ones.
func hl7Join(sep string, parts ...string) string {
	for i := range parts {
		parts[i] = hl7Escape(parts[i])
	}
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return strings.Join(parts, sep)
}

// cx formats an HL7 v2 CX: id^^^&root&ISO^typeCode.
func cx(id, root, typeCode string) string {
	return hl7Escape(id) + "^^^&" + root + "&ISO^" + typeCode
}

// xcn formats a person as an HL7 v2 XCN the ANS way:
// id^FAMILY^Given^^^^^^&root&ISO^D^^^IDNPS for a national id (RPPS/ADELI),
// id^FAMILY^Given^^^^^^&root&ISO otherwise; "" for an empty person.
func xcn(p Person) string {
	if p.ID.IsZero() && p.Family == "" && p.Given == "" {
		return ""
	}
	s := hl7Escape(p.ID.Extension) + "^" + hl7Escape(p.Family) + "^" + hl7Escape(p.Given) + "^^^^^^"
	if p.ID.Root != "" {
		s += "&" + p.ID.Root + "&ISO"
		if p.ID.Root == OIDRPPS {
			s += "^D^^^IDNPS"
		}
	}
	return s
}

// xon formats an organisation as an HL7 v2 XON the ANS way:
// Name^^^^^&root&ISO^IDNST^^^id; "" for an empty organisation.
func xon(o Organization) string {
	if o.Name == "" && o.ID.IsZero() {
		return ""
	}
	s := hl7Escape(o.Name)
	if o.ID.Root != "" && o.ID.Extension != "" {
		s += "^^^^^&" + o.ID.Root + "&ISO^IDNST^^^" + hl7Escape(o.ID.Extension)
	}
	return s
}

// intendedRecipient formats r as XON|XCN|XTN (IHE ITI TF-3 4.2.3.3.8):
// Organization|id^FAMILY^Given^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS|^^Internet^address.
func intendedRecipient(r XDMRecipient) string {
	org := hl7Escape(r.Organization)
	person := xcn(Person{ID: r.ID, Family: r.Family, Given: r.Given})
	tel := ""
	if r.Address != "" {
		tel = "^^Internet^" + hl7Escape(r.Address)
	}
	if org == "" && person == "" && tel == "" {
		return ""
	}
	return org + "|" + person + "|" + tel
}

// sourcePatientInfo returns the PID-5, PID-7 and PID-8 values of the patient.
func sourcePatientInfo(p Patient) []string {
	var out []string
	if p.Family != "" || p.Given != "" {
		out = append(out, "PID-5|"+hl7Join("^", p.Family, p.Given, "", "", "", "", "L"))
	}
	if p.BirthDate != "" {
		out = append(out, "PID-7|"+hl7Escape(p.BirthDate))
	}
	if p.Sex != "" {
		out = append(out, "PID-8|"+hl7Escape(p.Sex))
	}
	return out
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// readmeTXT returns README.TXT: who sent the package and what it holds.
func readmeTXT(docs []*XDMDocument, opt XDMOptions) []byte {
	var b strings.Builder
	b.WriteString("IHE XDM package (IHE ITI Cross-Enterprise Document Media Interchange)\r\n\r\n")
	fmt.Fprintf(&b, "Sending application: %s\r\n", opt.Application)
	fmt.Fprintf(&b, "Sending organisation (sourceId): %s\r\n", opt.SourceID)
	if c := docs[0].doc.Custodian.Name; c != "" {
		fmt.Fprintf(&b, "Custodian: %s\r\n", c)
	}
	fmt.Fprintf(&b, "Submission time (UTC): %s\r\n\r\n", opt.SubmissionTime.UTC().Format(time.RFC3339))
	b.WriteString("Contents:\r\n")
	fmt.Fprintf(&b, "  %s  this file\r\n", XDMReadme)
	fmt.Fprintf(&b, "  %s  index of the contents, for a web browser\r\n", XDMIndex)
	fmt.Fprintf(&b, "  %s  XDS metadata of the submission set\r\n", XDMMetadata)
	for i, x := range docs {
		fmt.Fprintf(&b, "  %s  HL7 CDA R2 document: %s\r\n", XDMDocumentPath(i+1), x.doc.Title)
	}
	return []byte(b.String())
}

// indexHTM returns INDEX.HTM, linking to the documents and the metadata.
func indexHTM(docs []*XDMDocument, opt XDMOptions) []byte {
	e := html.EscapeString
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\r\n<html lang=\"fr\">\r\n<head><meta charset=\"utf-8\"><title>Documents transmis (IHE XDM)</title></head>\r\n<body>\r\n")
	b.WriteString("<h1>Documents transmis (IHE XDM)</h1>\r\n")
	fmt.Fprintf(&b, "<p>Envoyés par %s (sourceId %s) le %s (UTC).</p>\r\n", e(opt.Application), e(opt.SourceID), e(opt.SubmissionTime.UTC().Format("02/01/2006 à 15:04:05")))
	b.WriteString("<ul>\r\n")
	for i, x := range docs {
		f := XDMDocumentPath(i + 1)
		fmt.Fprintf(&b, "<li><a href=\"%s\">%s</a> : %s</li>\r\n", f, f, e(x.doc.Title))
	}
	fmt.Fprintf(&b, "<li><a href=\"%s\">%s</a> : métadonnées XDS de l'envoi</li>\r\n", XDMMetadata, XDMMetadata)
	fmt.Fprintf(&b, "<li><a href=\"%s\">%s</a> : description de l'envoi</li>\r\n", XDMReadme, XDMReadme)
	b.WriteString("</ul>\r\n</body>\r\n</html>\r\n")
	return []byte(b.String())
}
