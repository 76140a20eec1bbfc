package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/mssdispatch/mssdispatch/audit"
)

// ErrBadCredentials is returned by Authenticate for an unknown user, a wrong
// password or a disabled account alike.
var ErrBadCredentials = errors.New("wrong username or password")

// ErrRateLimited is wrapped by the *RateLimitError of Authenticate.
var ErrRateLimited = errors.New("too many failed logins")

// RateLimitError is returned by Authenticate when the client must wait
// before its next attempt (see Authenticate).
type RateLimitError struct {
	// RetryAfter is how long until an attempt is allowed again.
	RetryAfter time.Duration
}

// Error says when to retry.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v: retry in %s", ErrRateLimited, e.RetryAfter.Round(time.Second))
}

// Unwrap returns ErrRateLimited.
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// Authenticate checks a local account's password and returns the user.
//
// It returns ErrBadCredentials for an unknown user, a wrong password, an
// account without a local password or a disabled one, after the same hash
// work in every case. It returns a *RateLimitError (errors.Is
// ErrRateLimited), without checking the password, while the client must
// wait: logins are throttled per (username, clientIP) with growing delays,
// never by locking the account, so that an attacker cannot keep its user
// out (throttle.go):
//   - five failures of the pair within 24 hours cost nothing; after the
//     n-th, the next attempt waits 2^(n-5) seconds, at most 15 minutes;
//   - once the username has 20 failures within the hour from any address,
//     or the address 30 on any usernames, the pairs have no free failure:
//     each address gets one attempt, then 2 s, 4 s… (an address that has
//     not failed on the username still logs in at once);
//   - an address with 30 failures within the hour also waits 1 s, 2 s… up
//     to a minute between its attempts, except on the accounts that logged
//     in from it within 90 days.
//
// clientIP may be empty (then the pair is the username). Failures are
// recorded in the database, so that the limits hold across instances, and
// in the audit log ("login_failed", the username only); a success records
// last_login_at, the address and the audit entry "login", clears the pair's
// failures and rehashes the password when the store's hash parameters
// changed.
func (s *Store) Authenticate(ctx context.Context, username, password, clientIP string) (User, error) {
	name := normalizeUsername(username)
	validName := validateUsername(name) == nil
	keys := loginKeys{address: addressKey(clientIP)}
	if validName {
		keys.account = name
	}

	// The attempt is counted before the password is checked, so that
	// concurrent attempts cannot all pass the limit.
	ids, err := s.recordAttempt(ctx, keys)
	if err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	facts, err := s.loginFacts(ctx, keys, ids)
	if err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	if wait := loginWait(facts); wait > 0 {
		// A refused attempt is not a failure: it neither extends the wait
		// nor counts towards a ceiling.
		if err := s.forgetAttempts(ctx, ids, ""); err != nil {
			return User{}, fmt.Errorf("authenticate: %w", err)
		}
		return User{}, &RateLimitError{RetryAfter: max(wait, time.Second)}
	}

	var u User
	var stored *string
	found := false
	if validName {
		if u, stored, found, err = s.loginUser(ctx, name); err != nil {
			return User{}, fmt.Errorf("authenticate: %w", err)
		}
	}
	h, reason := s.dummy, ""
	switch {
	case !found:
		reason = "utilisateur inconnu"
	case stored == nil:
		reason = "pas de mot de passe local (" + u.Source + ")"
	default:
		if h, err = parseHash(*stored); err != nil {
			h, reason = s.dummy, "empreinte du mot de passe illisible"
		}
	}
	pw := password
	if len(pw) > maxPasswordBytes {
		pw = pw[:maxPasswordBytes]
		if reason == "" {
			reason = "mot de passe trop long"
		}
	}
	ok := false
	if err := s.hashWork(ctx, func() { ok = h.verify(pw) }); err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	switch {
	case reason != "":
	case !ok:
		reason = "mot de passe erroné"
	case u.Disabled:
		reason = "compte désactivé"
	}

	if reason != "" {
		actor, object := "(identifiant invalide)", ""
		if validName {
			actor, object = name, "user:"+name
		}
		detail := reason
		if d := ipDetail(clientIP); d != "" {
			detail += ", " + d
		}
		if err := s.audit(ctx, nil, audit.Entry{Actor: actor, Action: "login_failed", Object: object, Detail: detail}); err != nil {
			return User{}, fmt.Errorf("authenticate: %w", err)
		}
		if _, err := pruneFailures(ctx, s.pool, pairWindow); err != nil {
			return User{}, fmt.Errorf("authenticate: %w", err)
		}
		return User{}, ErrBadCredentials
	}

	newHash := ""
	if h.params != s.params {
		if newHash, err = s.hash(ctx, password); err != nil {
			return User{}, fmt.Errorf("authenticate: rehash: %w", err)
		}
	}
	if err := s.forgetAttempts(ctx, ids, keys.pair()); err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	if err := s.loginSucceeded(ctx, &u, newHash, clientIP, keys.address); err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	return u, nil
}

// loginKeys name the counters of a login attempt in login_failures.
type loginKeys struct {
	// account is the normalised username, empty when it is not a valid one.
	account string
	// address is the client's addressKey, empty when unknown.
	address string
}

// pair is the key of the failures of the account from the address.
func (k loginKeys) pair() string { return "pair:" + k.account + "|" + k.address }

// accountKey is the key of the account's failures, empty without one.
func (k loginKeys) accountKey() string {
	if k.account == "" {
		return ""
	}
	return "user:" + k.account
}

// addressKey is the key of the address's failures, empty without one.
func (k loginKeys) addressKey() string {
	if k.address == "" {
		return ""
	}
	return "ip:" + k.address
}

// all returns the keys an attempt is recorded under.
func (k loginKeys) all() []string {
	keys := []string{k.pair()}
	for _, key := range []string{k.accountKey(), k.addressKey()} {
		if key != "" {
			keys = append(keys, key)
		}
	}
	return keys
}

// addressKey is the rate-limit key of a client address: the address, or its
// /64 for IPv6 (what one subscriber gets); text that is not an address is
// kept as is, bounded.
func addressKey(clientIP string) string {
	a, err := netip.ParseAddr(clientIP)
	if err != nil {
		return clean(clientIP, 64)
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
