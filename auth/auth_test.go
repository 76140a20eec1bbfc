package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/audit"
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
	records, err := audit.NewLog(tb.pool).Read(tb.ctx, audit.Filter{Limit: 500})
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
		auth.RoleSecretary: {true, true, false, false, false},
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
	granted := auth.User{Role: auth.RoleSecretary, Grants: []string{auth.GrantCorrespondents}}
	require.True(t, granted.Can(auth.PermCorrespondents), "a secretary an admin trusts with the local directory")
	require.True(t, auth.User{Role: auth.RoleCME, Grants: []string{auth.GrantCorrespondents}}.Can(auth.PermCorrespondents))
	granted.Disabled = true
	require.False(t, granted.Can(auth.PermCorrespondents))
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
		"system user_added user:alice.martin rôle secretary, services cardiologie, pneumologie",
		"system user_added user:dr-cme rôle cme, services tous",
		"system user_added user:bob rôle cme, services tous",
		"system user_added user:carole rôle cme, services tous",
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
		"system user_added user:alice rôle secretary, services cardiologie",
		"system user_added user:bob rôle cme, services tous",
		"alice login user:alice depuis 192.0.2.7",
		"alice login_failed user:alice mot de passe erroné, depuis 192.0.2.7",
		"nobody login_failed user:nobody utilisateur inconnu, depuis 192.0.2.7",
		"(identifiant invalide) login_failed  utilisateur inconnu",
		"alice login_failed user:alice mot de passe erroné",
		"system user_disabled user:bob ",
		"bob login_failed user:bob compte désactivé, depuis 2001:db8::1",
		"system user_enabled user:bob ",
		"bob login user:bob depuis 2001:db8::1",
		"psc-user login_failed user:psc-user pas de mot de passe local (https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet)",
		"system password_changed user:alice ",
		"alice login_failed user:alice mot de passe erroné",
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

// wrong is a password no account has.
const wrong = "mot de passe erroné"

// elapse makes the recorded login failures d older, as if d had passed.
func (tb *testBundle) elapse(t *testing.T, d time.Duration) {
	t.Helper()
	_, err := tb.pool.Exec(tb.ctx, "UPDATE login_failures SET at = at - make_interval(secs => $1)", d.Seconds())
	require.NoError(t, err)
}

// retryAfter returns the wait of a refused attempt, failing t for any other error.
func retryAfter(t *testing.T, err error) time.Duration {
	t.Helper()
	require.ErrorIs(t, err, auth.ErrRateLimited)
	rle, ok := errors.AsType[*auth.RateLimitError](err)
	require.True(t, ok)
	return rle.RetryAfter
}

// hammer makes attempt as fast as the throttle allows for the simulated
// duration d (the failures are aged by each wait) and returns how many
// attempts were checked, and the waits, in order.
func (tb *testBundle) hammer(t *testing.T, d time.Duration, attempt func(i int) error) (checked int, waits []time.Duration) {
	t.Helper()
	var elapsed time.Duration
	for i := 0; elapsed < d; i++ {
		err := attempt(i)
		if errors.Is(err, auth.ErrRateLimited) {
			wait := (retryAfter(t, err) + time.Second - 1).Truncate(time.Second)
			waits = append(waits, wait)
			tb.elapse(t, wait)
			elapsed += wait
			continue
		}
		require.ErrorIs(t, err, auth.ErrBadCredentials, i)
		checked++
	}
	return checked, waits
}

// TestLoginThrottleLegitimateUser is the defect of issue #19, item 5: five
// wrong passwords locked the account for 15 minutes from every address, and
// twenty failures from one address (every user behind the reverse proxy)
// locked everyone out. An attacker now never keeps a user out.
func TestLoginThrottleLegitimateUser(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addUser(t, "alice", auth.RoleSecretary)
	tb.addUser(t, "bob", auth.RoleSecretary)

	// Bob logged in from the shared address before.
	_, err := tb.store.Authenticate(tb.ctx, "bob", password, "192.0.2.1")
	require.NoError(t, err)

	// An attacker hammers alice's account from one address: five free
	// failures, then refused without a check until the pair's delay passes
	// (1 s, doubling); on a loaded machine the delay may pass during the
	// loop, and that attempt is checked (and refused) again.
	limited := 0
	for i := range 50 {
		_, err := tb.store.Authenticate(tb.ctx, "alice", wrong, "203.0.113.66")
		switch {
		case i < 5:
			require.ErrorIs(t, err, auth.ErrBadCredentials, i)
		case i == 5:
			require.ErrorIs(t, err, auth.ErrRateLimited, i)
			limited++
		case errors.Is(err, auth.ErrRateLimited):
			limited++
		default:
			require.ErrorIs(t, err, auth.ErrBadCredentials, i)
		}
	}
	require.Greater(t, limited, 25, "most of the attacker's attempts are not even checked")
	// Alice logs in from her workstation at once.
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "198.51.100.7")
	require.NoError(t, err)

	// Someone at the shared address tries forty usernames: bob, who logs
	// in from there, still does at once.
	for i := range 40 {
		_, err := tb.store.Authenticate(tb.ctx, fmt.Sprintf("user%d", i), wrong, "192.0.2.1")
		require.Error(t, err)
	}
	_, err = tb.store.Authenticate(tb.ctx, "bob", password, "192.0.2.1")
	require.NoError(t, err)
}

