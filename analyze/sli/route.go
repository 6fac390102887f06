package sli

import (
	"fmt"
	"strings"

	"github.com/rewind-tools/rewind/analyze"
)

// MethodHostRoute is an [EndpointFunc] that groups paths by route template:
// path segments that look like identifiers become placeholders, so
// /users/42/orders and /users/7/orders are one endpoint, /users/{id}/orders.
// It allocates the template; a [Router] does not.
func MethodHostRoute(ex *analyze.Exchange) EndpointKey {
	return EndpointKey{
		Method: ex.Request.Method,
		Host:   strings.ToLower(ex.Request.Host),
		Path:   RouteTemplate(ex.Request.Path),
	}
}

// RouteTemplate replaces the variable segments of path with placeholders:
// decimal numbers become {id}, UUIDs {uuid}, long hexadecimal strings
// {hash}, dates (2024-05-01, 20240501) {date}, e-mail addresses {email},
// and long tokens mixing letters and digits (base64 or base64url ids,
// random keys) {token}. Words, however long, stay. It returns path itself,
// without allocating, when no segment is variable.
func RouteTemplate(path string) string {
	var arr [128]byte // most paths fit: one allocation, the result's
	b, changed := appendTemplate(arr[:0], path)
	if !changed {
		return path
	}
	return string(b)
}

// appendTemplate appends path's template to dst; changed says whether a
// segment was replaced (if not, dst holds a copy of path).
func appendTemplate(dst []byte, path string) (out []byte, changed bool) {
	start, copied := 0, 0
	for i := 0; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' {
			continue
		}
		if seg := path[start:i]; seg != "" {
			if ph := placeholder(seg); ph != "" {
				dst = append(dst, path[copied:start]...)
				dst = append(dst, ph...)
				copied = i
				changed = true
			}
		}
		start = i + 1
	}
	return append(dst, path[copied:]...), changed
}

// placeholder returns the placeholder for a variable segment, or "".
func placeholder(seg string) string {
	digits, hex, letters, upper, lower, other, at, dots := 0, 0, 0, 0, 0, 0, 0, 0
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			hex++
		case c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z':
			letters++
		case c == '-' || c == '_' || c == '.' || c == '~' || c == '%' || c == '+' || c == '=':
			other++
			if c == '.' {
				dots++
			}
		case c == '@':
			at++
		default:
			return ""
		}
		if c >= 'A' && c <= 'Z' {
			upper++
		} else if c >= 'a' && c <= 'z' {
			lower++
		}
	}
	switch {
	case digits == len(seg):
		if len(seg) == 8 && isDate(seg[0:4], seg[4:6], seg[6:8]) {
			return "{date}"
		}
		return "{id}"
	case at == 1 && isEmail(seg):
		return "{email}"
	case at > 0:
		return ""
	case len(seg) == 10 && seg[4] == '-' && seg[7] == '-' && digits == 8 && isDate(seg[0:4], seg[5:7], seg[8:10]):
		return "{date}"
	case len(seg) == 36 && isUUID(seg):
		return "{uuid}"
	case digits > 0 && letters == 0 && other == 0 && len(seg) >= 16:
		return "{hash}"
	case digits >= 2 && letters+hex > 0 && len(seg) >= 20 && other-dots <= 2 && dots == 0:
		return "{token}"
	case len(seg) >= 12 && digits >= 2 && upper >= 2 && lower >= 2 && dots == 0 && other <= 2:
		// base64url ids such as "dQw4w9WgXcQab": mixed case and digits,
		// which words in paths (even camelCase ones) rarely are.
		return "{token}"
	}
	return ""
}

func isDate(y, m, d string) bool {
	num := func(s string) int {
		n := 0
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return -1
			}
			n = n*10 + int(s[i]-'0')
		}
		return n
	}
	yy, mm, dd := num(y), num(m), num(d)
	return yy >= 1970 && yy <= 2199 && mm >= 1 && mm <= 12 && dd >= 1 && dd <= 31
}

func isEmail(s string) bool {
	i := strings.IndexByte(s, '@')
	if i < 1 {
		return false
	}
	domain := s[i+1:]
	j := strings.LastIndexByte(domain, '.')
	return j > 0 && j < len(domain)-1
}

func isUUID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Route is a user-given route pattern (--route) such as /users/{id}/orders
// or /static/*: literal segments match themselves, a {name} segment matches
// any one non-empty segment, and a trailing * matches the rest of the path
// (nothing included). A path that matches is reported under the pattern.
type Route struct {
	pattern string
	segs    []string // "{}" for {name}; the last is "*" for a wildcard tail
}

