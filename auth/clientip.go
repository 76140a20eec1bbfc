package auth

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIPKey is the context key of the client address ClientAddress found.
type clientIPKey struct{}

// ClientAddress returns middleware that finds the address of each request's
// client, for ClientIP: the host of r.RemoteAddr, unless it is in trusted
// (the reverse proxies in front of the service); then it is the right-most
// address of X-Forwarded-For that is not itself a trusted proxy (a proxy
// appends the address it got the request from, so the addresses on its
// left are the client's word, which anyone can forge). A request from a
// trusted proxy without a usable X-Forwarded-For keeps the proxy's address.
// With trusted empty, X-Forwarded-For is never read.
func ClientAddress(trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ip := clientAddr(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), trusted)
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey{}, ip)))
		})
	}
}

// ClientIP returns the address of r's client: the one ClientAddress found,
// or without that middleware the host of r.RemoteAddr.
func ClientIP(r *http.Request) string {
	if ip, ok := r.Context().Value(clientIPKey{}).(string); ok {
		return ip
	}
	return remoteHost(r.RemoteAddr)
}

// remoteHost returns the host of a RemoteAddr (host:port), or it whole.
func remoteHost(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// clientAddr returns the client's address of a request from remoteAddr
// carrying the X-Forwarded-For header values xff (see ClientAddress).
func clientAddr(remoteAddr string, xff []string, trusted []netip.Prefix) string {
	host := remoteHost(remoteAddr)
	peer, err := netip.ParseAddr(host)
	if err != nil || !isTrusted(peer, trusted) {
		return host
	}
	var hops []string
	for _, v := range xff {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break // garbage where a proxy should have written an address
		}
		client = a
		if !isTrusted(a, trusted) {
			break
		}
	}
	return client.String()
}

// parseHop reads one address of X-Forwarded-For: an IP, possibly with a port
// or in brackets.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// isTrusted reports whether a is in one of the prefixes.
func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap().WithZone("")
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
