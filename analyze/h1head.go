package analyze

import (
	"strings"

	"github.com/rewind-tools/rewind/analyze/http1"
	"github.com/rewind-tools/rewind/capture/redact"
)

// h1Heads is the performance machinery of an HTTP/1 connection's pairing
// (h1Conn): it makes the connection's exchanges and copies what the
// parsers report into them at the least cost to the replay's goroutine,
// the pipeline's critical path. Exchanges, strings and lists are carved
// from the replay's slab; header fields are kept as spans of their
// message's head (lazyHeader), for the sinks' goroutine to make strings
// of, or never.
type h1Heads struct {
	slab   *slab
	redact *redact.Policy // the replay's, for lazyHeader.redact
	// req and resp are the latest request and response heads, which the
	// next ones share when their bytes are the same (see head).
	req, resp sharedHead
}

// sharedHead is a copied head that later messages of the same side of the
// connection share when their heads are byte for byte the same: a
// keep-alive client sends the same request again and again, and a server
// answers it with the same head (until its Date changes, once a second).
// Its spans are in memory of their own from the first repeat on: those of
// the first message are in its exchange's array, which is reused.
type sharedHead struct {
	head  string // "" when there is nothing to share
	first string // the target or reason phrase
	lazy  lazyHeader
	// shared says lazy's spans may be given to later messages.
	shared bool
	// split says host, path and query are what a shared request head's
	// target and fields gave (splitTarget), for later requests to share.
	split             bool
	host, path, query string
}

// request sets ex.Request's Target, Host, Path, Query and header fields
// from m's head (see head). A request whose head is the same as the
// previous one's also takes what splitTarget found in that one.
func (hh *h1Heads) request(ex *Exchange, m *http1.Message) {
	r, last := &ex.Request, &hh.req
	var shared bool
	r.Target, shared = hh.head(ex, &r.Message, m, last)
	if shared && last.split {
		r.Host, r.Path, r.Query = last.host, last.path, last.query
		return
	}
	splitTarget(r)
	if shared {
		last.split, last.host, last.path, last.query = true, r.Host, r.Path, r.Query
	}
}

// exchange returns a new exchange of connection c, its timings unknown.
func (hh *h1Heads) exchange(c *Conn) *Exchange {
	ex := hh.slab.exchange()
	// ex is zeroed memory: set the fields, not the whole struct (which
	// would write all of it again, through write barriers).
	ex.Conn = c
	ex.Timings = Timings{Unknown, Unknown, Unknown, Unknown}
	return ex
}

// response sets ex.Response's Reason and header fields from m's head (see
// head).
func (hh *h1Heads) response(ex *Exchange, m *http1.Message) {
	ex.Response.Reason, _ = hh.head(ex, &ex.Response.Message, m, &hh.resp)
}

// head copies m's head (start line and header block), the head of ex's
// request or response msg, into one string and returns the target or
// reason phrase, a substring of it, and whether msg shares last's head. The header fields are left as spans of
// that string in msg.lazy, for materialize to make strings of where the
// sinks run (a goroutine of their own, usually). Whether the policy redacts
// one of them is found here, while the bytes are in this core's cache: on
// the sinks' goroutine it would fetch them for nothing. Fields unfolded
// from obs-fold lines are rare and go to msg.Header at once. The spans go
// to ex's own array when they fit (see Exchange.spanRoom).
//
// A head the same as the previous one of its side (last) is not copied
// again: msg shares last's string and spans, and what was found in them.
// Strings are never written once made, so sharing them is safe; it saves
// the copy, its memory and the scan of the fields, most of the replay's
// work on a connection of repeated small exchanges.
func (hh *h1Heads) head(ex *Exchange, msg *Message, m *http1.Message, last *sharedHead) (first string, shared bool) {
	s := hh.slab
	raw := m.RawHeader()
	if len(raw) > 0 && len(raw) == len(last.head) && string(raw) == last.head {
		if !last.shared {
			// The first repeat: the spans move to memory of their own.
			first, spans, _ := m.HeadSpans(last.head, s.spanList(m.NumHeaders()))
			last.first, last.lazy, last.shared = first, newLazyHeader(last.head, spans, hh.redact), true
		}
		msg.lazy = last.lazy
		return last.first, true
	}
	head := s.str(raw)
	n := m.NumHeaders()
	if n == 0 {
		first, _, _ := m.HeadSpans(head, nil)
		*last = sharedHead{head: head, first: first, shared: true}
		return first, false
	}
	room := ex.spanRoom(n)
	if room == nil {
		room = s.spanList(n)
	}
	if first, spans, ok := m.HeadSpans(head, room); ok {
		msg.lazy = newLazyHeader(head, spans, hh.redact)
		*last = sharedHead{head: head}
		return first, false
	}
	*last = sharedHead{}
	out := s.fieldList(n)
	i := 0
	first = m.HeadStrings(head, func(name, value string) {
		out[i] = Field{Name: name, Value: value}
		i++
	})
	msg.Header = out
	return first, false
}

