package correspondents

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/internal/pgtest"
)

// resolverRow is an extraction row of a person's mailbox.
func resolverRow(nationalID, address, demat string, postal bool) string {
	set := map[int]string{
		colBoxType: "PER", colAddress: address, colPPIDType: "8", colPPID: nationalID[1:], colNationalID: nationalID,
		colLastName: "NOM" + nationalID[len(nationalID)-3:], colFirstName: "Prénom", colDematerialised: demat,
		colOrgName: "CABINET " + nationalID, colProfessionCode: "10", colProfessionLabel: "Médecin",
	}
	if nationalID == pTwo {
		set[colSkillLabel] = "Cardiologie et maladies vasculaires"
	}
	if postal {
		set[colL4Number], set[colL4StreetType], set[colL4StreetName] = "1", "R", "DU TEST"
		set[colL6Routing], set[colPostalCode] = "75002 PARIS", "75002"
	}
	return row(set)
}

// The people of the resolver's fixture directory, by national id.
const (
	pDemat       = "899900000101" // one trusted box, dématérialisation ticked, postal address
	pPaper       = "899900000102" // one trusted box, no dématérialisation, postal address
	pNoPostal    = "899900000103" // one trusted box, no dématérialisation, no postal address
	pTwo         = "899900000104" // two trusted boxes, no dématérialisation
	pUntrusted   = "899900000105" // one box outside the trust space, postal address
	pUntrustedNP = "899900000106" // one box outside the trust space, no postal address
	pParent      = "899900000107" // one box in a sub-domain of a trusted domain
	pUnknown     = "899900000199" // not in the directory
	finessOrg    = "999000099"    // an organisation's box
)

