package sli

import (
	"strings"

	"github.com/rewind-tools/rewind/analyze"
)

// MethodHostRoute is an [EndpointFunc] that groups paths by route template:
// path segments that look like identifiers become placeholders, so
// /users/42/orders and /users/7/orders are one endpoint, /users/{id}/orders.
func MethodHostRoute(ex *analyze.Exchange) EndpointKey {
	return EndpointKey{
		Method: ex.Request.Method,
		Host:   strings.ToLower(ex.Request.Host),
		Path:   RouteTemplate(ex.Request.Path),
	}
}

// RouteTemplate replaces the variable segments of path with placeholders:
// decimal numbers become {id}, UUIDs {uuid}, long hexadecimal strings
// {hash}, and long tokens mixing letters and digits {token}. It returns path
// itself, without allocating, when no segment is variable.
func RouteTemplate(path string) string {
	var b strings.Builder
	start, copied := 0, 0
	for i := 0; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' {
			continue
		}
		if seg := path[start:i]; seg != "" {
			if ph := placeholder(seg); ph != "" {
				if b.Len() == 0 {
					b.Grow(len(path))
				}
				b.WriteString(path[copied:start])
				b.WriteString(ph)
				copied = i
			}
		}
		start = i + 1
	}
	if copied == 0 {
		return path
	}
	b.WriteString(path[copied:])
	return b.String()
}

// placeholder returns the placeholder for a variable segment, or "".
func placeholder(seg string) string {
	digits, hex, letters, other := 0, 0, 0, 0
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			hex++
		case c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z':
			letters++
		case c == '-' || c == '_' || c == '.' || c == '~' || c == '%':
			other++
		default:
			return ""
		}
	}
	switch {
	case digits == len(seg):
		return "{id}"
	case len(seg) == 36 && isUUID(seg):
		return "{uuid}"
	case digits > 0 && letters == 0 && other == 0 && len(seg) >= 16:
		return "{hash}"
	case digits >= 2 && letters+hex > 0 && len(seg) >= 20 && other <= 2:
		return "{token}"
	}
	return ""
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