// trailer copies m's trailer fields.
func (hh *h1Heads) trailer(m *http1.Message) Fields {
	_, f := hh.slab.copyFields(nil, m.NumTrailers(), m.TrailerAt)
	return f
}

// lazyHeader is a message's header fields as spans of its head.
type lazyHeader struct {
	head  string
	spans []http1.FieldSpan
	// redact says the replay's policy changes one of the fields.
	redact bool
	// host and ctype index the first Host and Content-Type fields, or are
	// -1: the replay reads Host and every output Content-Type, and
	// finding them here, where the bytes are in cache, saves the sinks'
	// goroutine from fetching every name.
	host, ctype int32
}

// newLazyHeader makes the lazy form of the fields spans of head, finding
// in one pass what p redacts and where Host and Content-Type are.
func newLazyHeader(head string, spans []http1.FieldSpan, p *redact.Policy) lazyHeader {
	l := lazyHeader{head: head, spans: spans, host: -1, ctype: -1}
	check := !p.Empty()
	if p.HasPatterns() {
		l.redact, check = true, false
	}
	for i, sp := range spans {
		switch sp.NameLen {
		case int32(len(hostField)):
			if l.host < 0 && strings.EqualFold(sp.Name(head), hostField) {
				l.host = int32(i)
			}
		case int32(len(contentType)):
			if l.ctype < 0 && strings.EqualFold(sp.Name(head), contentType) {
				l.ctype = int32(i)
			}
		}
		if check && !p.Untouched(int(sp.NameLen)) && p.Sensitive(sp.Name(head)) {
			l.redact, check = true, false
		}
	}
	return l
}

const (
	hostField   = "Host"
	contentType = "Content-Type"
)

// indexed returns the value of name when it is one of the fields whose
// place newLazyHeader noted; ok is false for other names.
func (l *lazyHeader) indexed(name string) (value string, ok bool) {
	var i int32
	switch {
	case len(name) == len(hostField) && strings.EqualFold(name, hostField):
		i = l.host
	case len(name) == len(contentType) && strings.EqualFold(name, contentType):
		i = l.ctype
	default:
		return "", false
	}
	if i < 0 {
		return "", true
	}
	return l.spans[i].Value(l.head), true
}

// HeaderValue returns the first value of the named header field,
// case-insensitively. Unlike Header.Get it also works when the fields are
// not materialized: the pipeline leaves them so for sinks that implement
// [HeaderLookupSink] (see there).
func (msg *Message) HeaderValue(name string) string {
	if l := &msg.lazy; len(l.spans) > 0 {
		if v, ok := l.indexed(name); ok {
			return v
		}
		for _, sp := range l.spans {
			if int(sp.NameLen) == len(name) && strings.EqualFold(sp.Name(l.head), name) {
				return sp.Value(l.head)
			}
		}
		return ""
	}
	return msg.Header.Get(name)
}