// setupResolver loads the fixture directory, whitelist and local directory.
func setupResolver(t *testing.T) (*Store, *Resolver) {
	t.Helper()
	ctx := context.Background()
	store := NewStore(pgtest.NewPool(t))
	org := row(map[int]string{colBoxType: "ORG", colAddress: "secretariat@clinique.trusted-demo.fr",
		colStructureIDType: "1", colStructureID: finessOrg, colOrgName: "CLINIQUE DEMO", colDematerialised: "",
		colL6Routing: "69003 LYON", colPostalCode: "69003"})
	lines := []string{
		strings.Join(extractionHeader[:], "|"),
		resolverRow(pDemat, "demat@trusted-demo.fr", "true", true),
		resolverRow(pPaper, "paper@trusted-demo.fr", "false", true),
		resolverRow(pNoPostal, "nopostal@trusted-demo.fr", "false", false),
		resolverRow(pTwo, "two.a@trusted-demo.fr", "false", true),
		resolverRow(pTwo, "two.b@trusted-demo.fr", "false", true),
		resolverRow(pUntrusted, "untrusted@other-demo.example", "true", true),
		resolverRow(pUntrustedNP, "untrusted.np@other-demo.example", "true", false),
		resolverRow(pParent, "parent@ch.parent-demo.fr", "true", true),
		org,
	}
	er, err := NewExtractionReader(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	require.NoError(t, err)
	_, err = store.ImportDirectory(ctx, "fixture", er, ImportOptions{})
	require.NoError(t, err)
	_, err = store.ImportWhitelist(ctx, "fixture", []string{"trusted-demo.fr", "parent-demo.fr"}, ImportOptions{})
	require.NoError(t, err)
	return store, NewResolver(store)
}

// routeLine is what the table tests compare of a route.
type routeLine struct {
	channel Channel
	address string
	review  bool
	reason  Reason
	city    string // of the postal address, for paper routes
}

func linesOf(routes []Route) []routeLine {
	var out []routeLine
	for _, r := range routes {
		city := "" // the fallback address of an MSSanté route is TestResolveFallbackAddress's
		if r.Channel == ChannelPaper {
			city = r.PostalAddress.City
		}
		out = append(out, routeLine{r.Channel, r.Address, r.Review, r.Reason, city})
	}
	return out
}

var dpiPostal = PostalAddress{Lines: []string{"3 PLACE DU DPI"}, PostalCode: "13100", City: "AIX-EN-PROVENCE"}

func TestResolveBranches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, resolver := setupResolver(t)
	paris, lyon, aix := "PARIS", "LYON", "AIX-EN-PROVENCE"

	tests := []struct {
		name  string
		local *LocalCorrespondent // saved before resolving, when set
		rc    Recipient
		want  []routeLine
	}{
		{name: "directory address, dématérialisation: MSSanté only",
			rc:   Recipient{NationalID: pDemat},
			want: []routeLine{{ChannelMSSante, "demat@trusted-demo.fr", false, ReasonDirectoryAddress, ""}}},
		{name: "directory address without dématérialisation: MSSanté and paper",
			rc: Recipient{NationalID: pPaper},
			want: []routeLine{{ChannelMSSante, "paper@trusted-demo.fr", false, ReasonDirectoryAddress, ""},
				{ChannelPaper, "", false, ReasonPaperCopy, paris}}},
		{name: "no dématérialisation and no postal address: MSSanté only",
			rc:   Recipient{NationalID: pNoPostal},
			want: []routeLine{{ChannelMSSante, "nopostal@trusted-demo.fr", false, ReasonDirectoryAddress, ""}}},
		{name: "no dématérialisation, the DPI's postal address for the copy",
			rc: Recipient{NationalID: pNoPostal, PostalAddress: dpiPostal},
			want: []routeLine{{ChannelMSSante, "nopostal@trusted-demo.fr", false, ReasonDirectoryAddress, ""},
				{ChannelPaper, "", false, ReasonPaperCopy, aix}}},
		{name: "several directory addresses: review",
			rc:   Recipient{NationalID: pTwo},
			want: []routeLine{{ChannelMSSante, "", true, ReasonSeveralAddresses, ""}}},
		{name: "sub-domain of a trusted domain",
			rc:   Recipient{NationalID: pParent},
			want: []routeLine{{ChannelMSSante, "parent@ch.parent-demo.fr", false, ReasonDirectoryAddress, ""}}},
		{name: "directory address outside the trust space, postal address: paper",
			rc:   Recipient{NationalID: pUntrusted},
			want: []routeLine{{ChannelPaper, "", false, ReasonUntrustedAddress, paris}}},
		{name: "directory address outside the trust space, no postal address: review",
			rc:   Recipient{NationalID: pUntrustedNP},
			want: []routeLine{{ChannelPaper, "", true, ReasonUntrustedAddress, ""}}},
		{name: "unknown, nothing given: review",
			rc:   Recipient{NationalID: pUnknown, Name: "Dr Inconnu"},
			want: []routeLine{{ChannelPaper, "", true, ReasonNoAddress, ""}}},
		{name: "no identifier at all: review",
			rc:   Recipient{Name: "Dr Sans Numéro"},
			want: []routeLine{{ChannelPaper, "", true, ReasonNoAddress, ""}}},
		{name: "unknown with the DPI's postal address: paper",
			rc:   Recipient{NationalID: pUnknown, PostalAddress: dpiPostal},
			want: []routeLine{{ChannelPaper, "", false, ReasonNoAddress, aix}}},
		{name: "DPI address the directory knows, dématérialisation",
			rc:   Recipient{NationalID: pDemat, Address: " Demat@Trusted-Demo.fr "},
			want: []routeLine{{ChannelMSSante, "demat@trusted-demo.fr", false, ReasonDPIAddress, ""}}},
		{name: "DPI address chooses among several",
			rc: Recipient{NationalID: pTwo, Address: "two.b@trusted-demo.fr"},
			want: []routeLine{{ChannelMSSante, "two.b@trusted-demo.fr", false, ReasonDPIAddress, ""},
				{ChannelPaper, "", false, ReasonPaperCopy, paris}}},
		{name: "DPI address unknown to the directory that knows another: the DPI's wins",
			rc: Recipient{NationalID: pPaper, Address: "other@trusted-demo.fr"},
			want: []routeLine{{ChannelMSSante, "other@trusted-demo.fr", false, ReasonDPIAddressMismatch, ""},
				{ChannelPaper, "", false, ReasonPaperCopy, paris}}},
		{name: "DPI address of a person unknown to the directory",
			rc:   Recipient{NationalID: pUnknown, Address: "someone@trusted-demo.fr"},
			want: []routeLine{{ChannelMSSante, "someone@trusted-demo.fr", false, ReasonDPIAddress, ""}}},
		{name: "DPI address outside the trust space while the directory has one: review, the directory's proposed, never the DPI's",
			rc:   Recipient{NationalID: pDemat, Address: "dr@gmail.example"},
			want: []routeLine{{ChannelMSSante, "demat@trusted-demo.fr", true, ReasonUntrustedAddress, ""}}},
		{name: "DPI address outside the trust space, unknown person, postal address: paper",
			rc:   Recipient{NationalID: pUnknown, Address: "dr@gmail.example", PostalAddress: dpiPostal},
			want: []routeLine{{ChannelPaper, "", false, ReasonUntrustedAddress, aix}}},
		{name: "DPI address outside the trust space, nothing else: review",
			rc:   Recipient{Address: "dr@gmail.example"},
			want: []routeLine{{ChannelPaper, "", true, ReasonUntrustedAddress, ""}}},
		{name: "rules: always a paper copy, even with dématérialisation",
			rc: Recipient{NationalID: pDemat, Paper: PaperAlways},
			want: []routeLine{{ChannelMSSante, "demat@trusted-demo.fr", false, ReasonDirectoryAddress, ""},
				{ChannelPaper, "", false, ReasonPaperCopy, paris}}},
		{name: "rules: never paper drops the copy",
			rc:   Recipient{NationalID: pPaper, Paper: PaperNever},
			want: []routeLine{{ChannelMSSante, "paper@trusted-demo.fr", false, ReasonDirectoryAddress, ""}}},
		{name: "rules: never paper sends a paper-only recipient to review",
			rc:   Recipient{NationalID: pUntrusted, Paper: PaperNever},
			want: []routeLine{{ChannelPaper, "", true, ReasonUntrustedAddress, paris}}},
		{name: "rules: never paper, patient without a qualified INS: review",
			rc:   Recipient{Kind: KindPatient, INS: "280017512345678", PostalAddress: dpiPostal, Paper: PaperNever},
			want: []routeLine{{ChannelPaper, "", true, ReasonPatientNotQualified, aix}}},
		{name: "local address chooses among several, paper copy to the local postal address",
			local: &LocalCorrespondent{NationalID: pTwo, Family: "NOM104", MSSanteAddress: "two.a@trusted-demo.fr",
				PostalAddress: PostalAddress{Lines: []string{"HOPITAL"}, PostalCode: "69003", City: "LYON"}},
			rc: Recipient{NationalID: pTwo, Address: "two.b@trusted-demo.fr"},
			want: []routeLine{{ChannelMSSante, "two.a@trusted-demo.fr", false, ReasonLocalAddress, ""},
				{ChannelPaper, "", false, ReasonPaperCopy, lyon}}},
		{name: "local address outside the trust space: review",
			local: &LocalCorrespondent{NationalID: pUnknown, Family: "X", MSSanteAddress: "x@gmail.example"},
			rc:    Recipient{NationalID: pUnknown},
			want:  []routeLine{{ChannelMSSante, "", true, ReasonUntrustedAddress, ""}}},
		{name: "local preference paper beats the directory's address",
			local: &LocalCorrespondent{NationalID: pDemat, Family: "NOM101", Preference: PreferencePaper},
			rc:    Recipient{NationalID: pDemat, Address: "demat@trusted-demo.fr"},
			want:  []routeLine{{ChannelPaper, "", false, ReasonLocalPaper, paris}}},
		{name: "local preference paper without postal address: review",
			local: &LocalCorrespondent{NationalID: pUntrustedNP, Family: "NOM106", Preference: PreferencePaper},
			rc:    Recipient{NationalID: pUntrustedNP},
			want:  []routeLine{{ChannelPaper, "", true, ReasonLocalPaper, ""}}},
		{name: "local preference both adds paper to a dematerialised correspondent",
			local: &LocalCorrespondent{NationalID: pParent, Family: "NOM107", Preference: PreferenceBoth},
			rc:    Recipient{NationalID: pParent},
			want: []routeLine{{ChannelMSSante, "parent@ch.parent-demo.fr", false, ReasonDirectoryAddress, ""},
				{ChannelPaper, "", false, ReasonPaperCopy, paris}}},
		{name: "local preference electronic drops the paper copy",
			local: &LocalCorrespondent{NationalID: pPaper, Family: "NOM102", Preference: PreferenceElectronic},
			rc:    Recipient{NationalID: pPaper},
			want:  []routeLine{{ChannelMSSante, "paper@trusted-demo.fr", false, ReasonDirectoryAddress, ""}}},
		{name: "organisation by FINESS",
			rc:   Recipient{Kind: KindOrganisation, FINESS: finessOrg},
			want: []routeLine{{ChannelMSSante, "secretariat@clinique.trusted-demo.fr", false, ReasonDirectoryAddress, ""}}},
		{name: "organisation of the local directory by FINESS, paper only",
			local: &LocalCorrespondent{FINESS: "999000098", Organisation: "EHPAD DEMO", Preference: PreferencePaper,
				PostalAddress: PostalAddress{PostalCode: "13100", City: "AIX-EN-PROVENCE"}},
			rc:   Recipient{Kind: KindOrganisation, FINESS: "999000098"},
			want: []routeLine{{ChannelPaper, "", false, ReasonLocalPaper, aix}}},
		{name: "patient with a qualified INS",
			rc:   Recipient{Kind: KindPatient, INS: "280017512345678", INSQualified: true},
			want: []routeLine{{ChannelMSSante, "280017512345678@patient.mssante.fr", false, ReasonPatientMailbox, ""}}},
		{name: "patient with a qualified INS, the DPI giving that mailbox",
			rc:   Recipient{Kind: KindPatient, INS: "280017512345678", INSQualified: true, Address: "280017512345678@Patient.MSSante.fr"},
			want: []routeLine{{ChannelMSSante, "280017512345678@patient.mssante.fr", false, ReasonPatientMailbox, ""}}},
		{name: "patient with a qualified INS, the DPI giving another mailbox: review, the INS's proposed",
			rc:   Recipient{Kind: KindPatient, INS: "280017512345678", INSQualified: true, Address: "27707280017512345678@patient.mssante.fr", PostalAddress: dpiPostal},
			want: []routeLine{{ChannelMSSante, "280017512345678@patient.mssante.fr", true, ReasonPatientAddressMismatch, ""}}},
		{name: "patient without a qualified INS, postal address: paper, to confirm",
			rc:   Recipient{Kind: KindPatient, INS: "280017512345678", Address: "280017512345678@patient.mssante.fr", PostalAddress: dpiPostal},
			want: []routeLine{{ChannelPaper, "", true, ReasonPatientNotQualified, aix}}},
		{name: "patient without a qualified INS nor postal address: review",
			rc:   Recipient{Kind: KindPatient, INS: "280017512345678"},
			want: []routeLine{{ChannelPaper, "", true, ReasonPatientNotQualified, ""}}},
	}
	for _, tt := range tests {
		// Sequential: the local directory is shared, each case saving its own
		// correspondent (distinct national ids) before resolving.
		if tt.local != nil {
			_, err := store.SaveLocal(ctx, *tt.local, "test")
			require.NoError(t, err, tt.name)
		}
		routes, err := resolver.Resolve(ctx, tt.rc)
		require.NoError(t, err, tt.name)
		require.Equal(t, tt.want, linesOf(routes), tt.name)
		for _, r := range routes {
			require.NotEmpty(t, r.Text, "%s: every route explains itself", tt.name)
		}
	}

	// All together, as a report's recipients are resolved: each gets the
	// routes it gets alone, the directories read once for all.
	var rcs []Recipient
	for _, tt := range tests {
		rcs = append(rcs, tt.rc)
	}
	counted := &countingDirectory{Directory: store}
	all, err := NewResolver(counted).ResolveAll(ctx, rcs)
	require.NoError(t, err)
	require.Equal(t, 1, counted.reads, "one read of the directories for all the recipients")
	require.Len(t, all, len(rcs))
	for i, rc := range rcs {
		alone, err := resolver.Resolve(ctx, rc)
		require.NoError(t, err, tests[i].name)
		require.Equal(t, linesOf(alone), linesOf(all[i]), tests[i].name)
	}
}

