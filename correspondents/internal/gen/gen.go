// Package gen writes synthetic Annuaire Santé extractions
// (Extraction_Correspondance_MSSante) for the tests and benchmarks of the
// correspondents package: realistic values, deterministic for a seed, in
// constant memory. Every name, identifier and address it writes is made up.
package gen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Header is the published header line of the extraction, without its end of line.
const Header = "Type de BAL|Adresse BAL|Type Identifiant PP|Identifiant PP|Identification nationale PP|" +
	"Type identifiant structure|Identification Structure|Service de rattachement|Civilité d'exercice|" +
	"Nom d'exercice|Prénom d'exercice|Catégorie profession|Libellé de catégorie profession|Code Profession|" +
	"Libellé Profession|Code savoir-faire|Libellé savoir-faire|Dématérialisation|Raison Sociale structure BAL|" +
	"Enseigne commerciale structure BAL|L2COMPLEMENTLOCALISATION structure BAL|" +
	"L3COMPLEMENTDISTRIBUTION structure BAL|L4NUMEROVOIE structure BAL|L4COMPLEMENTNUMEROVOIE structure BAL|" +
	"NL4TYPEVOIE structure BAL|L4LIBELLEVOIE structure BAL|L5LIEUDITMENTION structure BAL|" +
	"L6LIGNEACHEMINEMENT structure BAL|Code postal structure BAL|Département structure BAL|Pays structure BAL"

// Config says what to generate.
type Config struct {
	// Rows is the number of rows after the header, duplicated rows included.
	Rows int
	// Seed makes the output: the same Config writes the same bytes.
	Seed uint64
	// DuplicatePercent is the share of rows that repeat an earlier row as
	// is, as the published file does for some addresses. Defaults to 3; a
	// negative value means none.
	DuplicatePercent int
}

// Stats counts what Write wrote.
type Stats struct {
	Rows       int // Rows after the header.
	Duplicates int // Rows repeating an earlier one (same address and national id).
	Bytes      int64
}

