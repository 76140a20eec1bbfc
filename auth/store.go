package auth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mssdispatch/mssdispatch/audit"
)

// This file holds every SQL statement of the package.

// Errors of the store.
var (
	// ErrNotFound is returned for a user that does not exist.
	ErrNotFound = errors.New("no such user")
	// ErrUserExists is returned by AddUser when the username is taken.
	ErrUserExists = errors.New("username already taken")
)

// execer runs a statement: a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Store keeps the dashboard's users, sessions, login failures and audit log
// in PostgreSQL.
type Store struct {
	pool   *pgxpool.Pool
	params hashParams
	dummy  phcHash
	// hashSlots bounds the password hashes computed at once, each taking
	// params.memory: a flood of logins must not exhaust the memory.
	hashSlots chan struct{}
}

// maxConcurrentHashes is the capacity of Store.hashSlots.
const maxConcurrentHashes = 4

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool) *Store {
	s := &Store{pool: pool, hashSlots: make(chan struct{}, maxConcurrentHashes)}
	s.setParams(defaultParams)
	return s
}

// setParams sets the parameters of new hashes (tests use cheap ones).
func (s *Store) setParams(p hashParams) {
	s.params, s.dummy = p, dummyHash(p)
}

// hashWork runs fn, which computes a password hash, when a slot is free.
func (s *Store) hashWork(ctx context.Context, fn func()) error {
	select {
	case s.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait to hash a password: %w", context.Cause(ctx))
	}
	defer func() { <-s.hashSlots }()
	fn()
	return nil
}

// hash hashes password with the store's parameters.
func (s *Store) hash(ctx context.Context, password string) (string, error) {
	var h string
	var err error
	if werr := s.hashWork(ctx, func() { h, err = hashPassword(password, s.params) }); werr != nil {
		return "", werr
	}
	return h, err
}

const userColumns = `id, username, display_name, role, services, source, disabled, created_at, last_login_at, grants`

func scanUser(row pgx.Row, extra ...any) (User, error) {
	var u User
	var role string
	err := row.Scan(append([]any{&u.ID, &u.Username, &u.DisplayName, &role, &u.Services, &u.Source, &u.Disabled,
		&u.CreatedAt, &u.LastLoginAt, &u.Grants}, extra...)...)
	u.Role = Role(role)
	if len(u.Services) == 0 {
		u.Services = nil
	}
	if len(u.Grants) == 0 {
		u.Grants = nil
	}
	return u, err
}

// AddUser validates nu and creates its account with an Argon2id hash of its
// password; it returns ErrUserExists when the username is taken and an error
// wrapping ErrInvalid for a bad username, role, password or service. The
// audit entry "user_added" names the actor of ctx (see WithActor).
func (s *Store) AddUser(ctx context.Context, nu NewUser) (User, error) {
	nu, err := nu.validate()
	if err != nil {
		return User{}, fmt.Errorf("add user: %w", err)
	}
	hash, err := s.hash(ctx, nu.Password)
	if err != nil {
		return User{}, fmt.Errorf("add user %s: %w", nu.Username, err)
	}
	var u User
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		u, err = scanUser(tx.QueryRow(ctx, `INSERT INTO users (username, display_name, password_hash, role, services)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (username) DO NOTHING
			RETURNING `+userColumns, nu.Username, nu.DisplayName, hash, string(nu.Role), nu.Services))
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrUserExists
		}
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, audit.Entry{Action: "user_added", Object: "user:" + u.Username,
			Detail: fmt.Sprintf("rôle %s, services %s", u.Role, servicesText(u.Services))})
	})
	if err != nil {
		return User{}, fmt.Errorf("add user %s: %w", nu.Username, err)
	}
	return u, nil
}

// servicesText shows services in an audit entry.
func servicesText(services []string) string {
	if len(services) == 0 {
		return "tous"
	}
	return strings.Join(services, ", ")
}

