package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// ErrBadCredentials is returned by Authenticate for an unknown user, a wrong
// password or a disabled account alike.
var ErrBadCredentials = errors.New("wrong username or password")

// ErrRateLimited is wrapped by the *RateLimitError of Authenticate.
var ErrRateLimited = errors.New("too many failed logins")

// RateLimitError is returned by Authenticate when too many logins failed
// recently for the username or the client's address.
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

// The rate limit of logins: at most this many failures within failureWindow
// per username and per client address (an IPv6 /64).
const (
	failureWindow   = 15 * time.Minute
	maxUserFailures = 5
	maxIPFailures   = 20
)

// Authenticate checks a local account's password and returns the user.
//
// It returns ErrBadCredentials for an unknown user, a wrong password, an
// account without a local password or a disabled one, after the same hash
// work in every case, and a *RateLimitError (errors.Is ErrRateLimited) without
// checking the password when 5 logins already failed for this username, or
// 20 from clientIP, in the last 15 minutes. clientIP may be empty (no limit by
// address). Failures are recorded in the database, so that the limit holds
// across instances, and in the audit log ("login_failed", the username only);
// a success records last_login_at and the audit entry "login", clears the
// username's failures and rehashes the password when the store's hash
// parameters changed.
func (s *Store) Authenticate(ctx context.Context, username, password, clientIP string) (User, error) {
	name := normalizeUsername(username)
	validName := validateUsername(name) == nil
	ip := addressKey(clientIP)
	var keys []string
	limits := map[string]int{}
	if validName {
		keys = append(keys, "user:"+name)
		limits["user:"+name] = maxUserFailures
	}
	if ip != "" {
		keys = append(keys, "ip:"+ip)
		limits["ip:"+ip] = maxIPFailures
	}

	// The attempt is counted before the password is checked, so that
	// concurrent attempts cannot all pass the limit.
	ids, err := s.recordAttempts(ctx, keys)
	if err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	counts, err := s.failureCounts(ctx, keys, failureWindow)
	if err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	var wait time.Duration
	limited := false
	for _, key := range keys {
		if counts[key] > limits[key] {
			limited = true
		}
	}
	if limited {
		// A refused attempt is not a failure: the limit lifts 15 minutes
		// after the failures, however many refused attempts follow.
		if err := s.forgetAttempts(ctx, ids, ""); err != nil {
			return User{}, fmt.Errorf("authenticate: %w", err)
		}
		for _, key := range keys {
			d, err := s.retryAfter(ctx, key, limits[key], failureWindow)
			if err != nil {
				return User{}, fmt.Errorf("authenticate: %w", err)
			}
			wait = max(wait, d)
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
		reason = "unknown user"
	case stored == nil:
		reason = "no local password (" + u.Source + ")"
	default:
		if h, err = parseHash(*stored); err != nil {
			h, reason = s.dummy, "unreadable password hash"
		}
	}
	pw := password
	if len(pw) > maxPasswordBytes {
		pw = pw[:maxPasswordBytes]
		if reason == "" {
			reason = "password too long"
		}
	}
	ok := false
	if err := s.hashWork(ctx, func() { ok = h.verify(pw) }); err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	switch {
	case reason != "":
	case !ok:
		reason = "wrong password"
	case u.Disabled:
		reason = "account disabled"
	}

	if reason != "" {
		actor, object := "(invalid username)", ""
		if validName {
			actor, object = name, "user:"+name
		}
		detail := reason
		if d := ipDetail(clientIP); d != "" {
			detail += ", " + d
		}
		if err := s.Audit(ctx, nil, AuditEntry{Actor: actor, Action: "login_failed", Object: object, Detail: detail}); err != nil {
			return User{}, fmt.Errorf("authenticate: %w", err)
		}
		if _, err := pruneFailures(ctx, s.pool, failureWindow); err != nil {
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
	if err := s.forgetAttempts(ctx, ids, "user:"+name); err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	if err := s.loginSucceeded(ctx, &u, newHash, clientIP); err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	return u, nil
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
