package hl7_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/hl7"
)

// segmentsMessage fills every component the typed views read, with values
// that name their position (fictitious data).
var segmentsMessage = strings.Join([]string{
	`MSH|^~\&|DPI&1.2.250.1.999.1&ISO|CH&1.2.250.1.999.2&ISO|PFI|CH|20240312150000||MDM^T02^MDM_T02|C1|P|2.6`,
	`EVN||20240312150100`,
	`PID|||IPP1^^^CH&1.2.250.1.999.3&ISO^PI~248017512345648^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS^^20200101||` +
		`HÉRON&VAN^ANNE^ANNE MARIE^JR^MME^^L~HERON-USAGE^Anne^^^^^D||19800115123000|F|||` +
		`12 rue Test&Test&12^Bât. B^PARIS^IDF^75012^FRA^H~^^^^^^BDL^^75112|||||||||||||||||||||PROV~VALI`,
	`PD1||||810000000001^TRAITANT^Marc^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS~810000000002^SECOND^Eve`,
	`PV1|1|O|UF-CARDIO^CH12^L2^CH&1.2.250.1.999.4&ISO|||||810000000003^ADRESSEUR^Luc~810000000004^AUTRE^Zoé`,
	`ORC|NW||||||||||||ACCUEIL^B1^L1||||SVC-CARDIO^Cardiologie^L`,
	`OBR|1|||11490-0^Lettre de sortie^LN|||||||||||||||||||||F|||810000000005^COPIE^Ana~^SANSID^Bob`,
	`TXA|1|11490-0^Lettre de sortie^LN|TEXT|||||||||EXT-1^NS^1.2.250.1.999.5^ISO|EXT-0^^1.2.250.1.999.5^ISO||||AU`,
	`OBX|1|ED|11490-0^Lettre de sortie^LN||APP^text^XML^Base64^PD94bWwvPg==||||||F`,
	`PRT||UC||RCT^Result Copies To^participation|810000000006^DEST^Ida^Jo^III^DR^^^ASIP-SANTE- PS&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS` +
		`|||Radiologie^^^^^999000014^UF^^^4021||APP-12^NS^1.2.250.1.999.6^ISO||||1 RUE DU TEST^BP 4^PARIS^^75002^FRA^O` +
		`|^NET^X.400^ida.dest@test.mssante.fr~0100000000^WPN^PH`,
	`OBX|2|CWE|MASQUE_PS^Masqué aux professionnels de Santé^MetaDMPMSS||N^^HL70136||||||F`,
	`NTE|1||ligne 1~ligne 2|FIN^Fin^L`,
	`OBX|3|TX|REMARQUE^Remarque^L||une~deux||||||F`,
	`ROL|1|AD|ODRP^Médecin traitant^IHE|810000000007^ROLE^Max~810000000008^ROLE^Noé||||||||` +
		`^WPN^PH^^^^0100000001~^NET^Internet^max.role@test.mssante.fr`,
}, "\r")

