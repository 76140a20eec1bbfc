package correspondents

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mssdispatch/mssdispatch/audit"
)

// Preferences of a local correspondent: how the hospital was told to write to them.
const (
	// PreferenceDirectory follows the national directory: MSSanté, plus
	// paper unless the correspondent ticked dématérialisation.
	PreferenceDirectory = "directory"
	// PreferenceElectronic is MSSanté only.
	PreferenceElectronic = "electronic"
	// PreferencePaper is paper only, even with an MSSanté address.
	PreferencePaper = "paper"
	// PreferenceBoth is MSSanté and a paper copy.
	PreferenceBoth = "both"
)

// ErrNotFound is returned for a local correspondent that does not exist.
var ErrNotFound = errors.New("correspondent not found")

// ErrConflict is returned when another local correspondent already has the
// same national id or FINESS.
var ErrConflict = errors.New("a local correspondent with this national id or FINESS already exists")

// ValidationError is a local correspondent that cannot be saved as given.
type ValidationError struct {
	Field string // the JSON name of the field at fault
	Msg   string
}

// Error implements error.
func (e *ValidationError) Error() string { return e.Field + ": " + e.Msg }

// LocalCorrespondent is a correspondent the hospital knows, in its own
// directory: it overrides the national entry of the same person (national
// id) or organisation (FINESS) when the resolver routes a report.
type LocalCorrespondent struct {
	ID int64 `json:"id"`
	// NationalID is "8" + RPPS or "0" + ADELI (a NationalID); empty for an organisation.
	NationalID string `json:"national_id,omitempty"`
	// FINESS identifies an organisation (9 characters).
	FINESS       string `json:"finess,omitempty"`
	Family       string `json:"family,omitempty"`
	Given        string `json:"given,omitempty"`
	Organisation string `json:"organisation,omitempty"`
	// MSSanteAddress replaces the directory's addresses; it must still be in the trust space.
	MSSanteAddress string        `json:"mssante_address,omitempty"`
	PostalAddress  PostalAddress `json:"postal_address"`
	// Preference is one of the Preference constants; empty means PreferenceDirectory.
	Preference string    `json:"preference"`
	Note       string    `json:"note,omitempty"`
	UpdatedBy  string    `json:"updated_by,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Name is the correspondent's display name: "Given Family", else the organisation.
func (c LocalCorrespondent) Name() string {
	if n := strings.TrimSpace(c.Given + " " + c.Family); n != "" {
		return n
	}
	return c.Organisation
}

var finessSyntax = regexp.MustCompile(`^[0-9][0-9AB][0-9]{7}$`)

// normalise checks c and puts its fields in their stored form.
func (c *LocalCorrespondent) normalise() error {
	for _, f := range []*string{&c.NationalID, &c.FINESS, &c.Family, &c.Given, &c.Organisation, &c.MSSanteAddress, &c.Preference, &c.Note} {
		*f = strings.TrimSpace(*f)
	}
	var badNationalID error
	if c.NationalID != "" {
		_, badNationalID = ParseNationalID(c.NationalID)
	}
	switch {
	case c.NationalID == "" && c.FINESS == "":
		return &ValidationError{Field: "national_id", Msg: "a national id (8 + RPPS, 0 + ADELI) or a FINESS is required"}
	case badNationalID != nil:
		return &ValidationError{Field: "national_id", Msg: badNationalID.Error()}
	case c.FINESS != "" && !finessSyntax.MatchString(c.FINESS):
		return &ValidationError{Field: "finess", Msg: fmt.Sprintf("%q is not a 9-character FINESS", c.FINESS)}
	case c.Name() == "":
		return &ValidationError{Field: "family", Msg: "a name (family, or organisation) is required"}
	}
	if c.Preference == "" {
		c.Preference = PreferenceDirectory
	}
	switch c.Preference {
	case PreferenceDirectory, PreferenceElectronic, PreferencePaper, PreferenceBoth:
	default:
		return &ValidationError{Field: "preference", Msg: fmt.Sprintf("%q: want directory, electronic, paper or both", c.Preference)}
	}
	if c.MSSanteAddress != "" {
		a, err := ParseMailbox(c.MSSanteAddress)
		if err != nil {
			return &ValidationError{Field: "mssante_address", Msg: err.Error()}
		}
		c.MSSanteAddress = a
	}
	return nil
}

const localColumns = `id, national_id, finess, family, given, organisation, mssante_address, postal_address,
	preference, note, updated_by, updated_at`

// SaveLocal creates c (ID 0) or replaces the local correspondent c.ID, and
// returns it as stored; the audit entry of actor, with the fields before
// and after, is written in the same transaction. Who may call it is the
// caller's decision: a local correspondent changes where every service's
// letters go. It returns a *ValidationError for invalid fields, ErrConflict
// when the national id or FINESS is taken, and ErrNotFound for an unknown ID.
func (s *Store) SaveLocal(ctx context.Context, c LocalCorrespondent, actor string) (LocalCorrespondent, error) {
	if err := c.normalise(); err != nil {
		return LocalCorrespondent{}, err
	}
	var saved LocalCorrespondent
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		saved, err = saveLocal(ctx, tx, c, actor, "")
		return err
	})
	return saved, err
}

// saveLocal is SaveLocal in tx, c normalised; why, when not empty, ends the
// audit entry's detail.
func saveLocal(ctx context.Context, tx pgx.Tx, c LocalCorrespondent, actor, why string) (LocalCorrespondent, error) {
	var before *LocalCorrespondent
	if c.ID != 0 {
		b, err := lockLocal(ctx, tx, c.ID)
		if err != nil {
			return LocalCorrespondent{}, err
		}
		before = &b
	}
	search := SearchKey(c.Family + " " + c.Given + " " + c.Organisation)
	args := []any{c.NationalID, c.FINESS, c.Family, c.Given, c.Organisation, c.MSSanteAddress, c.PostalAddress,
		c.Preference, c.Note, search, actor}
	var row pgx.Row
	if before == nil {
		row = tx.QueryRow(ctx, `INSERT INTO local_correspondents (national_id, finess, family, given,
				organisation, mssante_address, postal_address, preference, note, search_name, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			RETURNING `+localColumns, args...)
	} else {
		row = tx.QueryRow(ctx, `UPDATE local_correspondents SET national_id = $1, finess = $2, family = $3,
				given = $4, organisation = $5, mssante_address = $6, postal_address = $7, preference = $8,
				note = $9, search_name = $10, updated_by = $11, updated_at = now()
			WHERE id = $12
			RETURNING `+localColumns, append(args, c.ID)...)
	}
	saved, err := scanLocal(row)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return LocalCorrespondent{}, ErrConflict
	case err != nil:
		return LocalCorrespondent{}, fmt.Errorf("save local correspondent: %w", err)
	}
	action, detail := "correspondent_created", "créé : "+saved.describe()
	if before != nil {
		action, detail = "correspondent_changed", changes(*before, saved)
	}
	if why != "" {
		detail += " (" + why + ")"
	}
	return saved, audit.Write(ctx, tx, audit.Entry{Actor: actor, Action: action, Object: fmt.Sprintf("correspondent:%d", saved.ID), Detail: detail})
}

// lockLocal locks and returns the local correspondent id, or ErrNotFound.
func lockLocal(ctx context.Context, tx pgx.Tx, id int64) (LocalCorrespondent, error) {
	c, err := scanLocal(tx.QueryRow(ctx, `SELECT `+localColumns+` FROM local_correspondents WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return LocalCorrespondent{}, fmt.Errorf("local correspondent %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return LocalCorrespondent{}, fmt.Errorf("load local correspondent %d: %w", id, err)
	}
	return c, nil
}

// fields are c's fields a person reads, named in French, in order.
func (c LocalCorrespondent) fields() [][2]string {
	return [][2]string{{"identifiant national", c.NationalID}, {"FINESS", c.FINESS}, {"nom", c.Family}, {"prénom", c.Given},
		{"organisation", c.Organisation}, {"adresse MSSanté", c.MSSanteAddress}, {"adresse postale", strings.Join(c.PostalAddress.Envelope(), ", ")},
		{"préférence", c.Preference}, {"note", c.Note}}
}

// describe lists c's fields that are set.
func (c LocalCorrespondent) describe() string {
	var parts []string
	for _, f := range c.fields() {
		if f[1] != "" {
			parts = append(parts, f[0]+" "+f[1])
		}
	}
	return strings.Join(parts, " ; ")
}

// changes lists the fields that differ from before to after, as "name: old → new".
func changes(before, after LocalCorrespondent) string {
	var parts []string
	b := before.fields()
	for i, f := range after.fields() {
		if f[1] != b[i][1] {
			parts = append(parts, fmt.Sprintf("%s : %s → %s", f[0], cmp.Or(b[i][1], "(vide)"), cmp.Or(f[1], "(vide)")))
		}
	}
	if len(parts) == 0 {
		return "aucun changement"
	}
	return strings.Join(parts, " ; ")
}

// Local returns the local correspondent id, or ErrNotFound.
func (s *Store) Local(ctx context.Context, id int64) (LocalCorrespondent, error) {
	c, err := scanLocal(s.pool.QueryRow(ctx, `SELECT `+localColumns+` FROM local_correspondents WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return LocalCorrespondent{}, fmt.Errorf("local correspondent %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return LocalCorrespondent{}, fmt.Errorf("load local correspondent %d: %w", id, err)
	}
	return c, nil
}

// ListLocal returns the local correspondents whose name starts with the words
// of q (all of them when q is empty), by name, at most limit.
func (s *Store) ListLocal(ctx context.Context, q string, limit int) ([]LocalCorrespondent, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+localColumns+` FROM local_correspondents
		WHERE search_name LIKE $1 ESCAPE '\' OR national_id = $2 OR finess = $2
		ORDER BY search_name, id LIMIT $3`, likePrefix(SearchKey(q)), strings.TrimSpace(q), limit)
	if err != nil {
		return nil, fmt.Errorf("list local correspondents: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (LocalCorrespondent, error) { return scanLocal(row) })
	if err != nil {
		return nil, fmt.Errorf("list local correspondents: %w", err)
	}
	return out, nil
}

// DeleteLocal removes the local correspondent id, or returns ErrNotFound;
// the audit entry of actor, with what it was, is written in the same
// transaction.
func (s *Store) DeleteLocal(ctx context.Context, id int64, actor string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := lockLocal(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM local_correspondents WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete local correspondent %d: %w", id, err)
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: actor, Action: "correspondent_deleted", Object: fmt.Sprintf("correspondent:%d", id),
			Detail: "supprimé : " + before.describe()})
	})
}

func scanLocal(row pgx.Row) (LocalCorrespondent, error) {
	var c LocalCorrespondent
	err := row.Scan(&c.ID, &c.NationalID, &c.FINESS, &c.Family, &c.Given, &c.Organisation, &c.MSSanteAddress,
		&c.PostalAddress, &c.Preference, &c.Note, &c.UpdatedBy, &c.UpdatedAt)
	return c, err
}

// likeEscaper escapes the wildcards of LIKE patterns (backslash is
// PostgreSQL's default escape character).
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// likePrefix is a LIKE pattern matching the strings that start with s.
func likePrefix(s string) string { return likeEscaper.Replace(s) + "%" }
