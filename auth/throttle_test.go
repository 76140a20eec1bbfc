package auth

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	b := Backoff{Free: 5, Base: time.Second, Max: 15 * time.Minute}
	for failures, want := range map[int]time.Duration{
		0: 0, 4: 0, 5: time.Second, 6: 2 * time.Second, 14: 512 * time.Second, 15: 15 * time.Minute,
		1000: 15 * time.Minute, 1 << 40: 15 * time.Minute,
	} {
		require.Equal(t, want, b.Delay(failures), failures)
	}
	require.Equal(t, 2*time.Second, Backoff{Base: time.Second, Max: time.Minute}.Delay(1), "no free failure")
	require.Zero(t, Backoff{}.Delay(10))
}

func TestLoginWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    loginFacts
		want time.Duration
	}{
		{"first attempt", loginFacts{}, 0},
		{"four failures", loginFacts{pair: 4}, 0},
		{"five failures, just now", loginFacts{pair: 5}, time.Second},
		{"five failures, a while ago", loginFacts{pair: 5, sincePair: 3 * time.Second}, 0},
		{"ten failures", loginFacts{pair: 10, sincePair: 2 * time.Second}, 30 * time.Second},
		{"capped", loginFacts{pair: 80}, 15 * time.Minute},
		{"attacked account, fresh address", loginFacts{account: 500}, 0},
		{"attacked account, one failure", loginFacts{pair: 1, account: 20}, 2 * time.Second},
		{"account under its ceiling", loginFacts{pair: 1, account: 19}, 0},
		{"attacking address", loginFacts{address: 30}, time.Second},
		{"attacking address, a while ago", loginFacts{address: 30, sinceAddress: time.Second}, 0},
		{"attacking address, capped", loginFacts{address: 300}, time.Minute},
		{"attacking address, known account", loginFacts{address: 300, known: true}, 0},
		{"attacking address, known account, failed once", loginFacts{pair: 1, address: 300, known: true}, 2 * time.Second},
		{"the longer wait", loginFacts{pair: 20, sincePair: time.Minute, address: 300}, 14 * time.Minute},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, loginWait(tt.f), tt.name)
	}
}

func TestAddressLimiter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	l := NewAddressLimiter(LimiterConfig{MaxAddresses: 3})
	l.now = func() time.Time { return now }

	for i := range 10 {
		require.Zero(t, l.Attempt("192.0.2.1"), i)
	}
	require.Equal(t, time.Second, l.Attempt("192.0.2.1"), "ten free failures")
	require.Equal(t, time.Second, l.Attempt("::ffff:192.0.2.1"), "refused attempts do not count")
	require.Zero(t, l.Attempt("192.0.2.2"), "another address")
	now = now.Add(time.Second)
	require.Zero(t, l.Attempt("192.0.2.1"))
	require.Equal(t, 2*time.Second, l.Attempt("192.0.2.1"))
	now = now.Add(2 * time.Second)
	require.Zero(t, l.Attempt("192.0.2.1"))
	l.Succeeded("192.0.2.1")
	require.Zero(t, l.Attempt("192.0.2.1"), "a success forgets the failures")

	// At most a minute, forgotten an hour after the last failure.
	for i := range 30 {
		now = now.Add(time.Minute)
		require.Zero(t, l.Attempt("2001:db8::1"), i)
	}
	require.Equal(t, time.Minute, l.Attempt("2001:db8::2"), "the same /64")
	now = now.Add(time.Hour)
	require.Zero(t, l.Attempt("2001:db8::1"))

	// The memory is bounded: the stale addresses go first, then the one
	// whose last failure is oldest.
	require.Len(t, l.addrs, 3)
	now = now.Add(time.Second)
	require.Zero(t, l.Attempt("192.0.2.9"))
	require.Equal(t, []string{"192.0.2.9", "2001:db8::/64"}, slices.Sorted(maps.Keys(l.addrs)))
	now = now.Add(time.Second)
	require.Zero(t, l.Attempt("192.0.2.10"))
	now = now.Add(time.Second)
	require.Zero(t, l.Attempt("192.0.2.11"))
	require.Equal(t, []string{"192.0.2.10", "192.0.2.11", "192.0.2.9"}, slices.Sorted(maps.Keys(l.addrs)))
}

func TestAddressLimiterConcurrent(t *testing.T) {
	t.Parallel()
	l := NewAddressLimiter(LimiterConfig{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for range 100 {
		wg.Go(func() {
			if l.Attempt("198.51.100.1") == 0 {
				mu.Lock()
				passed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Equal(t, 10, passed)
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"192.0.2.1:4000", nil, proxies, "192.0.2.1"},
		{"192.0.2.1:4000", []string{"198.51.100.7"}, proxies, "192.0.2.1"},
		{"127.0.0.1:4000", []string{"198.51.100.7"}, nil, "127.0.0.1"},
		{"127.0.0.1:4000", []string{"198.51.100.7"}, proxies, "198.51.100.7"},
		{"127.0.0.1:4000", nil, proxies, "127.0.0.1"},
		{"127.0.0.1:4000", []string{""}, proxies, "127.0.0.1"},
		{"127.0.0.1:4000", []string{"1.2.3.4, 198.51.100.7"}, proxies, "198.51.100.7"},
		{"127.0.0.1:4000", []string{"1.2.3.4", "198.51.100.7, 10.1.2.3"}, proxies, "198.51.100.7"},
		{"127.0.0.1:4000", []string{"198.51.100.7, 10.1.2.3, 127.0.0.1"}, proxies, "198.51.100.7"},
		{"127.0.0.1:4000", []string{"10.9.9.9, 10.1.2.3"}, proxies, "10.9.9.9"},
		{"127.0.0.1:4000", []string{"forged, 198.51.100.7"}, proxies, "198.51.100.7"},
		{"127.0.0.1:4000", []string{"198.51.100.7, garbage"}, proxies, "127.0.0.1"},
		{"127.0.0.1:4000", []string{"198.51.100.7:5555"}, proxies, "198.51.100.7"},
		{"127.0.0.1:4000", []string{"[2001:db8::7]:443"}, proxies, "2001:db8::7"},
		{"127.0.0.1:4000", []string{"::ffff:198.51.100.7"}, proxies, "198.51.100.7"},
		{"[::ffff:127.0.0.1]:4000", []string{"198.51.100.7"}, proxies, "198.51.100.7"},
		{"[2001:db8:ffff::1]:4000", []string{"2001:db8::7"}, proxies, "2001:db8::7"},
		{"[2001:db8:fffe::1]:4000", []string{"2001:db8::7"}, proxies, "2001:db8:fffe::1"},
		{"pipe", []string{"198.51.100.7"}, proxies, "pipe"},
	}
	for _, tt := range tests {
		got := clientAddr(tt.remote, tt.xff, tt.trusted)
		require.Equal(t, tt.want, got, fmt.Sprintf("%s %q %d proxies", tt.remote, tt.xff, len(tt.trusted)))
	}
}