func TestSegments(t *testing.T) {
	t.Parallel()
	m, err := hl7.Parse([]byte(segmentsMessage), hl7.ParseOptions{})
	require.NoError(t, err)
	seg := func(name string, n int) *hl7.Segment { return m.SegmentsNamed(name)[n] }
	msh, evn, pid := hl7.MSH{Segment: seg("MSH", 0)}, hl7.EVN{Segment: seg("EVN", 0)}, hl7.PID{Segment: seg("PID", 0)}
	pd1, pv1, orc := hl7.PD1{Segment: seg("PD1", 0)}, hl7.PV1{Segment: seg("PV1", 0)}, hl7.ORC{Segment: seg("ORC", 0)}
	obr, txa, prt := hl7.OBR{Segment: seg("OBR", 0)}, hl7.TXA{Segment: seg("TXA", 0)}, hl7.PRT{Segment: seg("PRT", 0)}
	doc, flag, text := hl7.OBX{Segment: seg("OBX", 0)}, hl7.OBX{Segment: seg("OBX", 1)}, hl7.OBX{Segment: seg("OBX", 2)}
	rol, nte := hl7.ROL{Segment: seg("ROL", 0)}, hl7.NTE{Segment: seg("NTE", 0)}
	ps := hl7.HD{NamespaceID: "ASIP-SANTE-PS", UniversalID: "1.2.250.1.71.4.2.1", UniversalIDType: "ISO"}

	tests := []struct {
		name      string
		got, want any
	}{
		{"MSH-3", msh.SendingApplication(), hl7.HD{NamespaceID: "DPI", UniversalID: "1.2.250.1.999.1", UniversalIDType: "ISO"}},
		{"MSH-4", msh.SendingFacility(), hl7.HD{NamespaceID: "CH", UniversalID: "1.2.250.1.999.2", UniversalIDType: "ISO"}},
		{"EVN-2", evn.RecordedDateTime(), "20240312150100"},
		{"PID-3", pid.Identifiers(), []hl7.CX{
			{ID: "IPP1", AssigningAuthority: hl7.HD{NamespaceID: "CH", UniversalID: "1.2.250.1.999.3", UniversalIDType: "ISO"}, TypeCode: "PI"},
			{ID: "248017512345648", AssigningAuthority: hl7.HD{NamespaceID: "ASIP-SANTE-INS-NIR", UniversalID: "1.2.250.1.213.1.4.10", UniversalIDType: "ISO"}, TypeCode: "INS"},
		}},
		{"PID-5 (XPN.1 is FN.1)", pid.Names(), []hl7.XPN{
			{Family: "HÉRON", Given: "ANNE", SecondGiven: "ANNE MARIE", Suffix: "JR", Prefix: "MME", TypeCode: "L"},
			{Family: "HERON-USAGE", Given: "Anne", TypeCode: "D"},
		}},
		{"PID-7", pid.BirthDate(), "19800115123000"},
		{"PID-8", pid.Sex(), "F"},
		{"PID-11 (XAD.1 is SAD.1)", pid.Addresses(), []hl7.XAD{
			{Street: "12 rue Test", OtherDesignation: "Bât. B", City: "PARIS", State: "IDF", PostalCode: "75012", Country: "FRA", Type: "H"},
			{Type: "BDL"},
		}},
		{"PID-32", pid.IdentityReliability(), []string{"PROV", "VALI"}},
		{"PD1-4", pd1.PrimaryCareProviders(), []hl7.XCN{
			{ID: "810000000001", Family: "TRAITANT", Given: "Marc", Prefix: "DR", AssigningAuthority: ps, NameTypeCode: "D", TypeCode: "RPPS"},
			{ID: "810000000002", Family: "SECOND", Given: "Eve"},
		}},
		{"PV1-3", pv1.AssignedLocation(), hl7.PL{PointOfCare: "UF-CARDIO", Room: "CH12", Bed: "L2",
			Facility: hl7.HD{NamespaceID: "CH", UniversalID: "1.2.250.1.999.4", UniversalIDType: "ISO"}}},
		{"PV1-8", pv1.ReferringDoctors(), []hl7.XCN{{ID: "810000000003", Family: "ADRESSEUR", Given: "Luc"}, {ID: "810000000004", Family: "AUTRE", Given: "Zoé"}}},
		{"ORC-1", orc.OrderControl(), "NW"},
		{"ORC-13", orc.EntererLocation(), hl7.PL{PointOfCare: "ACCUEIL", Room: "B1", Bed: "L1"}},
		{"ORC-17", orc.EnteringOrganization(), hl7.CE{Identifier: "SVC-CARDIO", Text: "Cardiologie", CodingSystem: "L"}},
		{"OBR-4", obr.UniversalServiceID(), hl7.CE{Identifier: "11490-0", Text: "Lettre de sortie", CodingSystem: "LN"}},
		{"OBR-25", obr.ResultStatus(), "F"},
		{"OBR-28", obr.ResultCopiesTo(), []hl7.XCN{{ID: "810000000005", Family: "COPIE", Given: "Ana"}, {Family: "SANSID", Given: "Bob"}}},
		{"TXA-2", txa.DocumentType(), hl7.CE{Identifier: "11490-0", Text: "Lettre de sortie", CodingSystem: "LN"}},
		{"TXA-12", txa.UniqueDocumentNumber(), hl7.EI{ID: "EXT-1", NamespaceID: "NS", UniversalID: "1.2.250.1.999.5", UniversalIDType: "ISO"}},
		{"TXA-13", txa.ParentDocumentNumber(), hl7.EI{ID: "EXT-0", UniversalID: "1.2.250.1.999.5", UniversalIDType: "ISO"}},
		{"TXA-17", txa.CompletionStatus(), "AU"},
		{"OBX-2", doc.ValueType(), "ED"},
		{"OBX-3", doc.Identifier(), hl7.CE{Identifier: "11490-0", Text: "Lettre de sortie", CodingSystem: "LN"}},
		{"OBX-5 as ED", doc.EncapsulatedData(), hl7.ED{Source: "APP", Type: "text", Subtype: "XML", Encoding: "Base64", Data: "PD94bWwvPg=="}},
		{"OBX-11", doc.Status(), "F"},
		{"OBX-5 as CWE", flag.CodedValue(), hl7.CE{Identifier: "N", CodingSystem: "HL70136"}},
		{"OBX-5 raw", text.Value(), hl7.Field{{{"une"}}, {{"deux"}}}},
		{"PRT-4", prt.Participation(), hl7.CE{Identifier: "RCT", Text: "Result Copies To", CodingSystem: "participation"}},
		{"PRT-5", prt.Person(), hl7.XCN{ID: "810000000006", Family: "DEST", Given: "Ida", SecondGiven: "Jo", Suffix: "III", Prefix: "DR",
			AssigningAuthority: hl7.HD{NamespaceID: "ASIP-SANTE- PS", UniversalID: "1.2.250.1.71.4.2.1", UniversalIDType: "ISO"}, NameTypeCode: "D", TypeCode: "IDNPS"}},
		{"PRT-8", prt.Organisation(), hl7.XON{Name: "Radiologie", AssigningAuthority: hl7.HD{NamespaceID: "999000014"}, TypeCode: "UF", ID: "4021"}},
		{"PRT-14", prt.Addresses(), []hl7.XAD{{Street: "1 RUE DU TEST", OtherDesignation: "BP 4", City: "PARIS", PostalCode: "75002", Country: "FRA", Type: "O"}}},
		{"PRT-15", prt.Telecoms(), []hl7.XTN{{Use: "NET", EquipmentType: "X.400", Email: "ida.dest@test.mssante.fr"}, {Number: "0100000000", Use: "WPN", EquipmentType: "PH"}}},
		{"ROL-2", rol.ActionCode(), "AD"},
		{"ROL-3", rol.Role(), hl7.CE{Identifier: "ODRP", Text: "Médecin traitant", CodingSystem: "IHE"}},
		{"ROL-4", rol.Persons(), []hl7.XCN{{ID: "810000000007", Family: "ROLE", Given: "Max"}, {ID: "810000000008", Family: "ROLE", Given: "Noé"}}},
		{"ROL-12", rol.Telecoms(), []hl7.XTN{{Use: "WPN", EquipmentType: "PH"}, {Use: "NET", EquipmentType: "Internet", Email: "max.role@test.mssante.fr"}}},
		{"NTE-3", nte.Comments(), []string{"ligne 1", "ligne 2"}},
		{"NTE-4", nte.CommentType(), hl7.CE{Identifier: "FIN", Text: "Fin", CodingSystem: "L"}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.got, tt.name)
	}
}

