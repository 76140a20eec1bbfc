package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
)

const password = "correct horse battery"

var quiet = slog.New(slog.DiscardHandler)

type testBundle struct {
	ctx   context.Context
	pool  *pgxpool.Pool
	store *auth.Store
}

// setup returns a store on a fresh database, hashing cheaply.
func setup(t *testing.T) *testBundle {
	t.Helper()
	pool := pgtest.NewPool(t)
	store := auth.NewStore(pool)
	auth.CheapHashing(store)
	return &testBundle{ctx: context.Background(), pool: pool, store: store}
}

// addUser creates username with the test password.
func (tb *testBundle) addUser(t *testing.T, username string, role auth.Role, services ...string) auth.User {
	t.Helper()
	u, err := tb.store.AddUser(tb.ctx, auth.NewUser{Username: username, Password: password, Role: role, Services: services})
	require.NoError(t, err)
	return u
}

// auditActions returns the actions of the audit log, oldest first.
func (tb *testBundle) auditActions(t *testing.T) []string {
	t.Helper()
	records, err := tb.store.AuditLog(tb.ctx, auth.AuditFilter{Limit: 500})
	require.NoError(t, err)
	var out []string
	for i := len(records) - 1; i >= 0; i-- {
		r := records[i]
		out = append(out, fmt.Sprintf("%s %s %s %s", r.Actor, r.Action, r.Object, r.Detail))
	}
	return out
}

func TestUserPermissions(t *testing.T) {
	t.Parallel()
	perms := []auth.Permission{auth.PermView, auth.PermAct, auth.PermCorrespondents, auth.PermRules, auth.PermAdmin}
	want := map[auth.Role][]bool{
		auth.RoleSecretary: {true, true, true, false, false},
		auth.RoleCME:       {true, false, false, true, false},
		auth.RoleAdmin:     {true, true, true, true, true},
		"nurse":            {false, false, false, false, false},
	}
	for role, can := range want {
		for i, p := range perms {
			require.Equal(t, can[i], auth.User{Role: role}.Can(p), "%s %s", role, p)
			require.False(t, auth.User{Role: role, Disabled: true}.Can(p), "disabled %s %s", role, p)
		}
	}
	require.False(t, auth.User{Role: auth.RoleAdmin}.Can(auth.Permission(99)))
	require.Equal(t, "rules", auth.PermRules.String())

	require.True(t, auth.User{}.SeesService("cardiologie"))
	u := auth.User{Services: []string{"cardiologie", "pneumologie"}}
	require.True(t, u.SeesService("pneumologie"))
	require.False(t, u.SeesService("psychiatrie"))
}