// SetPassword changes the password of a local account and ends its
// sessions; it returns ErrNotFound for an unknown user and an error wrapping
// ErrInvalid for a password too short.
func (s *Store) SetPassword(ctx context.Context, username, password string) error {
	name := normalizeUsername(username)
	if err := validatePassword(password); err != nil {
		return fmt.Errorf("set password of %s: %w", name, err)
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", name, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		var source string
		err := tx.QueryRow(ctx, `SELECT id, source FROM users WHERE username = $1 FOR UPDATE`, name).Scan(&id, &source)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if source != "local" {
			return &InvalidError{Field: "password", Msg: "the account comes from " + source + ", which checks its password"}
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1`, id, hash); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, id); err != nil {
			return err
		}
		// The new password is tried at once, from wherever the user failed.
		if _, err := tx.Exec(ctx, `DELETE FROM login_failures WHERE starts_with(key, $1)`, "pair:"+name+"|"); err != nil {
			return err
		}
		return s.audit(ctx, tx, audit.Entry{Action: "password_changed", Object: "user:" + name})
	})
	if err != nil {
		return fmt.Errorf("set password of %s: %w", name, err)
	}
	return nil
}

// SetGrant gives the user username grant (a Grant constant), or takes it
// back; it returns ErrNotFound for an unknown user. The user's sessions see
// the change at their next request.
func (s *Store) SetGrant(ctx context.Context, username, grant string, on bool) error {
	name := normalizeUsername(username)
	if grant != GrantCorrespondents {
		return fmt.Errorf("%w: grant %q: want %s", ErrInvalid, grant, GrantCorrespondents)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var grants []string
		err := tx.QueryRow(ctx, `UPDATE users SET grants = CASE WHEN $3 THEN array_append(array_remove(grants, $2), $2)
				ELSE array_remove(grants, $2) END, updated_at = now()
			WHERE username = $1 RETURNING grants`, name, grant, on).Scan(&grants)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, audit.Entry{Action: "grants_changed", Object: "user:" + name,
			Detail: "droits : " + cmp.Or(strings.Join(grants, ", "), "aucun")})
	})
	if err != nil {
		return fmt.Errorf("set grant %s of user %s: %w", grant, name, err)
	}
	return nil
}

// SetDisabled disables an account, ending its sessions, or enables it again;
// it returns ErrNotFound for an unknown user.
func (s *Store) SetDisabled(ctx context.Context, username string, disabled bool) error {
	name := normalizeUsername(username)
	verb := map[bool]string{true: "disable", false: "enable"}[disabled]
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		var was bool
		err := tx.QueryRow(ctx, `SELECT id, disabled FROM users WHERE username = $1 FOR UPDATE`, name).Scan(&id, &was)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil || was == disabled {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET disabled = $2, updated_at = now() WHERE id = $1`, id, disabled); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, audit.Entry{Action: "user_" + verb + "d", Object: "user:" + name})
	})
	if err != nil {
		return fmt.Errorf("%s user %s: %w", verb, name, err)
	}
	return nil
}

// Users returns every account, by username.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (User, error) { return scanUser(row) })
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// User returns the account id, or ErrNotFound.
func (s *Store) User(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("user %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("user %d: %w", id, err)
	}
	return u, nil
}

// loginUser returns the account of username with its password hash (nil
// for an external account), found false when there is none.
func (s *Store) loginUser(ctx context.Context, username string) (u User, hash *string, found bool, err error) {
	u, err = scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+`, password_hash FROM users WHERE username = $1`, username), &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, nil, false, nil
	}
	if err != nil {
		return User{}, nil, false, fmt.Errorf("look up user %s: %w", username, err)
	}
	return u, hash, true, nil
}