// TestLoginThrottleOneAddress checks the growing delays of one account from
// one address, and how few attempts an attacker gets in a day.
func TestLoginThrottleOneAddress(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addUser(t, "alice", auth.RoleSecretary)
	tb.addUser(t, "bob", auth.RoleSecretary)
	const attacker = "203.0.113.9"

	for i := range 5 {
		_, err := tb.store.Authenticate(tb.ctx, "alice", wrong, attacker)
		require.ErrorIs(t, err, auth.ErrBadCredentials, i)
	}
	// The sixth waits a second, even with the right password, which is not
	// checked; refused attempts neither count nor reach the audit log.
	for range 3 {
		_, err := tb.store.Authenticate(tb.ctx, "ALICE", password, attacker)
		require.InDelta(t, time.Second, retryAfter(t, err), float64(500*time.Millisecond))
		require.Contains(t, err.Error(), "too many failed logins: retry in 1s")
	}
	var failures int
	require.NoError(t, tb.pool.QueryRow(tb.ctx, "SELECT count(*) FROM login_failures WHERE key = 'pair:alice|203.0.113.9'").Scan(&failures))
	require.Equal(t, 5, failures)
	records, err := audit.NewLog(tb.pool).Read(tb.ctx, audit.Filter{Action: "login_failed"})
	require.NoError(t, err)
	require.Len(t, records, 5)

	// Another account from the same address is not delayed.
	_, err = tb.store.Authenticate(tb.ctx, "bob", password, attacker)
	require.NoError(t, err)

	// A day of attempts as fast as allowed: the delays double up to 15
	// minutes, and the attacker gets no more than 5 + 10 + 96 tries.
	checked, waits := tb.hammer(t, 24*time.Hour, func(int) error {
		_, err := tb.store.Authenticate(tb.ctx, "alice", wrong, attacker)
		return err
	})
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second},
		waits[:5], "the first waits, rounded up to the second")
	require.Equal(t, 15*time.Minute, waits[len(waits)-1])
	t.Logf("checked %d, waits %d", checked, len(waits))
	require.LessOrEqual(t, checked, 5+10+96-5, "the five free failures were spent before")
	require.Greater(t, checked, 90, "a slow attacker is slowed, not locked out")

	// The right password, once the wait is over (hammer ends on one),
	// logs in and clears the pair's failures.
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, attacker)
	require.NoError(t, err)
	require.NoError(t, tb.pool.QueryRow(tb.ctx, "SELECT count(*) FROM login_failures WHERE key = 'pair:alice|203.0.113.9'").Scan(&failures))
	require.Zero(t, failures)

	// Unknown usernames are throttled alike (the throttle does not tell
	// which exist), and so are invalid ones.
	for _, name := range []string{"nobody", "not a username"} {
		for range 5 {
			_, err = tb.store.Authenticate(tb.ctx, name, password, "192.0.2.50")
			require.ErrorIs(t, err, auth.ErrBadCredentials)
		}
		_, err = tb.store.Authenticate(tb.ctx, name, password, "192.0.2.50")
		require.ErrorIs(t, err, auth.ErrRateLimited)
	}

	// A new password set by an administrator is tried at once.
	for range 6 {
		_, _ = tb.store.Authenticate(tb.ctx, "bob", wrong, "192.0.2.60")
	}
	_, err = tb.store.Authenticate(tb.ctx, "bob", password, "192.0.2.60")
	require.ErrorIs(t, err, auth.ErrRateLimited)
	require.NoError(t, tb.store.SetPassword(tb.ctx, "bob", "a brand new passphrase"))
	_, err = tb.store.Authenticate(tb.ctx, "bob", "a brand new passphrase", "192.0.2.60")
	require.NoError(t, err)
}

