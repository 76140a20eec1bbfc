package correspondents

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// This file holds the directory look-ups of the resolver.

// Mailbox is a directory entry for one MSSanté address.
type Mailbox struct {
	Address        string
	NationalID     string
	BoxType        string
	LastName       string
	FirstName      string
	OrgName        string
	Dematerialised bool
	// PostalAddress is the address of the structure the mailbox belongs to.
	PostalAddress PostalAddress
}

const mailboxColumns = `address, national_id, box_type, last_name, first_name, org_name, dematerialised, postal_address`

// Known is what the directories know of the recipients of a report, read
// at once (Store.Know): their local correspondents, their mailboxes in the
// national directory, and the trust space's entries for the domains of all
// those addresses and of the ones the DPI gave.
type Known struct {
	locals     []LocalCorrespondent
	people     map[string][]Mailbox // by national id, personal mailboxes first
	structures map[string][]Mailbox // by FINESS, organisation mailboxes first
	trust      map[string]bool      // the trust space's entries among the domains asked and their parents
}

// Know reads what the directories know of rcs in three statements, whatever
// their number (the resolution of a report's recipients one at a time took
// three or more each): the local correspondents (of a person by national
// id, of an organisation without one by FINESS), the mailboxes (a person's
// by national id; an organisation's, without a national id, its
// organisation and application mailboxes by FINESS), and the trust space's
// entries for every domain among them.
func (s *Store) Know(ctx context.Context, rcs []Recipient) (Known, error) {
	k := Known{people: map[string][]Mailbox{}, structures: map[string][]Mailbox{}, trust: map[string]bool{}}
	var ids, finesses []string
	for _, rc := range rcs {
		switch {
		case rc.NationalID != "":
			ids = append(ids, rc.NationalID)
		case rc.FINESS != "":
			finesses = append(finesses, rc.FINESS)
		}
	}
	if len(ids)+len(finesses) > 0 {
		rows, err := s.pool.Query(ctx, `SELECT `+localColumns+` FROM local_correspondents
			WHERE national_id = ANY ($1) OR (national_id = '' AND finess = ANY ($2))`, ids, finesses)
		if err != nil {
			return Known{}, fmt.Errorf("look up local correspondents: %w", err)
		}
		if k.locals, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (LocalCorrespondent, error) { return scanLocal(row) }); err != nil {
			return Known{}, fmt.Errorf("look up local correspondents: %w", err)
		}
		rows, err = s.pool.Query(ctx, `SELECT true AS person, national_id AS key, box_type <> 'PER' AS later, `+mailboxColumns+`
				FROM directory_entries WHERE national_id = ANY ($1)
			UNION ALL
			SELECT false, structure_id, box_type <> 'ORG', `+mailboxColumns+` FROM directory_entries
				WHERE box_type IN ('ORG', 'APP') AND structure_id <> '' AND structure_id = ANY ($2)
			ORDER BY person, key, later, address`, ids, finesses)
		if err != nil {
			return Known{}, fmt.Errorf("look up mailboxes: %w", err)
		}
		var person, later bool
		var key string
		var b Mailbox
		_, err = pgx.ForEachRow(rows, []any{&person, &key, &later, &b.Address, &b.NationalID, &b.BoxType, &b.LastName,
			&b.FirstName, &b.OrgName, &b.Dematerialised, &b.PostalAddress}, func() error {
			if person {
				k.people[key] = append(k.people[key], b)
			} else {
				k.structures[key] = append(k.structures[key], b)
			}
			return nil
		})
		if err != nil {
			return Known{}, fmt.Errorf("look up mailboxes: %w", err)
		}
	}
	var domains []string
	ask := func(address string) {
		if _, d, ok := strings.Cut(address, "@"); ok && d != "" {
			domains = append(domains, domainAndParents(d)...)
		}
	}
	for _, rc := range rcs {
		ask(normalAddress(rc.Address))
	}
	for _, c := range k.locals {
		ask(c.MSSanteAddress)
	}
	for _, boxes := range []map[string][]Mailbox{k.people, k.structures} {
		for _, bs := range boxes {
			for _, b := range bs {
				ask(b.Address)
			}
		}
	}
	if len(domains) > 0 {
		rows, err := s.pool.Query(ctx, `SELECT domain FROM trust_domains WHERE domain = ANY ($1)`, domains)
		if err != nil {
			return Known{}, fmt.Errorf("check trust space: %w", err)
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return Known{}, fmt.Errorf("check trust space: %w", err)
		}
		for _, d := range found {
			k.trust[d] = true
		}
	}
	return k, nil
}