// TestSegmentsAbsent checks that the views of a missing segment, or of
// empty fields, read zero values.
func TestSegmentsAbsent(t *testing.T) {
	t.Parallel()
	m, err := hl7.Parse([]byte("MSH|^~\\&|||||||ORU^R01|C1|P|2.5\rPID|1\rOBX|1"), hl7.ParseOptions{})
	require.NoError(t, err)
	pid := hl7.PID{Segment: m.Segment("PID")}
	txa := hl7.TXA{Segment: m.Segment("TXA")}
	prt := hl7.PRT{Segment: m.Segment("PRT")}
	obx := hl7.OBX{Segment: m.Segment("OBX")}
	require.Nil(t, txa.Segment)
	tests := []struct {
		name      string
		got, want any
	}{
		{"MSH-3 empty", hl7.MSH{Segment: m.Segment("MSH")}.SendingApplication(), hl7.HD{}},
		{"PID-3 empty", pid.Identifiers(), []hl7.CX(nil)},
		{"PID-32 empty", pid.IdentityReliability(), []string(nil)},
		{"TXA absent", txa.UniqueDocumentNumber(), hl7.EI{}},
		{"TXA-17 absent", txa.CompletionStatus(), ""},
		{"PRT absent", prt.Person(), hl7.XCN{}},
		{"PRT-15 absent", prt.Telecoms(), []hl7.XTN(nil)},
		{"OBX-5 empty", obx.EncapsulatedData(), hl7.ED{}},
		{"OBX-5 raw empty", obx.Value(), hl7.Field(nil)},
		{"EVN absent", hl7.EVN{}.RecordedDateTime(), ""},
		{"NTE absent", hl7.NTE{}.Comments(), []string(nil)},
		{"ROL absent", hl7.ROL{}.Role(), hl7.CE{}},
		{"PV1 absent", hl7.PV1{}.AssignedLocation(), hl7.PL{}},
		{"PD1 absent", hl7.PD1{}.PrimaryCareProviders(), []hl7.XCN(nil)},
		{"ORC absent", hl7.ORC{}.OrderControl(), ""},
		{"OBR absent", hl7.OBR{}.ResultCopiesTo(), []hl7.XCN(nil)},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.got, tt.name)
	}
}