// loginSucceeded records the login of u from ip (whose addressKey is
// address), and its password's new hash when not empty.
func (s *Store) loginSucceeded(ctx context.Context, u *User, newHash, ip, address string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE users
			SET last_login_at = now(), password_hash = coalesce(nullif($2, ''), password_hash)
			WHERE id = $1 RETURNING last_login_at`, u.ID, newHash).Scan(&u.LastLoginAt)
		if err != nil {
			return fmt.Errorf("record login of %s: %w", u.Username, err)
		}
		if address != "" {
			_, err := tx.Exec(ctx, `INSERT INTO login_known_addresses (user_id, address) VALUES ($1, $2)
				ON CONFLICT (user_id, address) DO UPDATE SET last_login_at = now()`, u.ID, address)
			if err != nil {
				return fmt.Errorf("record login address of %s: %w", u.Username, err)
			}
		}
		return s.audit(ctx, tx, audit.Entry{Actor: u.Username, Action: "login", Object: "user:" + u.Username, Detail: ipDetail(ip)})
	})
}

// ipDetail names the client in an audit entry.
func ipDetail(ip string) string {
	if ip == "" {
		return ""
	}
	return "depuis " + clean(ip, 64)
}

// Login attempts: one row per key per attempt, written before the password is
// checked (so that concurrent attempts count) and deleted when it was right
// or refused.

// recordAttempt writes a pending failure under each key of keys and returns their ids.
func (s *Store) recordAttempt(ctx context.Context, keys loginKeys) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `INSERT INTO login_failures (key) SELECT unnest($1::text[]) RETURNING id`, keys.all())
	if err != nil {
		return nil, fmt.Errorf("record login attempt: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("record login attempt: %w", err)
	}
	return ids, nil
}

// loginFacts returns the failures that decide the attempt of keys, other
// than its own rows ids (pending failures of concurrent attempts included),
// and whether the account logged in from the address within knownFor.
func (s *Store) loginFacts(ctx context.Context, keys loginKeys, ids []int64) (loginFacts, error) {
	var f loginFacts
	var sincePair, sinceAddress float64
	err := s.pool.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE key = $1),
			coalesce(extract(epoch FROM now() - max(at) FILTER (WHERE key = $1)), 0)::float8,
			count(*) FILTER (WHERE key = $2 AND at > now() - make_interval(secs => $6)),
			count(*) FILTER (WHERE key = $3 AND at > now() - make_interval(secs => $6)),
			coalesce(extract(epoch FROM now() - max(at) FILTER (WHERE key = $3)), 0)::float8,
			EXISTS (SELECT 1 FROM login_known_addresses k JOIN users u ON u.id = k.user_id
				WHERE u.username = $7 AND k.address = $8 AND k.last_login_at > now() - make_interval(secs => $9))
		FROM login_failures
		WHERE key IN ($1, $2, $3) AND at > now() - make_interval(secs => $5) AND NOT (id = ANY($4))`,
		keys.pair(), keys.accountKey(), keys.addressKey(), ids, pairWindow.Seconds(), ceilingWindow.Seconds(),
		keys.account, keys.address, knownFor.Seconds()).
		Scan(&f.pair, &sincePair, &f.account, &f.address, &sinceAddress, &f.known)
	if err != nil {
		return loginFacts{}, fmt.Errorf("count login failures: %w", err)
	}
	f.sincePair = time.Duration(sincePair * float64(time.Second))
	f.sinceAddress = time.Duration(sinceAddress * float64(time.Second))
	return f, nil
}

// forgetAttempts deletes the rows ids and, when key is not empty, every
// failure of key.
func (s *Store) forgetAttempts(ctx context.Context, ids []int64, key string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM login_failures WHERE id = ANY($1) OR key = nullif($2, '')`, ids, key)
	if err != nil {
		return fmt.Errorf("forget login attempts: %w", err)
	}
	return nil
}

// pruneFailures deletes the failures older than window.
func pruneFailures(ctx context.Context, q execer, window time.Duration) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM login_failures WHERE at < now() - make_interval(secs => $1)`, window.Seconds())
	if err != nil {
		return 0, fmt.Errorf("prune login failures: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Sessions: the row is keyed by the SHA-256 of the cookie's token.

// createSession deletes the sessions old and inserts a new one.
func (s *Store) createSession(ctx context.Context, old [][]byte, tokenHash []byte, userID int64, csrf string, ttl time.Duration,
	ip, userAgent string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(old) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE token_hash = ANY($1)`, old); err != nil {
				return fmt.Errorf("delete previous session: %w", err)
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at, client_ip, user_agent)
			VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5, $6)`,
			tokenHash, userID, csrf, ttl.Seconds(), clean(ip, 64), clean(userAgent, 512))
		if err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		return nil
	})
}

