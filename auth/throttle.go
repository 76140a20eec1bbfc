package auth

import (
	"sync"
	"time"
)

// This file decides how long a client that keeps failing must wait: the
// logins (facts from the database, decided by loginWait) and the API's
// bearer token (AddressLimiter, in memory).

// Backoff is a delay that grows with repeated failures: the first Free
// failures cost nothing; after the n-th failure (n ≥ Free) the next attempt
// waits Base·2^(n−Free) from that failure, at most Max.
type Backoff struct {
	// Free is how many failures are allowed without delay.
	Free int
	// Base is the first delay; Max the longest.
	Base, Max time.Duration
}

// Delay returns how long after the last of failures the next attempt must wait.
func (b Backoff) Delay(failures int) time.Duration {
	if failures <= 0 || failures < b.Free || b.Base <= 0 {
		return 0
	}
	d := b.Base
	for range failures - b.Free {
		if d >= b.Max {
			break
		}
		d *= 2
	}
	return min(d, b.Max)
}

// The login throttle. Failures are counted per (account, client address),
// the "pair", and also per account and per address to notice an attack from
// many addresses on one account, or from one address on many accounts. An
// account is never locked: an address that has not failed on it is never
// delayed by what other addresses did, so its user logs in from her own
// workstation while an attacker hammers her account from elsewhere.
var (
	// pairBackoff: five failures of a pair within pairWindow cost nothing,
	// then 1 s, 2 s, 4 s… up to 15 minutes between attempts: at most about
	// 110 attempts a day for one account from one address (5 free, 10 in
	// the next 17 minutes, then 4 an hour).
	pairBackoff = Backoff{Free: 5, Base: time.Second, Max: 15 * time.Minute}
	// attackedBackoff replaces pairBackoff while the account or the address
	// is over its ceiling: no free failure, so each address gets one attempt,
	// then 2 s, 4 s… up to 15 minutes.
	attackedBackoff = Backoff{Free: 0, Base: time.Second, Max: 15 * time.Minute}
	// addressBackoff: once an address has failed addressCeiling times within
	// ceilingWindow on any accounts, its attempts wait 1 s, 2 s… up to a
	// minute after its last failure (about 60 attempts an hour), except on
	// the accounts that logged in from it within knownFor.
	addressBackoff = Backoff{Free: addressCeiling, Base: time.Second, Max: time.Minute}
)

const (
	// pairWindow is how long a failure counts for its pair (and is kept).
	pairWindow = 24 * time.Hour
	// ceilingWindow is how long a failure counts for its account's and its
	// address's ceilings.
	ceilingWindow = time.Hour
	// accountCeiling is how many failures of an account from every address
	// within ceilingWindow make it attacked.
	accountCeiling = 20
	// addressCeiling is how many failures from an address on every account
	// within ceilingWindow make it an attacker.
	addressCeiling = 30
	// knownFor is how long a successful login of an account from an address
	// exempts that pair from the address's delay.
	knownFor = 90 * 24 * time.Hour
)

// loginFacts are what decides whether a login attempt is checked: the
// failures recorded before it.
type loginFacts struct {
	// pair counts the failures of the account from the address within
	// pairWindow, the last one sincePair ago.
	pair      int
	sincePair time.Duration
	// account counts the failures of the account from any address, address
	// those from the address on any account, within ceilingWindow; the last
	// of the address's was sinceAddress ago.
	account, address int
	sinceAddress     time.Duration
	// known: the account logged in from this address within knownFor.
	known bool
}

// loginWait returns how long the attempt f describes must wait; zero means
// that its password is checked now.
func loginWait(f loginFacts) time.Duration {
	pb := pairBackoff
	if f.account >= accountCeiling || f.address >= addressCeiling {
		pb = attackedBackoff
	}
	wait := pb.Delay(f.pair) - f.sincePair
	if !f.known {
		wait = max(wait, addressBackoff.Delay(f.address)-f.sinceAddress)
	}
	return max(wait, 0)
}

// LimiterConfig configures an AddressLimiter.
type LimiterConfig struct {
	// Backoff is the delay after repeated failures of an address. Defaults
	// to 10 free failures, then 1 s doubling up to a minute.
	Backoff Backoff
	// Forget is how long after its last failure an address starts afresh.
	// Defaults to an hour.
	Forget time.Duration
	// MaxAddresses bounds the addresses remembered (the memory used);
	// beyond, the one whose last failure is oldest is forgotten. Defaults
	// to 10,000.
	MaxAddresses int
}

// AddressLimiter slows the client addresses (an IPv6 /64 counts as one)
// that keep failing to authenticate, such as wrong bearer tokens: in memory,
// so each instance limits on its own.
type AddressLimiter struct {
	cfg LimiterConfig
	now func() time.Time

	mu    sync.Mutex
	addrs map[string]*addressFailures
}

// addressFailures are the failures of one address.
type addressFailures struct {
	n    int
	last time.Time
}

// NewAddressLimiter returns a limiter with the defaults of cfg filled in.
func NewAddressLimiter(cfg LimiterConfig) *AddressLimiter {
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = Backoff{Free: 10, Base: time.Second, Max: time.Minute}
	}
	if cfg.Forget <= 0 {
		cfg.Forget = time.Hour
	}
	if cfg.MaxAddresses <= 0 {
		cfg.MaxAddresses = 10_000
	}
	return &AddressLimiter{cfg: cfg, now: time.Now, addrs: map[string]*addressFailures{}}
}

// Attempt asks whether the client at addr may try now. When it may (zero
// returned), the attempt counts as a failure until Succeeded says otherwise,
// so that concurrent attempts cannot all pass; else it returns how long the
// client must wait, and the refused attempt does not count.
func (l *AddressLimiter) Attempt(addr string) time.Duration {
	key, now := addressKey(addr), l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.addrs[key]
	if f != nil && now.Sub(f.last) >= l.cfg.Forget {
		f.n = 0
	}
	if f != nil {
		if wait := l.cfg.Backoff.Delay(f.n) - now.Sub(f.last); wait > 0 {
			return wait
		}
	}
	if f == nil {
		l.makeRoom(now)
		f = &addressFailures{}
		l.addrs[key] = f
	}
	f.n++
	f.last = now
	return 0
}

// Succeeded forgets the failures of addr: its attempt was right.
func (l *AddressLimiter) Succeeded(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.addrs, addressKey(addr))
}

// makeRoom forgets the stale addresses when the map is full, and the one
// whose last failure is oldest if none is.
func (l *AddressLimiter) makeRoom(now time.Time) {
	if len(l.addrs) < l.cfg.MaxAddresses {
		return
	}
	oldest := ""
	for k, f := range l.addrs {
		if now.Sub(f.last) >= l.cfg.Forget {
			delete(l.addrs, k)
		} else if oldest == "" || f.last.Before(l.addrs[oldest].last) {
			oldest = k
		}
	}
	if len(l.addrs) >= l.cfg.MaxAddresses && oldest != "" {
		delete(l.addrs, oldest)
	}
}
