package api

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"
)

// writeLimit limits the changes under /api, and every request to /mcp, to perSecond
// per token (per client IP address without one), with a burst of one second's worth.
// Reads are never limited. Over the limit: 429 rate_limited with Retry-After.
func writeLimit(perSecond float64) echo.MiddlewareFunc {
	burst := max(1, int(math.Ceil(perSecond)))
	retryAfter := strconv.Itoa(max(1, int(math.Ceil(1/perSecond))))
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Skipper: func(c echo.Context) bool {
			r := c.Request()
			scope, protected := requiredScope(r.Method, r.URL.Path)
			return !protected || scope != ScopeWrite
		},
		Store: middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate: rate.Limit(perSecond), Burst: burst, ExpiresIn: 3 * time.Minute,
		}),
		IdentifierExtractor: func(c echo.Context) (string, error) {
			if name, ok := Caller(c.Request().Context()); ok {
				return "token " + name, nil
			}
			return addressKey(c.Request().RemoteAddr), nil
		},
		DenyHandler: func(c echo.Context, who string, err error) error {
			c.Response().Header().Set("Retry-After", retryAfter)
			return &Error{Status: http.StatusTooManyRequests, Code: CodeRateLimited,
				Message: "too many changes: at most " + strconv.FormatFloat(perSecond, 'g', -1, 64) + " per second (--write-rate); retry after " + retryAfter + "s"}
		},
	})
}

// addressKey is what the write limit counts a caller without a token by: the peer's
// own address (X-Forwarded-For is the client's to forge), and for IPv6 its /64, which
// one host usually has whole: each of its addresses would otherwise get a limit, and
// an entry in the limiter's memory, of its own.
func addressKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return "ip " + host
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.WithZone("").Prefix(64) // 64 bits: never an error
		return "ip " + p.String()
	}
	return "ip " + addr.String()
}