func TestAddUser(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	u, err := tb.store.AddUser(tb.ctx, auth.NewUser{Username: " Alice.Martin ", DisplayName: "Alice Martin", Password: password,
		Role: auth.RoleSecretary, Services: []string{"cardiologie", " cardiologie", "pneumologie"}})
	require.NoError(t, err)
	require.NotZero(t, u.ID)
	require.Equal(t, "alice.martin", u.Username, "lower-cased and trimmed")
	require.Equal(t, "Alice Martin", u.DisplayName)
	require.Equal(t, auth.RoleSecretary, u.Role)
	require.Equal(t, []string{"cardiologie", "pneumologie"}, u.Services)
	require.Equal(t, "local", u.Source)
	require.False(t, u.Disabled)
	require.WithinDuration(t, time.Now(), u.CreatedAt, time.Minute)
	require.Nil(t, u.LastLoginAt)

	var stored string
	require.NoError(t, tb.pool.QueryRow(tb.ctx, "SELECT password_hash FROM users WHERE id = $1", u.ID).Scan(&stored))
	require.Regexp(t, `^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$`, stored)
	require.NotContains(t, stored, password)

	got, err := tb.store.User(tb.ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, u, got)
	_, err = tb.store.User(tb.ctx, u.ID+100)
	require.ErrorIs(t, err, auth.ErrNotFound)

	cme := tb.addUser(t, "dr-cme", auth.RoleCME)
	require.Equal(t, "dr-cme", cme.DisplayName, "defaults to the username")
	require.Nil(t, cme.Services, "all services")

	_, err = tb.store.AddUser(tb.ctx, auth.NewUser{Username: "ALICE.martin", Password: password, Role: auth.RoleAdmin})
	require.ErrorIs(t, err, auth.ErrUserExists)

	for _, tt := range []struct {
		nu      auth.NewUser
		wantErr string
	}{
		{auth.NewUser{Username: "a", Password: password, Role: auth.RoleCME}, `username "a"`},
		{auth.NewUser{Username: "alice martin", Password: password, Role: auth.RoleCME}, `username "alice martin"`},
		{auth.NewUser{Username: "élodie", Password: password, Role: auth.RoleCME}, `username "élodie"`},
		{auth.NewUser{Username: "bob", Password: password, Role: "nurse"}, `role "nurse"`},
		{auth.NewUser{Username: "bob", Password: "short", Role: auth.RoleCME}, "at least 12 characters"},
		{auth.NewUser{Username: "bob", Password: "ééééééééééé", Role: auth.RoleCME}, "at least 12 characters"},
		{auth.NewUser{Username: "bob", Password: password + "\n", Role: auth.RoleCME}, "one line"},
		{auth.NewUser{Username: "bob", Password: password, Role: auth.RoleCME, Services: []string{" "}}, `service ""`},
	} {
		_, err := tb.store.AddUser(tb.ctx, tt.nu)
		require.ErrorIs(t, err, auth.ErrInvalid, tt.wantErr)
		require.ErrorContains(t, err, tt.wantErr)
	}
	// Twelve characters, not bytes.
	tb.addUser(t, "bob", auth.RoleCME)
	_, err = tb.store.AddUser(tb.ctx, auth.NewUser{Username: "carole", Password: "éééééééééééé", Role: auth.RoleCME})
	require.NoError(t, err)

	users, err := tb.store.Users(tb.ctx)
	require.NoError(t, err)
	var names []string
	for _, u := range users {
		names = append(names, u.Username)
	}
	require.Equal(t, []string{"alice.martin", "bob", "carole", "dr-cme"}, names)

	require.Equal(t, []string{
		"system user_added user:alice.martin role secretary, services cardiologie, pneumologie",
		"system user_added user:dr-cme role cme, services all",
		"system user_added user:bob role cme, services all",
		"system user_added user:carole role cme, services all",
	}, tb.auditActions(t))

	// The database refuses what the store would.
	_, err = tb.pool.Exec(tb.ctx, "INSERT INTO users (username, role) VALUES ('Bad', 'cme')")
	require.ErrorContains(t, err, "users_username_check")
	_, err = tb.pool.Exec(tb.ctx, "INSERT INTO users (username, role) VALUES ('zoe', 'nurse')")
	require.ErrorContains(t, err, "users_role_check")
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	alice := tb.addUser(t, "alice", auth.RoleSecretary, "cardiologie")
	tb.addUser(t, "bob", auth.RoleCME)

	u, err := tb.store.Authenticate(tb.ctx, "Alice", password, "192.0.2.7")
	require.NoError(t, err)
	require.Equal(t, alice.ID, u.ID)
	require.Equal(t, []string{"cardiologie"}, u.Services)
	require.NotNil(t, u.LastLoginAt)
	got, err := tb.store.User(tb.ctx, alice.ID)
	require.NoError(t, err)
	require.Equal(t, u.LastLoginAt, got.LastLoginAt)

	_, err = tb.store.Authenticate(tb.ctx, "alice", password+"!", "192.0.2.7")
	require.ErrorIs(t, err, auth.ErrBadCredentials)
	_, err = tb.store.Authenticate(tb.ctx, "nobody", password, "192.0.2.7")
	require.ErrorIs(t, err, auth.ErrBadCredentials)
	_, err = tb.store.Authenticate(tb.ctx, "not a username", password, "")
	require.ErrorIs(t, err, auth.ErrBadCredentials)
	_, err = tb.store.Authenticate(tb.ctx, "alice", "", "")
	require.ErrorIs(t, err, auth.ErrBadCredentials)

	require.NoError(t, tb.store.SetDisabled(tb.ctx, "bob", true))
	_, err = tb.store.Authenticate(tb.ctx, "bob", password, "2001:db8::1")
	require.ErrorIs(t, err, auth.ErrBadCredentials, "disabled: the same error")
	require.NoError(t, tb.store.SetDisabled(tb.ctx, "bob", true), "already disabled: nothing to do")
	require.NoError(t, tb.store.SetDisabled(tb.ctx, "bob", false))
	_, err = tb.store.Authenticate(tb.ctx, "bob", password, "2001:db8::1")
	require.NoError(t, err)
	require.ErrorIs(t, tb.store.SetDisabled(tb.ctx, "nobody", true), auth.ErrNotFound)

	// An account of an external identity provider has no password here.
	_, err = tb.pool.Exec(tb.ctx, `INSERT INTO users (username, role, source, external_subject)
		VALUES ('psc-user', 'cme', 'https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet', 'f:550dc1c8:899700218896')`)
	require.NoError(t, err)
	_, err = tb.store.Authenticate(tb.ctx, "psc-user", "", "")
	require.ErrorIs(t, err, auth.ErrBadCredentials)
	require.ErrorIs(t, tb.store.SetPassword(tb.ctx, "psc-user", password), auth.ErrInvalid)

	// A new password works, the old one no longer does.
	require.NoError(t, tb.store.SetPassword(tb.ctx, "ALICE", "a brand new passphrase"))
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "")
	require.ErrorIs(t, err, auth.ErrBadCredentials)
	_, err = tb.store.Authenticate(tb.ctx, "alice", "a brand new passphrase", "")
	require.NoError(t, err)
	require.ErrorIs(t, tb.store.SetPassword(tb.ctx, "alice", "short"), auth.ErrInvalid)
	require.ErrorIs(t, tb.store.SetPassword(tb.ctx, "nobody", password), auth.ErrNotFound)

	require.Equal(t, []string{
		"system user_added user:alice role secretary, services cardiologie",
		"system user_added user:bob role cme, services all",
		"alice login user:alice from 192.0.2.7",
		"alice login_failed user:alice wrong password, from 192.0.2.7",
		"nobody login_failed user:nobody unknown user, from 192.0.2.7",
		"(invalid username) login_failed  unknown user",
		"alice login_failed user:alice wrong password",
		"system user_disabled user:bob ",
		"bob login_failed user:bob account disabled, from 2001:db8::1",
		"system user_enabled user:bob ",
		"bob login user:bob from 2001:db8::1",
		"psc-user login_failed user:psc-user no local password (https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet)",
		"system password_changed user:alice ",
		"alice login_failed user:alice wrong password",
		"alice login user:alice ",
	}, tb.auditActions(t))
	var leaked int
	require.NoError(t, tb.pool.QueryRow(tb.ctx, "SELECT count(*) FROM audit_log WHERE detail LIKE '%' || $1 || '%'", password).Scan(&leaked))
	require.Zero(t, leaked)
}