// Local returns the local correspondent of a person (nationalID) or, for an
// organisation without one, of finess.
func (k Known) Local(nationalID, finess string) (LocalCorrespondent, bool) {
	for _, c := range k.locals {
		if (nationalID != "" && c.NationalID == nationalID) || (nationalID == "" && finess != "" && c.NationalID == "" && c.FINESS == finess) {
			return c, true
		}
	}
	return LocalCorrespondent{}, false
}

// Mailboxes returns the national directory's mailboxes of a person
// (nationalID) or, without one, of an organisation (finess).
func (k Known) Mailboxes(nationalID, finess string) []Mailbox {
	if nationalID != "" {
		return k.people[nationalID]
	}
	return k.structures[finess]
}

// Trusted reports whether the domain of address, or a parent domain of it,
// is in the trust space; an address without a domain is not.
func (k Known) Trusted(address string) bool {
	_, domain, ok := strings.Cut(address, "@")
	if !ok || domain == "" {
		return false
	}
	for _, d := range domainAndParents(domain) {
		if k.trust[d] {
			return true
		}
	}
	return false
}

// domainAndParents returns d and each of its parent domains, so that a trust
// space listing mssante.fr trusts ch-x.mssante.fr (one index look-up each).
func domainAndParents(d string) []string {
	out := []string{d}
	for {
		_, parent, ok := strings.Cut(d, ".")
		if !ok || parent == "" {
			return out
		}
		out = append(out, parent)
		d = parent
	}
}

// SearchQuery is a search of the national directory, for type-ahead.
type SearchQuery struct {
	// Text is a name (last name first, each word the start of a word of the
	// name, accents and case ignored), or an RPPS, a national id or a FINESS.
	Text string
	// City restricts to the structures whose city starts with it.
	City string
	// Profession restricts to a profession code (10 médecin…) or to the
	// entries whose profession or specialty label contains it.
	Profession string
	// Limit is the most entries returned. Defaults to 20, at most 100.
	Limit int
}

// SearchResult is a mailbox of the national directory.
type SearchResult struct {
	Address        string        `json:"address"`
	BoxType        string        `json:"box_type"`
	NationalID     string        `json:"national_id,omitempty"`
	RPPS           string        `json:"rpps,omitempty"`
	LastName       string        `json:"last_name,omitempty"`
	FirstName      string        `json:"first_name,omitempty"`
	Profession     string        `json:"profession,omitempty"`
	Specialty      string        `json:"specialty,omitempty"`
	OrgName        string        `json:"organisation,omitempty"`
	StructureID    string        `json:"structure_id,omitempty"`
	Dematerialised bool          `json:"dematerialised"`
	PostalAddress  PostalAddress `json:"postal_address"`
}

// identifierSyntax matches an RPPS, a national id, an ADELI or a FINESS.
var identifierSyntax = regexp.MustCompile(`^[0-9][0-9AB][0-9]{7,10}$`)

// foldAccents strips the accents of French in SQL, as SearchKey does in Go.
const foldAccents = `translate(lower(%s), 'àâäáãéèêëíìîïóòôöõúùûüçñœÿ', 'aaaaaeeeeiiiiooooouuuucnoy')`

