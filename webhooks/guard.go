package webhooks

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"taskhub/tasks"
)

// MaxURL bounds an endpoint's URL, in bytes.
const MaxURL = 2048

// Timeout bounds one delivery request, from connecting to the end of the answer's body.
const Timeout = 15 * time.Second

// maxAnswer is how much of an answer's body is read (and thrown away), so that its
// connection can serve the next request.
const maxAnswer = 64 << 10

// Ranges that are private without the standard library saying so: "this network"
// (0.0.0.0/8), shared address space behind carrier-grade NAT (100.64.0.0/10), and the
// limited broadcast address.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("255.255.255.255/32"),
}

// privateKind says what kind of address of this machine or its networks ip is, or ""
// for a public one: the targets the guard refuses unless private ones are allowed.
func privateKind(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsMulticast():
		return "multicast"
	case ip.IsPrivate():
		return "private"
	}
	for _, p := range privateRanges {
		if p.Contains(ip) {
			return "private"
		}
	}
	return ""
}

// checkURL checks an endpoint's URL: http or https, a host, no user info or fragment,
// and, unless allowPrivate, no IP literal of a private kind. A host name is checked
// when it is connected to, on the address it resolves to.
func checkURL(raw string, allowPrivate bool) error {
	bad := func(format string, args ...any) error {
		return tasks.Errorf(tasks.EInvalid, "url", "url "+format, args...)
	}
	if raw == "" {
		return bad("must not be empty")
	}
	if len(raw) > MaxURL {
		return bad("must be at most %d bytes", MaxURL)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return bad("does not parse: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("must be an http:// or https:// URL, got %q", raw)
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return bad("must name a host, as in https://example.com/hook")
	case u.User != nil:
		return bad("must not hold a user name or password: the signature proves the sender")
	case u.Fragment != "" || strings.HasSuffix(raw, "#"):
		return bad("must not have a fragment (#…)")
	}
	if p := u.Port(); p != "" {
		if _, err := netip.ParseAddrPort("0.0.0.0:" + p); err != nil || p == "0" {
			return bad("has an invalid port %q", p)
		}
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !allowPrivate {
		if kind := privateKind(ip); kind != "" {
			return bad("names %s, a %s address: webhooks may be sent there only when the server runs with --webhooks-allow-private", ip, kind)
		}
	}
	return nil
}

// guard is the net.Dialer's Control: it refuses to connect to an address of a private
// kind, whatever name it was reached by.
func guard(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook guard: %s: %w", address, err)
	}
	if kind := privateKind(ap.Addr()); kind != "" {
		return fmt.Errorf("refused to connect to %s, a %s address (a guard against requests to private networks; --webhooks-allow-private lifts it)", ap.Addr(), kind)
	}
	return nil
}

// NewClient returns the HTTP client deliveries are sent with: no proxy, no redirects
// followed (an answer 3xx is a failure like any other non-2xx), Timeout per request
// and, unless allowPrivate, the guard on every connection.
func NewClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = guard
	}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: Timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       Timeout,
	}
}