// Write writes an extraction of cfg.Rows rows to w: about 85 % personal
// mailboxes (PER, some CAB), the rest organisation and application ones
// (ORG, APP). Identifiers are unique per person (RPPS of 11 digits, some
// ADELI of 9), some people have two mailboxes, and cfg.DuplicatePercent of
// the rows repeat a recent row.
func Write(w io.Writer, cfg Config) (Stats, error) {
	if cfg.DuplicatePercent == 0 {
		cfg.DuplicatePercent = 3
	}
	g := &generator{rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	var st Stats
	if _, err := bw.WriteString(Header + "\n"); err != nil {
		return st, err
	}
	var (
		line   []byte
		recent [][]byte // Ring of recent rows, the candidates for a duplicate.
	)
	for i := 0; i < cfg.Rows; i++ {
		if len(recent) > 0 && g.rnd.IntN(100) < cfg.DuplicatePercent {
			line = append(line[:0], recent[g.rnd.IntN(len(recent))]...)
			st.Duplicates++
		} else {
			line = g.row(line[:0], i)
			if len(recent) < 256 {
				recent = append(recent, append([]byte(nil), line...))
			} else {
				k := g.rnd.IntN(len(recent))
				recent[k] = append(recent[k][:0], line...)
			}
		}
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return st, err
		}
		st.Rows++
	}
	if err := bw.Flush(); err != nil {
		return st, err
	}
	st.Bytes = cw.n
	return st, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type generator struct {
	rnd *rand.Rand
	// The person of the previous PER row, reused for a second mailbox.
	prev person
}

type person struct {
	ppType, ppID, civility, last, first string
	prof                                profession
	skill                               skill
}

type profession struct {
	code, label, domain string
	skills              []skill
}

type skill struct{ code, label string }

type city struct{ name, postcode, dept string }

var (
	lastNames = []string{"MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS",
		"MOREAU", "LAURENT", "SIMON", "MICHEL", "LEFÈVRE", "LEROY", "ROUX", "DAVID", "BERTRAND", "MOREL",
		"FOURNIER", "GIRARD", "BONNET", "DUPONT", "LAMBERT", "FONTAINE", "ROUSSEAU", "VINCENT", "MÜLLER",
		"LEFEBVRE", "FAURE", "ANDRÉ", "MERCIER", "BLANC", "GUÉRIN", "BOYER", "GARNIER", "CHEVALIER",
		"FRANÇOIS", "LEGRAND", "GAUTHIER", "GARCIA", "PERRIN", "ROBIN", "CLÉMENT", "MORIN", "NICOLAS",
		"HENRY", "ROUSSEL", "MATHIEU", "GAUTIER", "MASSON", "MARCHAND", "DUVAL", "DENIS", "DUMONT",
		"MARIE", "LEMAIRE", "NOËL", "MEYER", "DUFOUR", "MEUNIER", "BRUN", "BLANCHARD", "GIRAUD", "JOLY",
		"RIVIÈRE", "LUCAS", "BRUNET", "GAILLARD", "BARBIER", "ARNAUD", "MARTINEZ", "GÉRARD", "ROCHE",
		"RENARD", "SCHMITT", "ROY", "LEROUX", "COLIN", "VIDAL", "CARON", "PICARD", "ROGER", "FABRE",
		"AUBERT", "LEMOINE", "RENAUD", "DUMAS", "LACROIX", "OLIVIER", "PHILIPPE", "BOURGEOIS", "PIERRE",
		"BENOÎT", "REY", "LECLERC", "PAYET", "ROLLAND", "LECLERCQ", "GUILLAUME", "LECOMTE", "LÓPEZ",
		"JEAN", "DUPUY", "GUILLOT", "HUBERT", "BERGER", "CARPENTIER", "SÁNCHEZ", "DUPUIS", "MOULIN",
		"LOUIS", "DESCHAMPS", "HUET", "VASSEUR", "PEREZ", "BOUCHER", "FLEURY", "ROYER", "KLEIN",
		"JACQUET", "ADAM", "PARIS", "POIRIER", "MARTY", "AUBRY", "GUYOT", "CARRÉ", "CHARLES", "RENAULT",
		"CHARPENTIER", "MÉNARD", "MAILLARD", "BARON", "BERTIN", "BAILLY", "HERVÉ", "SCHNEIDER",
		"FERNANDEZ", "LE GALL", "COLLET", "LÉGER", "BOUVIER", "JULIEN", "PRÉVOST", "MILLET", "PERROT",
		"DANIEL", "LE ROUX", "COUSIN", "GERMAIN", "BRETON", "BESSON", "LANGLOIS", "RÉMY", "LE GOFF",
		"PELLETIER", "LÉVÊQUE", "PERRIER", "LEBLANC", "BARRÉ", "LEBRUN", "MARCHAL", "WEBER", "MALLET",
		"HAMON", "BOULANGER", "JACOB", "MONNIER", "MICHAUD", "RODRIGUEZ", "GUICHARD", "GILLET", "ÉTIENNE",
		"GRONDIN", "POULAIN", "TESSIER", "CHEVALLIER", "COLLIN", "CHAUVIN", "DA SILVA", "BOUCHET", "GAY",
		"LEMAÎTRE", "BÉNARD", "MARÉCHAL", "HUMBERT", "REYNAUD", "ANTOINE", "HOARAU", "PERRET", "BARTHÉLEMY",
		"CORDIER", "PICHON", "LEJEUNE", "GILBERT", "LAMY", "DELAUNAY", "PASQUIER", "CARLIER", "LAPORTE",
		"N'DIAYE", "D'ALMEIDA", "DE LA FONTAINE", "MARTIN-DUPONT", "LEROY-BEAULIEU", "SAINT-ANDRÉ",
		"NGUYEN", "TRAN", "BENAÏSSA", "HADDAD", "ÖZTÜRK", "KOWALSKI", "O'NEILL"}
	firstNames = []string{"Jean", "Marie", "Pierre", "Nathalie", "Michel", "Isabelle", "Philippe",
		"Sylvie", "Alain", "Catherine", "Nicolas", "Françoise", "Christophe", "Sandrine", "Stéphane",
		"Valérie", "Frédéric", "Christine", "Laurent", "Véronique", "Sébastien", "Céline", "Julien",
		"Hélène", "Jérôme", "Sophie", "François", "Émilie", "Thierry", "Aurélie", "Éric", "Caroline",
		"Olivier", "Anne-Sophie", "Jean-Pierre", "Marie-Claude", "Jean-François", "Agnès", "Benoît",
		"Gaëlle", "Loïc", "Anaïs", "Zoé", "Chloé", "Noël", "Joël", "Maëlle", "Léa", "Théo", "Mathéo",
		"Inès", "Clément", "Léonie", "Hervé", "Bérénice", "Cécile", "Grégoire", "Raphaël", "Solène",
		"Mélanie", "Jérémy", "Ségolène", "Josée", "Renée", "Aimé", "Andrée", "Thaïs", "Maïté", "Yaël",
		"Kévin", "Stéphanie", "Lucie", "Manon", "Camille", "Hugo", "Louis", "Arthur", "Jules", "Emma"}
	medicalSkills = []skill{{"SM26", "Qualifié en Médecine Générale"}, {"SM54", "Médecine Générale"},
		{"SM53", "Spécialiste en Médecine Générale"}, {"SM04", "Cardiologie et maladies vasculaires"},
		{"SM02", "Anesthésie-réanimation"}, {"SM15", "Gynécologie-obstétrique"}, {"SM40", "Pédiatrie"},
		{"SM42", "Psychiatrie"}, {"SM10", "Dermatologie et vénéréologie"}, {"SM24", "Néphrologie"},
		{"SM22", "Gastro-entérologie et hépatologie"}, {"SM38", "Ophtalmologie"},
		{"SM39", "Oto-rhino-laryngologie"}, {"SM44", "Radio-diagnostic"}, {"SM36", "Oncologie option médicale"},
		{"SM32", "Neurologie"}, {"SM47", "Rhumatologie"}, {"SM18", "Endocrinologie et métabolisme"},
		{"SM05", "Chirurgie générale"}, {"SM09", "Chirurgie orthopédique et traumatologie"},
		{"SM43", "Pneumologie"}, {"SM57", "Médecine d'urgence"}, {"SM21", "Gériatrie"}}
	professions = []profession{
		{"10", "Médecin", "medecin.mssante.fr", medicalSkills},
		{"10", "Médecin", "medecin.mssante.fr", medicalSkills},
		{"10", "Médecin", "medecin.mssante.fr", medicalSkills},
		{"10", "Médecin", "medecin.mssante.fr", medicalSkills},
		{"21", "Pharmacien", "pharmacien.mssante.fr", []skill{{"", ""}, {"SP01", "Biologie médicale"}}},
		{"40", "Chirurgien-Dentiste", "chirurgien-dentiste.mssante.fr", []skill{{"", ""}, {"SCD01", "Orthopédie dento-faciale"}}},
		{"50", "Sage-Femme", "sagefemme.mssante.fr", []skill{{"", ""}}},
		{"60", "Infirmier", "infirmier.mssante.fr", []skill{{"", ""}}},
		{"60", "Infirmier", "infirmier.mssante.fr", []skill{{"", ""}}},
		{"70", "Masseur-Kinésithérapeute", "kine.mssante.fr", []skill{{"", ""}}},
		{"80", "Pédicure-Podologue", "podologue.mssante.fr", []skill{{"", ""}}},
		{"91", "Orthophoniste", "orthophoniste.mssante.fr", []skill{{"", ""}}},
		{"96", "Psychomotricien", "psychomotricien.mssante.fr", []skill{{"", ""}}},
	}
	cities = []city{{"PARIS", "75013", "75"}, {"PARIS", "75015", "75"}, {"PARIS", "75012", "75"},
		{"MARSEILLE", "13005", "13"}, {"LYON", "69003", "69"}, {"TOULOUSE", "31059", "31"},
		{"NICE", "06000", "06"}, {"NANTES", "44093", "44"}, {"STRASBOURG", "67091", "67"},
		{"MONTPELLIER", "34295", "34"}, {"BORDEAUX", "33076", "33"}, {"LILLE", "59037", "59"},
		{"RENNES", "35033", "35"}, {"REIMS", "51092", "51"}, {"SAINT-ÉTIENNE", "42055", "42"},
		{"LE HAVRE", "76600", "76"}, {"TOULON", "83000", "83"}, {"GRENOBLE", "38043", "38"},
		{"DIJON", "21079", "21"}, {"ANGERS", "49933", "49"}, {"NÎMES", "30029", "30"},
		{"VILLEURBANNE", "69100", "69"}, {"CLERMONT-FERRAND", "63003", "63"}, {"AIX-EN-PROVENCE", "13100", "13"},
		{"BREST", "29609", "29"}, {"TOURS", "37044", "37"}, {"AMIENS", "80054", "80"}, {"LIMOGES", "87042", "87"},
		{"ANNECY", "74000", "74"}, {"PERPIGNAN", "66046", "66"}, {"BOULOGNE-BILLANCOURT", "92100", "92"},
		{"METZ", "57038", "57"}, {"BESANÇON", "25030", "25"}, {"ORLÉANS", "45067", "45"},
		{"ROUEN", "76031", "76"}, {"MULHOUSE", "68070", "68"}, {"CAEN", "14033", "14"}, {"NANCY", "54035", "54"},
		{"AJACCIO", "20000", "2A"}, {"BASTIA", "20200", "2B"}, {"POINTE-À-PITRE", "97110", "971"},
		{"SAINT-DENIS", "97400", "974"}, {"FORT-DE-FRANCE", "97200", "972"}, {"SAINT-MALO", "35400", "35"},
		{"L'ISLE-D'ABEAU", "38080", "38"}, {"CHÂLONS-EN-CHAMPAGNE", "51000", "51"}, {"PÉRIGUEUX", "24000", "24"}}
	streetTypes = []string{"R", "R", "R", "AV", "AV", "BD", "PL", "CHE", "IMP", "RTE", "ALL", "QUAI", "CRS", "SQ"}
	streetNames = []string{"DE LA RÉPUBLIQUE", "JEAN JAURÈS", "DU GÉNÉRAL DE GAULLE", "DES LILAS",
		"VICTOR HUGO", "PASTEUR", "DE LA GARE", "DE L'HÔPITAL", "DU MARÉCHAL FOCH", "GAMBETTA",
		"DE LA PAIX", "DES ÉCOLES", "SAINT-MARTIN", "DU 8 MAI 1945", "ÉMILE ZOLA", "DE VERDUN",
		"DU PROFESSEUR CALMETTE", "DES TILLEULS", "ARISTIDE BRIAND", "DE LA LIBÉRATION", "NOTRE-DAME",
		"DU CHÂTEAU", "DES PRÉS", "CLAUDE BERNARD", "LOUIS PASTEUR", "DE L'ÉGLISE", "ANATOLE FRANCE"}
	locations = []string{"BATIMENT A", "BÂTIMENT B", "RÉSIDENCE LES TILLEULS", "HALL 2", "2ÈME ÉTAGE",
		"PAVILLON MATERNITÉ", "CENTRE MÉDICAL", "ESCALIER C", "PÔLE SANTÉ"}
	places   = []string{"LIEU-DIT LES ESSARTS", "ZAC DU PARC", "ZI NORD", "LE BOURG", "HAMEAU DE LA CÔTE"}
	services = []string{"Cardiologie", "Secrétariat de pédiatrie", "Laboratoire de biologie médicale",
		"Service des urgences", "Imagerie médicale", "Pneumologie", "Oncologie médicale",
		"Gynécologie-obstétrique", "Chirurgie orthopédique", "Néphrologie - dialyse", "Médecine interne",
		"Gériatrie", "Psychiatrie adulte", "Bureau des entrées", "Anatomie et cytologie pathologiques"}
	orgKinds = []string{"CENTRE HOSPITALIER DE %s", "CHU DE %s", "CLINIQUE SAINT-JOSEPH %s",
		"CENTRE DE SANTÉ MUNICIPAL DE %s", "LABORATOIRE DE BIOLOGIE MÉDICALE DE %s",
		"CENTRE D'IMAGERIE MÉDICALE DE %s", "GROUPE HOSPITALIER DE %s", "POLYCLINIQUE DE %s"}
	cabinetKinds = []string{"CABINET MÉDICAL %s", "CABINET DU DOCTEUR %s", "MAISON DE SANTÉ PLURIPROFESSIONNELLE %s",
		"CABINET INFIRMIER %s", "PHARMACIE %s", "CABINET DE KINÉSITHÉRAPIE %s", "SCM %s"}
	civilities  = []string{"DR", "DR", "DR", "M", "MME", "MME", "PR"}
	dematValues = []string{"true", "true", "false", "false", ""}
)

// row appends one fresh row for index i (no end of line) to b.
func (g *generator) row(b []byte, i int) []byte {
	r := g.rnd
	switch n := r.IntN(100); {
	case n < 83:
		return g.personRow(b, i, "PER")
	case n < 85:
		return g.personRow(b, i, "CAB")
	case n < 96:
		return g.orgRow(b, i, "ORG")
	default:
		return g.orgRow(b, i, "APP")
	}
}

// personRow appends the row of a personal (PER) or shared cabinet (CAB) mailbox.
func (g *generator) personRow(b []byte, i int, boxType string) []byte {
	r := g.rnd
	p := g.prev
	second := p.ppID != "" && r.IntN(100) < 6 // Another mailbox of the previous person.
	if !second {
		p = g.newPerson(i)
		g.prev = p
	}
	c := cities[r.IntN(len(cities))]
	domain := p.prof.domain
	if second || r.IntN(100) < 15 {
		domain = "ch-" + asciiLabel(c.name) + ".mssante.fr"
	}
	local := asciiLabel(p.first) + "." + asciiLabel(p.last)
	if boxType == "CAB" {
		local = "cabinet." + asciiLabel(p.last)
	}
	// The RPPS makes the address unique, as homonyms get a number.
	local += strconv.Itoa(i % 1000)
	nationalPrefix := "8"
	if p.ppType == "0" {
		nationalPrefix = "0"
	}
	structType, structID := "3", digits(r, 14) // SIRET of a cabinet
	service := ""
	org := fmt.Sprintf(cabinetKinds[r.IntN(len(cabinetKinds))], p.last)
	if domain != p.prof.domain {
		structType, structID = "1", digits(r, 9) // FINESS of a hospital
		service = services[r.IntN(len(services))]
		org = fmt.Sprintf(orgKinds[r.IntN(len(orgKinds))], c.name)
	}
	fields := [31]string{
		boxType, local + "@" + domain, p.ppType, p.ppID, nationalPrefix + p.ppID,
		structType, structID, service, p.civility, p.last, p.first,
		"C", "Civil", p.prof.code, p.prof.label, p.skill.code, p.skill.label,
		dematValues[r.IntN(len(dematValues))], org, "",
	}
	g.address(fields[20:], c)
	return appendFields(b, fields[:])
}

// newPerson returns a new person, with identifiers derived from i so that they are unique.
func (g *generator) newPerson(i int) person {
	r := g.rnd
	prof := professions[r.IntN(len(professions))]
	p := person{
		ppType: "8", ppID: fmt.Sprintf("1%010d", i),
		civility: civilities[r.IntN(len(civilities))],
		last:     lastNames[r.IntN(len(lastNames))], first: firstNames[r.IntN(len(firstNames))],
		prof: prof, skill: prof.skills[r.IntN(len(prof.skills))],
	}
	if prof.code != "10" && prof.code != "21" && r.IntN(100) < 30 {
		p.ppType, p.ppID = "0", fmt.Sprintf("%02d%07d", r.IntN(95)+1, i%10000000) // ADELI
	}
	if p.prof.code != "10" && p.civility == "DR" {
		p.civility = "M"
	}
	return p
}

// orgRow appends the row of an organisation (ORG) or application (APP) mailbox.
func (g *generator) orgRow(b []byte, i int, boxType string) []byte {
	r := g.rnd
	c := cities[r.IntN(len(cities))]
	service := services[r.IntN(len(services))]
	local := "secretariat." + asciiLabel(service)
	if boxType == "APP" {
		local = []string{"dpi", "resultats.labo", "comptes-rendus", "bal-applicative"}[r.IntN(4)]
	}
	local += "." + strconv.Itoa(i) // Unique: a structure box has no national id.
	org := fmt.Sprintf(orgKinds[r.IntN(len(orgKinds))], c.name)
	domain := []string{"ch-", "chu-", "clinique-", "labo-"}[r.IntN(4)] + asciiLabel(c.name) + ".mssante.fr"
	fields := [31]string{
		boxType, local + "@" + domain, "", "", "",
		"1", digits(r, 9), service, "", "", "",
		"", "", "", "", "", "",
		dematValues[r.IntN(len(dematValues))], org, "",
	}
	if r.IntN(100) < 30 {
		fields[19] = strings.Replace(org, "CENTRE HOSPITALIER DE ", "CH ", 1) // Enseigne commerciale
	}
	g.address(fields[20:], c)
	return appendFields(b, fields[:])
}

// address fills the 11 address columns L2…Pays.
func (g *generator) address(f []string, c city) {
	r := g.rnd
	if r.IntN(100) < 20 {
		f[0] = locations[r.IntN(len(locations))]
	}
	postcode, routing := c.postcode, c.postcode+" "+c.name
	if r.IntN(100) < 15 {
		f[1] = fmt.Sprintf("%s %d", []string{"BP", "CS"}[r.IntN(2)], 10000+r.IntN(90000))
		// A CEDEX routing line has its own postal code.
		postcode = c.postcode[:len(c.postcode)-3] + strconv.Itoa(100+r.IntN(900))
		routing = postcode + " " + c.name + " CEDEX"
		if r.IntN(2) == 0 {
			routing += fmt.Sprintf(" %02d", 1+r.IntN(20))
		}
	}
	if r.IntN(100) < 95 {
		f[2] = strconv.Itoa(1 + r.IntN(250))
		if r.IntN(100) < 5 {
			f[3] = []string{"B", "T", "Q"}[r.IntN(3)]
		}
		f[4] = streetTypes[r.IntN(len(streetTypes))]
		f[5] = streetNames[r.IntN(len(streetNames))]
	}
	if r.IntN(100) < 5 {
		f[6] = places[r.IntN(len(places))]
	}
	f[7], f[8], f[9] = routing, postcode, c.dept
	if r.IntN(100) < 10 {
		f[10] = "FRANCE"
	}
}

// appendFields appends fields joined by '|', with the trailing '|' of the published file.
func appendFields(b []byte, fields []string) []byte {
	for _, f := range fields {
		b = append(b, f...)
		b = append(b, '|')
	}
	return b
}

// digits returns n random decimal digits.
func digits(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	return string(b)
}

// asciiLabel makes a mailbox label of s: lower case, accents dropped,
// spaces and apostrophes as hyphens.
func asciiLabel(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			b.WriteRune(c)
		case c == ' ' || c == '\'':
			b.WriteByte('-')
		default:
			if a, ok := unaccented[c]; ok {
				b.WriteByte(a)
			}
		}
	}
	return b.String()
}

var unaccented = map[rune]byte{'à': 'a', 'â': 'a', 'á': 'a', 'ä': 'a', 'ç': 'c', 'é': 'e', 'è': 'e',
	'ê': 'e', 'ë': 'e', 'î': 'i', 'ï': 'i', 'í': 'i', 'ô': 'o', 'ö': 'o', 'ó': 'o', 'ù': 'u', 'û': 'u',
	'ü': 'u', 'ÿ': 'y'}