func TestAuthenticateRehashes(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addUser(t, "alice", auth.RoleAdmin)
	var before, after string
	require.NoError(t, tb.pool.QueryRow(tb.ctx, "SELECT password_hash FROM users").Scan(&before))
	require.Contains(t, before, "$m=64,t=1,p=1$")

	// The store now hashes with the real parameters: the next login upgrades
	// the hash, and the password still works.
	auth.DefaultHashing(tb.store)
	_, err := tb.store.Authenticate(tb.ctx, "alice", password, "")
	require.NoError(t, err)
	require.NoError(t, tb.pool.QueryRow(tb.ctx, "SELECT password_hash FROM users").Scan(&after))
	require.Contains(t, after, "$m=65536,t=3,p=2$")
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "")
	require.NoError(t, err)
}

func TestRateLimitByUsername(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addUser(t, "alice", auth.RoleSecretary)
	tb.addUser(t, "bob", auth.RoleSecretary)

	// Five failures, from five addresses: the sixth attempt is refused even
	// with the right password, without a check of the password.
	for i := range 5 {
		_, err := tb.store.Authenticate(tb.ctx, "alice", "wrong password", fmt.Sprintf("192.0.2.%d", i+1))
		require.ErrorIs(t, err, auth.ErrBadCredentials, i)
	}
	_, err := tb.store.Authenticate(tb.ctx, "ALICE", password, "198.51.100.1")
	require.ErrorIs(t, err, auth.ErrRateLimited)
	rle, ok := errors.AsType[*auth.RateLimitError](err)
	require.True(t, ok)
	require.Greater(t, rle.RetryAfter, 14*time.Minute)
	require.LessOrEqual(t, rle.RetryAfter, 15*time.Minute)
	require.Contains(t, err.Error(), "too many failed logins: retry in 1")

	// Refused attempts do not count: they neither extend the limit nor are
	// written to the audit log.
	for range 3 {
		_, err = tb.store.Authenticate(tb.ctx, "alice", password, "")
		require.ErrorIs(t, err, auth.ErrRateLimited)
	}
	var failures int
	require.NoError(t, tb.pool.QueryRow(tb.ctx, "SELECT count(*) FROM login_failures WHERE key = 'user:alice'").Scan(&failures))
	require.Equal(t, 5, failures)
	records, err := tb.store.AuditLog(tb.ctx, auth.AuditFilter{Action: "login_failed"})
	require.NoError(t, err)
	require.Len(t, records, 5)

	// Another user is not limited.
	_, err = tb.store.Authenticate(tb.ctx, "bob", password, "192.0.2.1")
	require.NoError(t, err)

	// Ten minutes later, still limited; once the oldest failure is 15
	// minutes old, one attempt is allowed again.
	_, err = tb.pool.Exec(tb.ctx, "UPDATE login_failures SET at = at - interval '10 minutes'")
	require.NoError(t, err)
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "")
	require.ErrorIs(t, err, auth.ErrRateLimited)
	rle, _ = errors.AsType[*auth.RateLimitError](err)
	require.Less(t, rle.RetryAfter, 5*time.Minute+time.Second)
	_, err = tb.pool.Exec(tb.ctx, `UPDATE login_failures SET at = at - interval '5 minutes 1 second'
		WHERE id = (SELECT min(id) FROM login_failures WHERE key = 'user:alice')`)
	require.NoError(t, err)
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "")
	require.NoError(t, err)

	// A success clears the username's failures.
	require.NoError(t, tb.pool.QueryRow(tb.ctx, "SELECT count(*) FROM login_failures WHERE key = 'user:alice'").Scan(&failures))
	require.Zero(t, failures)

	// Unknown usernames are limited alike (the limit does not tell which exist).
	for range 5 {
		_, err = tb.store.Authenticate(tb.ctx, "nobody", password, "")
		require.ErrorIs(t, err, auth.ErrBadCredentials)
	}
	_, err = tb.store.Authenticate(tb.ctx, "nobody", password, "")
	require.ErrorIs(t, err, auth.ErrRateLimited)
}

