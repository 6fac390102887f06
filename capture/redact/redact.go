// Package redact removes credentials from HTTP traffic: header values of
// Authorization, Proxy-Authorization, Cookie and Set-Cookie (and any other
// names configured), and configured patterns in bodies and values.
//
// Two forms serve two places. [Policy.Value] and [Policy.Body] rewrite parsed
// values for outputs built from exchanges (HAR, JSON lines). [Masker] masks
// raw HTTP/1 byte streams in place, byte for byte, so that lengths, offsets
// and framing stay intact: the recorder uses it for `record --redact`, and
// the pcapng writer for streams.
package redact

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
)

// Replacement is what a redacted header value becomes in parsed outputs.
const Replacement = "[REDACTED]"

// DefaultHeaders are the headers whose values carry credentials in almost
// every deployment.
var DefaultHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"}

// Policy says what to redact. The zero value redacts nothing; use
// [NewPolicy].
type Policy struct {
	headers  map[string]bool // lower-case names
	patterns []*regexp.Regexp
	maxName  int
	// lens has bit n set when a name of n bytes is redacted (n < 64, or
	// bit 63 for longer ones): most headers are ruled out by length alone.
	lens uint64
	// byLen lists the lower-case names of each length below 64, for
	// comparing in place: this runs for every header of every exchange.
	byLen [64][]string
}

// NewPolicy returns a policy redacting the values of headers (matched
// case-insensitively) and every match of patterns in values and bodies.
func NewPolicy(headers []string, patterns []*regexp.Regexp) *Policy {
	p := &Policy{headers: map[string]bool{}, patterns: patterns}
	for _, h := range headers {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		p.headers[h] = true
		if len(h) > p.maxName {
			p.maxName = len(h)
		}
		p.lens |= 1 << min(len(h), 63)
		if len(h) < len(p.byLen) && !slices.Contains(p.byLen[len(h)], h) {
			p.byLen[len(h)] = append(p.byLen[len(h)], h)
		}
	}
	return p
}

// Default returns the policy for the credential headers in [DefaultHeaders].
func Default() *Policy { return NewPolicy(DefaultHeaders, nil) }

// Empty reports whether the policy redacts nothing.
func (p *Policy) Empty() bool { return p == nil || len(p.headers) == 0 && len(p.patterns) == 0 }

// HasPatterns reports whether the policy redacts patterns in values and
// bodies (not only whole values of named headers).
func (p *Policy) HasPatterns() bool { return p != nil && len(p.patterns) > 0 }

// Untouched reports, cheaply, that a header with a name of nameLen bytes
// keeps its value: no redacted name has that length and no pattern is
// configured. It lets callers skip [Policy.Value] for most headers.
func (p *Policy) Untouched(nameLen int) bool {
	return p == nil || len(p.patterns) == 0 && p.lens&(1<<min(nameLen, 63)) == 0
}

// Sensitive reports whether a header's value is redacted whole.
func (p *Policy) Sensitive(name string) bool {
	if p == nil || len(name) > p.maxName || p.lens&(1<<min(len(name), 63)) == 0 {
		return false
	}
	if len(name) >= len(p.byLen) {
		return p.headers[strings.ToLower(name)]
	}
	for _, h := range p.byLen[len(name)] {
		if equalFoldLower(name, h) {
			return true
		}
	}
	return false
}

// equalFoldLower reports whether s equals lower, a lower-case name of the
// same length, ASCII case-insensitively.
func equalFoldLower(s, lower string) bool {
	for i := 0; i < len(lower); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// Value returns the value to show for a header: [Replacement] for sensitive
// headers, the value with pattern matches replaced otherwise. changed says
// whether anything was redacted.
func (p *Policy) Value(name, value string) (out string, changed bool) {
	if p.Sensitive(name) {
		return Replacement, true
	}
	return p.Text(value)
}

// Text replaces every pattern match in s with [Replacement].
func (p *Policy) Text(s string) (string, bool) {
	if p == nil {
		return s, false
	}
	changed := false
	for _, re := range p.patterns {
		if re.MatchString(s) {
			s = re.ReplaceAllString(s, Replacement)
			changed = true
		}
	}
	return s, changed
}

// Body returns body with every pattern match replaced. It returns body
// itself when nothing matched.
func (p *Policy) Body(body []byte) ([]byte, bool) {
	if p == nil || len(p.patterns) == 0 {
		return body, false
	}
	changed := false
	for _, re := range p.patterns {
		if re.Match(body) {
			body = re.ReplaceAll(body, []byte(Replacement))
			changed = true
		}
	}
	return body, changed
}

// Masker masks the values of sensitive headers in one direction of an
// HTTP/1 byte stream, in place, replacing each value byte with '*'. It keeps
// a little state so values split across chunks are masked too. Lines that
// look like sensitive headers are masked wherever they appear, bodies
// included: redacting too much is the safe mistake. Pattern matches are not
// masked here (a pattern may span chunks); HTTP/2 header blocks are HPACK
// compressed and not masked either.
type Masker struct {
	p       *Policy
	atStart bool   // at the start of a line
	name    []byte // the current line's bytes so far, while it may be a header name
	masking bool   // inside a sensitive header's value
	lead    bool   // before the value's first non-blank byte
	skip    bool   // the current line can no longer be a sensitive header
}

// NewMasker returns a Masker for one stream direction.
func NewMasker(p *Policy) *Masker { return &Masker{p: p, atStart: true} }

// Mask masks b in place and reports how many bytes it masked.
func (m *Masker) Mask(b []byte) int {
	if m.p == nil || len(m.p.headers) == 0 {
		return 0
	}
	n := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\n' {
			m.masking, m.skip = false, false
			m.name = m.name[:0]
			continue
		}
		if m.masking {
			if m.lead && (c == ' ' || c == '\t') {
				continue // keep the separator's spaces readable
			}
			m.lead = false
			if c != '\r' {
				b[i] = '*'
				n++
			}
			continue
		}
		if m.skip {
			// Fast path: jump to the next line.
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				return n
			}
			i += j - 1
			continue
		}
		if c == ':' {
			if m.p.headers[strings.ToLower(string(m.name))] {
				m.masking, m.lead = true, true
			} else {
				m.skip = true
			}
			m.name = m.name[:0]
			continue
		}
		if len(m.name) >= m.p.maxName || !isToken(c) {
			m.skip = true
			m.name = m.name[:0]
			continue
		}
		m.name = append(m.name, c)
	}
	return n
}

func isToken(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// Find reports the first sensitive header in b that carries a value that is
// not already masked, for warnings such as `rewind info`'s. It looks at
// header lines only, within b.
func (p *Policy) Find(b []byte) (name string, ok bool) {
	p.Each(b, func(n string) bool {
		name, ok = n, true
		return false
	})
	return name, ok
}

// Each calls fn with the name of every sensitive header in b that carries
// a value not already masked, in order, until fn returns false.
func (p *Policy) Each(b []byte, fn func(name string) bool) {
	if p == nil {
		return
	}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || colon > p.maxName {
			continue
		}
		if !p.headers[strings.ToLower(string(line[:colon]))] {
			continue
		}
		v := bytes.Trim(line[colon+1:], " \t\r")
		if len(v) > 0 && len(bytes.Trim(v, "*")) > 0 && string(v) != Replacement {
			if !fn(string(line[:colon])) {
				return
			}
		}
	}
}