// loadSession returns the user and CSRF token of a live session (not
// expired, not idle longer than idle, of an enabled user), and whether its
// last_seen_at is older than touchEvery; found is false when there is none.
func (s *Store) loadSession(ctx context.Context, tokenHash []byte, idle, touchEvery time.Duration) (
	u User, csrf string, stale, found bool, err error) {
	row := s.pool.QueryRow(ctx, `SELECT u.id, u.username, u.display_name, u.role, u.services, u.source, u.disabled,
			u.created_at, u.last_login_at, u.grants, s.csrf_token, s.last_seen_at < now() - make_interval(secs => $3)
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires_at > now() AND s.last_seen_at > now() - make_interval(secs => $2)
			AND NOT u.disabled`, tokenHash, idle.Seconds(), touchEvery.Seconds())
	u, err = scanUser(row, &csrf, &stale)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, "", false, false, nil
	}
	if err != nil {
		return User{}, "", false, false, fmt.Errorf("load session: %w", err)
	}
	return u, csrf, stale, true, nil
}

// touchSession records that the session was just used.
func (s *Store) touchSession(ctx context.Context, tokenHash []byte) error {
	if _, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = now() WHERE token_hash = $1`, tokenHash); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// deleteSession deletes a session and returns the username it was of;
// found is false when there was none.
func (s *Store) deleteSession(ctx context.Context, tokenHash []byte) (username string, found bool, err error) {
	err = s.pool.QueryRow(ctx, `DELETE FROM sessions s USING users u
		WHERE s.token_hash = $1 AND u.id = s.user_id RETURNING u.username`, tokenHash).Scan(&username)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("delete session: %w", err)
	}
	return username, true, nil
}

// purgeSessions deletes the sessions expired or idle longer than idle, the
// login failures older than window and the login addresses older than
// known; it returns the number of sessions.
func (s *Store) purgeSessions(ctx context.Context, idle, window, known time.Duration) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM sessions
			WHERE expires_at <= now() OR last_seen_at <= now() - make_interval(secs => $1)`, idle.Seconds())
		if err != nil {
			return fmt.Errorf("purge sessions: %w", err)
		}
		n = tag.RowsAffected()
		if _, err := tx.Exec(ctx, `DELETE FROM login_known_addresses WHERE last_login_at < now() - make_interval(secs => $1)`,
			known.Seconds()); err != nil {
			return fmt.Errorf("purge login addresses: %w", err)
		}
		_, err = pruneFailures(ctx, tx, window)
		return err
	})
	return n, err
}

// audit appends e to the audit log through q (the transaction of the change
// it records; nil: the store's pool), in the name of the context's actor
// when e names none (see WithActor).
func (s *Store) audit(ctx context.Context, q audit.Querier, e audit.Entry) error {
	if e.Actor == "" {
		e.Actor = actorOf(ctx)
	}
	if q == nil {
		q = s.pool
	}
	return audit.Write(ctx, q, e)
}

// actorKey is the context key of WithActor.
type actorKey struct{}

// WithActor returns a context naming who acts in it (e.g. "cli:root" for
// the command line) for the audit entries the store writes.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// actorOf returns the actor of ctx: the one of WithActor, else the current
// user's username, else "system".
func actorOf(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	if u, ok := CurrentUser(ctx); ok {
		return u.Username
	}
	return "system"
}