func TestRateLimitByAddress(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addUser(t, "alice", auth.RoleSecretary)

	// Twenty failures from one address on twenty usernames: the address is
	// refused, for any user; another address is not.
	for i := range 20 {
		_, err := tb.store.Authenticate(tb.ctx, fmt.Sprintf("user%d", i), password, "203.0.113.9")
		require.ErrorIs(t, err, auth.ErrBadCredentials, i)
	}
	_, err := tb.store.Authenticate(tb.ctx, "alice", password, "203.0.113.9")
	require.ErrorIs(t, err, auth.ErrRateLimited)
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "::ffff:203.0.113.9")
	require.ErrorIs(t, err, auth.ErrRateLimited, "the same address mapped in IPv6")
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "203.0.113.10")
	require.NoError(t, err)

	// An IPv6 client counts as its /64.
	for i := range 20 {
		_, err := tb.store.Authenticate(tb.ctx, fmt.Sprintf("user%d", i), password, fmt.Sprintf("2001:db8:1:2::%x", i+1))
		require.ErrorIs(t, err, auth.ErrBadCredentials, i)
	}
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "2001:db8:1:2:ffff::1")
	require.ErrorIs(t, err, auth.ErrRateLimited)
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "2001:db8:1:3::1")
	require.NoError(t, err)
}

func TestRateLimitConcurrent(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addUser(t, "alice", auth.RoleSecretary)

	// Thirty wrong passwords at once: the attempts are counted before the
	// passwords are checked, so no more than five are.
	var wg sync.WaitGroup
	errs := make([]error, 30)
	for i := range errs {
		wg.Go(func() { _, errs[i] = tb.store.Authenticate(tb.ctx, "alice", "wrong password", "") })
	}
	wg.Wait()
	checked := 0
	for _, err := range errs {
		if errors.Is(err, auth.ErrBadCredentials) {
			checked++
		} else {
			require.ErrorIs(t, err, auth.ErrRateLimited)
		}
	}
	require.LessOrEqual(t, checked, 5)
	var failures int
	require.NoError(t, tb.pool.QueryRow(tb.ctx, "SELECT count(*) FROM login_failures WHERE key = 'user:alice'").Scan(&failures))
	require.Equal(t, checked, failures, "the refused attempts left nothing behind")
	_, err := tb.store.Authenticate(tb.ctx, "alice", password, "")
	if checked < 5 {
		require.NoError(t, err)
	} else {
		require.ErrorIs(t, err, auth.ErrRateLimited)
	}
}