// TestLoginThrottleManyAddresses checks an attack on one account from many
// addresses: once the account has 20 failures within the hour, each address
// gets one attempt, then waits; the right password from another address
// still logs in at once.
func TestLoginThrottleManyAddresses(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addUser(t, "alice", auth.RoleSecretary)

	const addresses = 60
	checked := 0
	for a := range addresses {
		for range 3 {
			_, err := tb.store.Authenticate(tb.ctx, "alice", wrong, fmt.Sprintf("203.0.113.%d", a+1))
			if errors.Is(err, auth.ErrBadCredentials) {
				checked++
			} else {
				require.ErrorIs(t, err, auth.ErrRateLimited)
			}
		}
	}
	require.Equal(t, 20+(addresses-7), checked, "3 tries for 6 addresses, 2 for the 7th, then one each")

	// Alice from her workstation: at once; after a typo, two seconds later.
	_, err := tb.store.Authenticate(tb.ctx, "alice", password, "198.51.100.7")
	require.NoError(t, err)
	_, err = tb.store.Authenticate(tb.ctx, "alice", wrong, "198.51.100.8")
	require.ErrorIs(t, err, auth.ErrBadCredentials)
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "198.51.100.8")
	require.InDelta(t, 2*time.Second, retryAfter(t, err), float64(500*time.Millisecond))
	tb.elapse(t, 2*time.Second)
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "198.51.100.8")
	require.NoError(t, err)

	// An hour later the account is no longer attacked: five free failures again.
	tb.elapse(t, time.Hour)
	for range 5 {
		_, err := tb.store.Authenticate(tb.ctx, "alice", wrong, "198.51.100.9")
		require.ErrorIs(t, err, auth.ErrBadCredentials)
	}
}

// TestLoginThrottleSpray checks one address trying many accounts: after 30
// failures within the hour it waits up to a minute between attempts,
// except on the accounts that logged in from it before.
func TestLoginThrottleSpray(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addUser(t, "alice", auth.RoleSecretary)
	tb.addUser(t, "bob", auth.RoleSecretary)
	_, err := tb.store.Authenticate(tb.ctx, "bob", password, "203.0.113.9")
	require.NoError(t, err)

	checked, waits := tb.hammer(t, time.Hour, func(i int) error {
		_, err := tb.store.Authenticate(tb.ctx, fmt.Sprintf("user%d", i), wrong, "203.0.113.9")
		return err
	})
	require.Equal(t, time.Minute, waits[len(waits)-1])
	t.Logf("checked %d, waits %d", checked, len(waits))
	require.LessOrEqual(t, checked, 30+6+60, "30 free, 6 within the first minute, then one a minute")
	_, err = tb.store.Authenticate(tb.ctx, "user-last", wrong, "203.0.113.9")
	require.ErrorIs(t, err, auth.ErrBadCredentials, "hammer ends when the wait is over")

	// Bob, who logs in from there, still does; alice, who never did, waits
	// (also from the address written as IPv6); from elsewhere she does not.
	_, err = tb.store.Authenticate(tb.ctx, "bob", password, "203.0.113.9")
	require.NoError(t, err)
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "203.0.113.9")
	require.ErrorIs(t, err, auth.ErrRateLimited)
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "::ffff:203.0.113.9")
	require.ErrorIs(t, err, auth.ErrRateLimited, "the same address mapped in IPv6")
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "203.0.113.10")
	require.NoError(t, err)

	// An IPv6 client counts as its /64.
	for i := range 30 {
		_, err := tb.store.Authenticate(tb.ctx, fmt.Sprintf("user%d", i), wrong, fmt.Sprintf("2001:db8:1:2::%x", i+1))
		require.ErrorIs(t, err, auth.ErrBadCredentials, i)
	}
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "2001:db8:1:2:ffff::1")
	require.ErrorIs(t, err, auth.ErrRateLimited)
	_, err = tb.store.Authenticate(tb.ctx, "alice", password, "2001:db8:1:3::1")
	require.NoError(t, err)
}

func TestLoginThrottleConcurrent(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addUser(t, "alice", auth.RoleSecretary)

	// Thirty wrong passwords at once from one address: the attempts are
	// counted before the passwords are checked, so no more than five are.
	var wg sync.WaitGroup
	errs := make([]error, 30)
	for i := range errs {
		wg.Go(func() { _, errs[i] = tb.store.Authenticate(tb.ctx, "alice", wrong, "192.0.2.7") })
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
	require.NoError(t, tb.pool.QueryRow(tb.ctx, "SELECT count(*) FROM login_failures WHERE key = 'pair:alice|192.0.2.7'").Scan(&failures))
	require.Equal(t, checked, failures, "the refused attempts left nothing behind")
	_, err := tb.store.Authenticate(tb.ctx, "alice", password, "192.0.2.7")
	if checked < 5 {
		require.NoError(t, err)
	} else {
		require.ErrorIs(t, err, auth.ErrRateLimited)
	}
}

// TestAuditActor: the store's entries are in the name of the context's
// actor (the command line's), else of the user of the request (see the
// web tests), else "system".
func TestAuditActor(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	_, err := tb.store.AddUser(auth.WithActor(tb.ctx, "cli:root"), auth.NewUser{Username: "alice", Password: password, Role: auth.RoleSecretary})
	require.NoError(t, err)
	require.NoError(t, tb.store.SetDisabled(tb.ctx, "alice", true))
	require.Equal(t, []string{"cli:root user_added user:alice rôle secretary, services tous", "system user_disabled user:alice "},
		tb.auditActions(t))
}