// Search returns the mailboxes matching q, ordered by name. Each name word
// after the first narrows the result; the first one uses the index, so the
// search stays fast on the full national directory.
func (s *Store) Search(ctx context.Context, q SearchQuery) ([]SearchResult, error) {
	if q.Limit <= 0 {
		q.Limit = 20
	}
	q.Limit = min(q.Limit, 100)
	text := strings.TrimSpace(q.Text)
	var id, first string
	var others []string
	if identifierSyntax.MatchString(text) {
		id = text
	} else if words := strings.Fields(SearchKey(text)); len(words) > 0 {
		first = likePrefix(words[0])
		for _, w := range words[1:] {
			others = append(others, "% "+likePrefix(w))
		}
	}
	city := ""
	if c := SearchKey(q.City); c != "" {
		city = likePrefix(c)
	}
	// Only the conditions asked for, so that each search gets the plan of
	// its index (a generic "$1 = '' OR ..." would not use them).
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if id != "" {
		// The text as a national id, or an RPPS or ADELI with its prefix added.
		p := arg(id)
		ids := p
		if n, err := ParseNationalIDOrNumber(id); err == nil && n.String() != id {
			ids += ", " + arg(n.String())
		}
		where = append(where, `((national_id <> '' AND national_id IN (`+ids+`))
			OR (box_type IN ('ORG', 'APP') AND structure_id <> '' AND structure_id = `+p+`))`)
	}
	if first != "" {
		where = append(where, `search_name LIKE `+arg(first))
	}
	for _, w := range others {
		where = append(where, `' ' || search_name LIKE `+arg(w))
	}
	if city != "" {
		where = append(where, `search_city LIKE `+arg(city))
	}
	if p := strings.TrimSpace(q.Profession); p != "" {
		code, label := arg(p), arg("%"+likeEscaper.Replace(SearchKey(p))+"%")
		where = append(where, `(profession_code = `+code+` OR `+fmt.Sprintf(foldAccents, "profession")+` LIKE `+label+
			` OR `+fmt.Sprintf(foldAccents, "specialty")+` LIKE `+label+`)`)
	}
	if len(where) == 0 {
		where = append(where, "true")
	}
	rows, err := s.pool.Query(ctx, `SELECT address, box_type, national_id, rpps, last_name, first_name, profession,
			specialty, org_name, structure_id, dematerialised, postal_address
		FROM directory_entries WHERE `+strings.Join(where, " AND ")+`
		ORDER BY search_name, address LIMIT `+arg(q.Limit), args...)
	if err != nil {
		return nil, fmt.Errorf("search directory: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[SearchResult])
	if err != nil {
		return nil, fmt.Errorf("search directory: %w", err)
	}
	return out, nil
}

// ImportStatus is the state of the imports of one kind (directory or whitelist).
type ImportStatus struct {
	Kind string `json:"kind"`
	// LastAttempt is the time of the latest attempt, failed or not; zero if none.
	LastAttempt time.Time `json:"last_attempt"`
	// LastFailed is true when the latest attempt failed (the data in use is then older).
	LastFailed bool   `json:"last_failed"`
	LastError  string `json:"last_error,omitempty"`
	// LastSuccess is the time of the latest successful import; zero if none.
	LastSuccess time.Time `json:"last_success"`
	// Entries is the number of entries in use (mailboxes, or trusted domains).
	Entries int64 `json:"entries"`
}

// ImportStatuses returns the state of the directory and whitelist imports.
func (s *Store) ImportStatuses(ctx context.Context) ([]ImportStatus, error) {
	rows, err := s.pool.Query(ctx, `SELECT k.kind,
			last.imported_at, coalesce(last.status = 'failed', false), coalesce(last.error, ''),
			(SELECT max(imported_at) FROM directory_imports i WHERE i.kind = k.kind AND i.status = 'succeeded'),
			CASE k.kind WHEN 'directory' THEN (SELECT count(*) FROM directory_entries) ELSE (SELECT count(*) FROM trust_domains) END
		FROM (VALUES ('directory'), ('whitelist')) AS k(kind)
		LEFT JOIN LATERAL (SELECT imported_at, status, error FROM directory_imports i
			WHERE i.kind = k.kind ORDER BY imported_at DESC, id DESC LIMIT 1) last ON true
		ORDER BY k.kind`)
	if err != nil {
		return nil, fmt.Errorf("import statuses: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ImportStatus, error) {
		var st ImportStatus
		var attempt, success *time.Time
		if err := row.Scan(&st.Kind, &attempt, &st.LastFailed, &st.LastError, &success, &st.Entries); err != nil {
			return st, err
		}
		if attempt != nil {
			st.LastAttempt = *attempt
		}
		if success != nil {
			st.LastSuccess = *success
		}
		return st, nil
	})
	if err != nil {
		return nil, fmt.Errorf("import statuses: %w", err)
	}
	return out, nil
}