func TestAudit(t *testing.T) {
	t.Parallel()
	tb := setup(t)

	// In the caller's transaction: rolled back with it.
	err := pgx.BeginFunc(tb.ctx, tb.pool, func(tx pgx.Tx) error {
		require.NoError(t, tb.store.Audit(tb.ctx, tx, auth.AuditEntry{Actor: "alice", Action: "rules_changed", Object: "rules:2"}))
		return errors.New("rolled back")
	})
	require.EqualError(t, err, "rolled back")
	records, err := tb.store.AuditLog(tb.ctx, auth.AuditFilter{})
	require.NoError(t, err)
	require.Empty(t, records)

	// The actor defaults to the context's.
	require.NoError(t, tb.store.Audit(tb.ctx, nil, auth.AuditEntry{Action: "retention_purged", Detail: "3 documents"}))
	require.NoError(t, tb.store.Audit(auth.WithActor(tb.ctx, "cli:root"), tb.pool, auth.AuditEntry{Action: "user_added", Object: "user:x"}))
	require.Error(t, tb.store.Audit(tb.ctx, nil, auth.AuditEntry{Actor: "alice"}), "no action")
	// Text PostgreSQL would refuse is cleaned, not lost.
	require.NoError(t, tb.store.Audit(tb.ctx, nil, auth.AuditEntry{Actor: "alice", Action: "correspondent_saved", Detail: "a\x00b\xffc"}))
	records, err = tb.store.AuditLog(tb.ctx, auth.AuditFilter{})
	require.NoError(t, err)
	require.Len(t, records, 3)
	require.Equal(t, auth.AuditEntry{Actor: "alice", Action: "correspondent_saved", Detail: "ab\uFFFDc"}, records[0].AuditEntry)
	require.Equal(t, auth.AuditEntry{Actor: "cli:root", Action: "user_added", Object: "user:x"}, records[1].AuditEntry)
	require.Equal(t, auth.AuditEntry{Actor: "system", Action: "retention_purged", Detail: "3 documents"}, records[2].AuditEntry)
	require.WithinDuration(t, time.Now(), records[0].At, time.Minute)

	// Append-only.
	_, err = tb.pool.Exec(tb.ctx, "UPDATE audit_log SET actor = 'mallory'")
	require.ErrorContains(t, err, "audit_log is append-only")
	_, err = tb.pool.Exec(tb.ctx, "DELETE FROM audit_log")
	require.ErrorContains(t, err, "audit_log is append-only")
	_, err = tb.pool.Exec(tb.ctx, "TRUNCATE audit_log")
	require.ErrorContains(t, err, "audit_log is append-only")
}

func TestAuditLogPagination(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	for i := range 7 {
		actor := []string{"alice", "bob"}[i%2]
		require.NoError(t, tb.store.Audit(tb.ctx, nil, auth.AuditEntry{Actor: actor, Action: "delivery_approved",
			Object: fmt.Sprintf("delivery:%d", i)}))
	}
	require.NoError(t, tb.store.Audit(tb.ctx, nil, auth.AuditEntry{Actor: "alice", Action: "logout"}))

	// Pages of three, newest first, each after the last id of the previous.
	var objects []string
	var pages int
	f := auth.AuditFilter{Action: "delivery_approved", Limit: 3}
	for {
		page, err := tb.store.AuditLog(tb.ctx, f)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		pages++
		for i, r := range page {
			if i > 0 {
				require.Less(t, r.ID, page[i-1].ID)
			}
			objects = append(objects, r.Object)
		}
		f.BeforeID = page[len(page)-1].ID
	}
	require.Equal(t, 3, pages)
	require.Equal(t, []string{"delivery:6", "delivery:5", "delivery:4", "delivery:3", "delivery:2", "delivery:1", "delivery:0"}, objects)

	alice, err := tb.store.AuditLog(tb.ctx, auth.AuditFilter{Actor: "alice"})
	require.NoError(t, err)
	require.Len(t, alice, 5)
	require.Equal(t, "logout", alice[0].Action)
	both, err := tb.store.AuditLog(tb.ctx, auth.AuditFilter{Actor: "alice", Action: "delivery_approved", Limit: 2})
	require.NoError(t, err)
	require.Len(t, both, 2)
	require.Equal(t, "delivery:6", both[0].Object)
	require.Equal(t, "delivery:4", both[1].Object)
}
