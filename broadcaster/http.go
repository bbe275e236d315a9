package broadcaster

// What every HTTP part of TaskHub shares, the stream, the REST API and MCP alike: the
// error shape, the checking of query parameters and the comparison of origins. They
// live here, in a package of the standard library alone, where all of them can reach.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// WriteError answers with status and the error shape of every TaskHub endpoint,
// {"error": {"code": …, "message": …, "field": …}}, field left out when empty. It is
// the one writer of that shape: here, in a package of the standard library alone,
// every HTTP part of TaskHub can reach it.
func WriteError(w http.ResponseWriter, status int, code, message, field string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(ErrorBody(code, message, field))
}

// ErrorBody is the body WriteError writes, for a response written by other means.
func ErrorBody(code, message, field string) []byte {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	}
	b, _ := json.Marshal(map[string]body{"error": {code, message, field}}) // strings always encode
	return append(b, '\n')
}

// Origins is a set of browser origins (scheme://host[:port]), such as those allowed to
// call the server from a web page. Origins compare as a browser sends them: without
// regard to case, or to a slash at the end.
type Origins struct{ set []string }

// NewOrigins returns the set of origins.
func NewOrigins(origins []string) Origins {
	o := Origins{set: make([]string, len(origins))}
	for i, origin := range origins {
		o.set[i] = normalOrigin(origin)
	}
	return o
}

// Contains reports whether origin, an Origin header, is in o.
func (o Origins) Contains(origin string) bool { return slices.Contains(o.set, normalOrigin(origin)) }

// Allows reports whether origin, the Origin header of r, is r's own (the same scheme
// and host) or in o.
func (o Origins) Allows(origin string, r *http.Request) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return o.Contains(origin) || normalOrigin(origin) == normalOrigin(scheme+"://"+r.Host)
}

func normalOrigin(origin string) string { return strings.TrimSuffix(strings.ToLower(origin), "/") }

// Params names the query parameters a request may carry. Params.Parse is the one
// checker of query strings, for the stream and the REST API alike.
type Params struct {
	// Lists are comma lists. Given more than once, their values add up:
	// status=todo&status=done is status=todo,done.
	Lists []string
	// Singles take one value, and may be given once.
	Singles []string
}

// Parse reads raw, a query string, and checks it against p: it refuses a query string
// that does not parse (dropped, it would take every filter with it), a parameter
// without a name or not in p (a misspelt filter would silently match everything),
// and a single-valued one given twice (of two values, one would silently be ignored).
// A list comes back split at its commas, each item trimmed, empty ones left out.
func (p Params) Parse(raw string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badParam("query", "the query string does not parse: %v", err)
	}
	for name, values := range q {
		switch {
		case name == "":
			return nil, badParam("query", "a query parameter has no name")
		case slices.Contains(p.Lists, name):
			var items []string
			for _, v := range values {
				for item := range strings.SplitSeq(v, ",") {
					if item = strings.TrimSpace(item); item != "" {
						items = append(items, item)
					}
				}
			}
			q[name] = items
		case !slices.Contains(p.Singles, name):
			known := slices.Concat(p.Lists, p.Singles)
			if len(known) == 0 {
				return nil, badParam(name, "unknown query parameter %q: this endpoint takes none", name)
			}
			return nil, badParam(name, "unknown query parameter %q (known: %s)", name, strings.Join(known, ", "))
		case len(values) > 1:
			return nil, badParam(name, "query parameter %q is given more than once", name)
		}
	}
	return q, nil
}