// countingDirectory counts the reads of a Directory.
type countingDirectory struct {
	Directory
	reads int
}

func (d *countingDirectory) Know(ctx context.Context, rcs []Recipient) (Known, error) {
	d.reads++
	return d.Directory.Know(ctx, rcs)
}

// TestResolveFallbackAddress checks that an MSSanté route carries the postal
// address a paper fallback would use.
func TestResolveFallbackAddress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, resolver := setupResolver(t)
	routes, err := resolver.Resolve(ctx, Recipient{NationalID: pDemat})
	require.NoError(t, err)
	require.Len(t, routes, 1)
	require.Equal(t, "75002 PARIS", routes[0].PostalAddress.RoutingLine)
	routes, err = resolver.Resolve(ctx, Recipient{NationalID: pNoPostal})
	require.NoError(t, err)
	require.False(t, routes[0].PostalAddress.Known())

	// A review route too: a secretary may send a letter instead. Its
	// choices are the trusted addresses she picks from.
	routes, err = resolver.Resolve(ctx, Recipient{NationalID: pTwo})
	require.NoError(t, err)
	require.True(t, routes[0].Review)
	require.True(t, routes[0].PostalAddress.Known(), "%+v", routes[0])
	require.Equal(t, []string{"two.a@trusted-demo.fr", "two.b@trusted-demo.fr"}, routes[0].Choices)
	routes, err = resolver.Resolve(ctx, Recipient{NationalID: pTwo, Address: "two.c@trusted-demo.fr"})
	require.NoError(t, err)
	require.Equal(t, ReasonDPIAddressMismatch, routes[0].Reason)
	require.Equal(t, []string{"two.c@trusted-demo.fr", "two.a@trusted-demo.fr", "two.b@trusted-demo.fr"}, routes[0].Choices)
}

func TestResolveNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, resolver := setupResolver(t)
	routes, err := resolver.Resolve(ctx, Recipient{NationalID: pPaper})
	require.NoError(t, err)
	require.Equal(t, "Prénom NOM102", routes[1].Name, "the directory's name when the DPI gave none")
	require.Equal(t, []string{"1 R DU TEST"}, routes[1].PostalAddress.Lines)
	require.Equal(t, "75002 PARIS", routes[1].PostalAddress.RoutingLine)

	routes, err = resolver.Resolve(ctx, Recipient{NationalID: pPaper, Name: "Dr Jeanne NOM"})
	require.NoError(t, err)
	require.Equal(t, "Dr Jeanne NOM", routes[0].Name)

	routes, err = resolver.Resolve(ctx, Recipient{Kind: KindOrganisation, FINESS: finessOrg})
	require.NoError(t, err)
	require.Equal(t, "CLINIQUE DEMO", routes[0].Name)
}

func TestDomainAndParents(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"a.b.mssante.fr", "b.mssante.fr", "mssante.fr", "fr"}, domainAndParents("a.b.mssante.fr"))
	require.Equal(t, []string{"localhost"}, domainAndParents("localhost"))
}

// TestSearchADELI checks that a professional known by an ADELI is found by
// the national id or by the bare ADELI number.
func TestSearchADELI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := NewStore(pgtest.NewPool(t))
	adeli := row(map[int]string{colBoxType: "PER", colAddress: "adeli@trusted-demo.fr", colPPIDType: "0",
		colPPID: "999000201", colNationalID: "0999000201", colLastName: "NOMADELI", colFirstName: "Prénom"})
	er, err := NewExtractionReader(strings.NewReader(strings.Join(extractionHeader[:], "|") + "\n" + adeli + "\n"))
	require.NoError(t, err)
	_, err = store.ImportDirectory(ctx, "fixture", er, ImportOptions{})
	require.NoError(t, err)
	for text, want := range map[string]int{"0999000201": 1, "999000201": 1, "899900020100": 0, "99900020100": 0} {
		got, err := store.Search(ctx, SearchQuery{Text: text})
		require.NoError(t, err, text)
		require.Len(t, got, want, text)
		if want > 0 {
			require.Equal(t, "0999000201", got[0].NationalID, text)
			require.Empty(t, got[0].RPPS, text)
		}
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, _ := setupResolver(t)
	addressesOf := func(rs []SearchResult) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Address)
		}
		return out
	}
	for _, tt := range []struct {
		q    SearchQuery
		want []string
	}{
		{SearchQuery{Text: "nom10"}, []string{"demat@trusted-demo.fr", "paper@trusted-demo.fr", "nopostal@trusted-demo.fr",
			"two.a@trusted-demo.fr", "two.b@trusted-demo.fr", "untrusted@other-demo.example", "untrusted.np@other-demo.example",
			"parent@ch.parent-demo.fr"}},
		{SearchQuery{Text: "NOM104 pré"}, []string{"two.a@trusted-demo.fr", "two.b@trusted-demo.fr"}},
		{SearchQuery{Text: "nom104 jean"}, nil},
		{SearchQuery{Text: "99900000102"}, []string{"paper@trusted-demo.fr"}},
		{SearchQuery{Text: "899900000102"}, []string{"paper@trusted-demo.fr"}},
		{SearchQuery{Text: finessOrg}, []string{"secretariat@clinique.trusted-demo.fr"}},
		{SearchQuery{Text: "clinique"}, []string{"secretariat@clinique.trusted-demo.fr"}},
		{SearchQuery{City: "lyon"}, []string{"secretariat@clinique.trusted-demo.fr"}},
		{SearchQuery{Text: "nom10", City: "par", Limit: 2}, []string{"demat@trusted-demo.fr", "paper@trusted-demo.fr"}},
		{SearchQuery{Text: "100%_"}, nil},
		{SearchQuery{Profession: "cardio"}, []string{"two.a@trusted-demo.fr", "two.b@trusted-demo.fr"}},
		{SearchQuery{Text: "nom101", Profession: "10"}, []string{"demat@trusted-demo.fr"}},
		{SearchQuery{Text: "nom101", Profession: "MÉDECIN"}, []string{"demat@trusted-demo.fr"}},
		{SearchQuery{Text: "nom101", Profession: "pharmacien"}, nil},
	} {
		got, err := store.Search(ctx, tt.q)
		require.NoError(t, err, "%+v", tt.q)
		require.Equal(t, tt.want, addressesOf(got), "%+v", tt.q)
	}
}