// ParseRoute checks a route pattern.
func ParseRoute(pattern string) (Route, error) {
	if !strings.HasPrefix(pattern, "/") {
		return Route{}, fmt.Errorf("route %q: must start with /", pattern)
	}
	r := Route{pattern: pattern}
	parts := strings.Split(pattern[1:], "/")
	for i, p := range parts {
		switch {
		case p == "*":
			if i != len(parts)-1 {
				return Route{}, fmt.Errorf("route %q: * is allowed only as the last segment", pattern)
			}
			r.segs = append(r.segs, "*")
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") && len(p) > 2:
			r.segs = append(r.segs, "{}")
		case strings.ContainsAny(p, "{}*"):
			return Route{}, fmt.Errorf("route %q: segment %q mixes a placeholder with text", pattern, p)
		default:
			r.segs = append(r.segs, p)
		}
	}
	return r, nil
}

// MustParseRoute is [ParseRoute] for patterns known to be valid; it panics
// on an error.
func MustParseRoute(pattern string) Route {
	r, err := ParseRoute(pattern)
	if err != nil {
		panic(err)
	}
	return r
}

// String returns the pattern.
func (r Route) String() string { return r.pattern }

// Match reports whether path matches r. It does not allocate.
func (r Route) Match(path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	rest := path[1:]
	for i, pat := range r.segs {
		if pat == "*" {
			return true
		}
		seg, next, more := strings.Cut(rest, "/")
		if pat == "{}" && seg == "" || pat != "{}" && pat != seg {
			return false
		}
		if !more {
			// The path is done: so must the pattern be, but for a "*".
			return i == len(r.segs)-1 || i == len(r.segs)-2 && r.segs[i+1] == "*"
		}
		rest = next
	}
	return false // the path has more segments than the pattern
}

// Router maps exchanges to endpoints: the first matching [Route] names the
// path, otherwise its [RouteTemplate]. Unlike [MethodHostRoute] it does
// not allocate per exchange: templates are built in a scratch buffer and
// interned. A Router is not safe for concurrent use.
type Router struct {
	routes []Route
	buf    []byte
	intern map[string]string
	// The last path and host seen and what they became: consecutive
	// exchanges mostly share them, and comparing is cheaper than
	// templating or lower-casing again.
	lastPath, lastRoute string
	lastHost, lastLower string
}

// maxInterned bounds a Router's table of templates.
const maxInterned = 1 << 14

// NewRouter returns a Router trying routes in order.
func NewRouter(routes []Route) *Router {
	return &Router{routes: routes, intern: make(map[string]string)}
}

// Endpoint is an [EndpointFunc].
//
// A gRPC call's endpoint is its method: the path "/package.Service/Method"
// as it is, never matched against routes nor made a template (a method
// name is no variable).
func (r *Router) Endpoint(ex *analyze.Exchange) EndpointKey {
	var k EndpointKey
	r.endpointInto(ex, &k)
	return k
}

// endpointInto is Endpoint writing the key into k. The aggregator calls it
// for every exchange: a key returned by value (three strings, in
// registers) is stored to the stack a word at a time and then copied with
// 16-byte loads, which cannot be forwarded from those stores and stall.
func (r *Router) endpointInto(ex *analyze.Exchange, k *EndpointKey) {
	k.Method = ex.Request.Method
	if h := ex.Request.Host; h != r.lastHost {
		r.lastHost, r.lastLower = h, strings.ToLower(h)
	}
	k.Host = r.lastLower
	k.Path = r.Route(ex)
}

// Route returns the Path of ex's [Router.Endpoint]: its route template,
// or a gRPC call's method path.
func (r *Router) Route(ex *analyze.Exchange) string {
	path := ex.Request.Path
	if g := ex.GRPC; g == nil || g.Method == "" {
		if path != r.lastPath || r.lastRoute == "" {
			r.lastPath, r.lastRoute = path, r.Path(path)
		}
		path = r.lastRoute
	}
	return path
}

// Path returns the route of a request path.
func (r *Router) Path(path string) string {
	for i := range r.routes {
		if r.routes[i].Match(path) {
			return r.routes[i].pattern
		}
	}
	var changed bool
	r.buf, changed = appendTemplate(r.buf[:0], path)
	if !changed {
		return path
	}
	if s, ok := r.intern[string(r.buf)]; ok {
		return s
	}
	s := string(r.buf)
	if len(r.intern) < maxInterned {
		r.intern[s] = s
	}
	return s
}
