package analyze

import (
	"strconv"
	"strings"
	"unsafe"

	"github.com/rewind-tools/rewind/analyze/http1"
	"github.com/rewind-tools/rewind/capture/redact"
)

// h1Conn pairs the requests and responses of one HTTP/1.x layer, in order
// (pipelining included): the n-th final response answers the n-th request.
type h1Conn struct {
	l      *layer
	reqDir int
	req    *http1.Parser
	resp   *http1.Parser
	// pending[head:] are requests whose headers are parsed and that wait
	// for a response, oldest first; cur is the request still being
	// received.
	pending []*Exchange
	head    int
	cur     *Exchange
	// curAnswered says cur was answered before its request body was
	// complete (a server that replies first and reads the body after, as
	// nginx's `return 200` does): its framing says which bytes still belong
	// to it, so it is held and emitted when they have come.
	curAnswered bool
	// joined says the recording began mid-connection: a response before
	// any request answers a request that was never seen.
	joined bool
	// seenReq and seenResp say a message was already reported on that side:
	// on a joined connection the first message's resync is expected, not
	// a loss of sync.
	seenReq, seenResp bool

	emitReq, emitResp func(*http1.Message)
	// h2c is the exchange whose 101 switched the connection to HTTP/2
	// (see h2conn.go), until the switch is made.
	h2c *Exchange
}

func newH1Conn(l *layer, reqDir int, joined bool) *h1Conn {
	opts := http1.Options{MaxBodyCapture: l.cs.t.opts.MaxBodyCapture, MidStream: joined}
	if l.cs.t.opts.DiscardBodies {
		opts.MaxBodyCapture = 0
	}
	h := &h1Conn{
		l:      l,
		reqDir: reqDir,
		req:    http1.NewParser(http1.Request, opts),
		resp:   http1.NewParser(http1.Response, opts),
		joined: joined,
	}
	h.emitReq = h.onRequest
	h.emitResp = h.onResponse
	return h
}

func (h *h1Conn) feed(d int, p []byte, t http1.Times) {
	if d == h.reqDir {
		h.req.Feed(p, t, h.emitReq)
	} else {
		tunnel := h.resp.Stats().TunnelBytes
		h.resp.Feed(p, t, h.emitResp)
		if h.h2c != nil {
			h.switchH2C(p, h.resp.Stats().TunnelBytes-tunnel, t)
		}
	}
}

func (h *h1Conn) gap(d int, n int64, t http1.Times) {
	if d == h.reqDir {
		h.req.Gap(n, t, h.emitReq)
	} else {
		h.resp.Gap(n, t, h.emitResp)
	}
}

func (h *h1Conn) close(t http1.Times) {
	h.req.Close(t, h.emitReq)
	if h.curAnswered && h.cur != nil {
		// The body of an answered request never ended.
		h.cur.Flags |= FlagIncomplete
		h.emit(h.cur)
	}
	h.cur, h.curAnswered = nil, false
	h.resp.Close(t, h.emitResp)
	// Requests that never got a response.
	for _, ex := range h.pending[h.head:] {
		ex.Flags |= FlagNoResponse | FlagIncomplete
		h.finish(ex)
	}
	h.pending, h.head = nil, 0
}

func (h *h1Conn) newExchange() *Exchange {
	ex := h.slab().exchange()
	// ex is zeroed memory: set the fields, not the whole struct (which
	// would write all of it again, through write barriers).
	ex.Conn = h.l.cs.c
	ex.Timings = Timings{Unknown, Unknown, Unknown, Unknown}
	return ex
}

func (h *h1Conn) onRequest(m *http1.Message) {
	if m.State == http1.HeadersComplete {
		ex := h.newExchange()
		h.fillRequest(ex, m)
		ex.Proto = ex.Request.Proto
		if h.curAnswered && h.cur != nil {
			h.emit(h.cur) // cannot happen: a request completes before the next begins
		}
		h.pending = append(h.pending, ex)
		h.cur, h.curAnswered = ex, false
		h.expectResponse(m)
		return
	}
	// Complete.
	ex, answered := h.cur, h.curAnswered
	h.cur, h.curAnswered = nil, false
	if ex == nil {
		if m.Method == "" {
			return // nothing recognisable: no exchange to report
		}
		// Emitted without HeadersComplete: malformed or cut headers.
		ex = h.newExchange()
		h.fillRequest(ex, m)
		ex.Proto = ex.Request.Proto
		h.pending = append(h.pending, ex)
		h.expectResponse(m)
	}
	h.fillBody(&ex.Request.Message, m)
	ex.Flags |= h.messageFlags(m, &h.seenReq)
	if answered {
		h.emit(ex)
	}
}

// popPending takes the oldest request waiting for a response. The queue
// keeps its array (it is almost always one long: an allocation per request
// otherwise) and is compacted once half of it is taken, so that pipelining
// costs O(1) a request.
func (h *h1Conn) popPending() *Exchange {
	ex := h.pending[h.head]
	h.pending[h.head] = nil // the sink may keep the exchange; we must not
	h.head++
	switch {
	case h.head == len(h.pending):
		h.pending, h.head = h.pending[:0], 0
	case h.head > len(h.pending)/2:
		n := copy(h.pending, h.pending[h.head:])
		clear(h.pending[n:])
		h.pending, h.head = h.pending[:n], 0
	}
	return ex
}

// expectResponse tells the response parser about request m.
func (h *h1Conn) expectResponse(m *http1.Message) {
	if m.ProtoMajor == 0 {
		// HTTP/0.9: the answer may be a bare body (status 0).
		h.resp.ExpectHTTP09Response(m.Method)
		return
	}
	h.resp.ExpectResponseTo(m.Method)
}

func (h *h1Conn) onResponse(m *http1.Message) {
	if m.State != http1.Complete || m.Interim {
		return
	}
	var ex *Exchange
	if h.head < len(h.pending) {
		ex = h.popPending()
	} else {
		// A response to a request we did not see (the recording joined
		// mid-connection, or the request was lost).
		ex = h.newExchange()
		ex.Flags |= FlagIncomplete
	}
	h.fillResponse(ex, m)
	h.fillBody(&ex.Response.Message, m)
	ex.Flags |= h.messageFlags(m, &h.seenResp)
	if ex.Proto == "" {
		ex.Proto = ex.Response.Proto
	}
	if m.Upgrade {
		if h.h2cUpgrade(ex, m) {
			return // stream 1 of the HTTP/2 connection answers it
		}
		ex.Flags |= FlagUpgrade
	}
	h.finish(ex)
}

// finish emits an answered exchange, or holds it while its request's body
// is still coming.
func (h *h1Conn) finish(ex *Exchange) {
	if ex == h.cur {
		h.curAnswered = true
		return
	}
	h.emit(ex)
}

// emit computes timings and delivers the exchange.
func (h *h1Conn) emit(ex *Exchange) {
	setTimings(ex)
	h.l.cs.deliver(ex)
}

// setTimings computes an exchange's server, transfer and total timings from
// its messages' first and last byte times (see [Timings]), for HTTP/1 and
// HTTP/2 alike; those it cannot measure stay Unknown.
func setTimings(ex *Exchange) {
	rq, rs := &ex.Request, &ex.Response
	if rq.Start != 0 && rs.Start != 0 {
		ex.Timings.Server = span(rq.End, rs.Start)
		ex.Timings.Total = span(rq.Start, rs.End)
	}
	if rs.Start != 0 && rs.End != 0 {
		ex.Timings.Transfer = span(rs.Start, rs.End)
	}
	if ex.Flags&FlagIncomplete != 0 && (rs.Status == 0 || rq.End == 0) {
		// A cut message's ends are not real ends.
		ex.Timings.Server = Unknown
	}
}

// span returns b-a, or Unknown when either is missing or time runs back.
func span(a, b uint64) int64 {
	if a == 0 || b == 0 || b < a {
		return Unknown
	}
	return int64(b - a)
}

func (h *h1Conn) messageFlags(m *http1.Message, seen *bool) Flags {
	first := !*seen
	*seen = true
	var f Flags
	if m.Incomplete {
		f |= FlagIncomplete
	}
	if m.Truncated {
		f |= FlagTruncated
	}
	if m.Resynced && !(first && h.joined) {
		f |= FlagDesynced
	}
	if m.Error {
		f |= FlagMalformed
	}
	return f
}

func protoString(major, minor int) string {
	switch {
	case major == 1 && minor == 1:
		return "HTTP/1.1"
	case major == 1 && minor == 0:
		return "HTTP/1.0"
	case major == 0 && minor == 9:
		return "HTTP/0.9"
	}
	return "HTTP/" + strconv.Itoa(major) + "." + strconv.Itoa(minor)
}

func (h *h1Conn) fillRequest(ex *Exchange, m *http1.Message) {
	r := &ex.Request
	r.Method = m.Method
	r.Proto = protoString(m.ProtoMajor, m.ProtoMinor)
	r.Start = m.Start
	r.Target = h.slab().head(&r.Message, m, h.l.cs.t.opts.Redact, ex.spanRoom(m.NumHeaders()))
	r.HeaderBytes = m.HeaderBytes
	r.BodyBytes = -1
	r.Host = r.HeaderValue("Host")
	target := r.Target
	if i := strings.Index(target, "://"); i > 0 && !strings.HasPrefix(target, "/") {
		// absolute-form: scheme://authority/path?query
		rest := target[i+3:]
		slash := strings.IndexByte(rest, '/')
		if slash < 0 {
			if r.Host == "" {
				r.Host = rest
			}
			target = "/"
		} else {
			if r.Host == "" {
				r.Host = rest[:slash]
			}
			target = rest[slash:]
		}
	}
	if q := strings.IndexByte(target, '?'); q >= 0 {
		r.Path, r.Query = target[:q], target[q+1:]
	} else {
		r.Path = target
	}
}

func (h *h1Conn) fillResponse(ex *Exchange, m *http1.Message) {
	r := &ex.Response
	r.Status = m.StatusCode
	r.Proto = protoString(m.ProtoMajor, m.ProtoMinor)
	r.Start = m.Start
	r.Reason = h.slab().head(&r.Message, m, h.l.cs.t.opts.Redact, ex.spanRoom(m.NumHeaders()))
	r.HeaderBytes = m.HeaderBytes
}

func (h *h1Conn) fillBody(msg *Message, m *http1.Message) {
	if msg.Start == 0 {
		msg.Start = m.Start
	}
	msg.End = m.End
	msg.BodyBytes = m.BodyBytes
	if m.LengthUnknown {
		// Flagged incomplete and truncated; the length is not guessed.
		msg.BodyBytes = Unknown
	}
	if len(m.Body) > 0 {
		msg.Body = append([]byte(nil), m.Body...)
	}
	msg.BodyTruncated = m.BodyTruncated
	if m.NumTrailers() > 0 {
		_, msg.Trailer = h.slab().copyFields(nil, m.NumTrailers(), m.TrailerAt)
	}
	if msg.HeaderBytes == 0 {
		msg.HeaderBytes = m.HeaderBytes
	}
}

func (h *h1Conn) slab() *slab { return &h.l.cs.t.slab }

// slab hands out exchanges and field lists carved from shared chunks, so
// that an exchange costs a few allocations per chunk rather than several of
// its own. A chunk stays in memory while a sink holds anything carved from
// it; chunks are small for that reason.
type slab struct {
	exs    []Exchange
	reuse  []*Exchange // exchanges handed back by recycle, for exchange
	fields []Field
	spans  []http1.FieldSpan
	bytes  []byte // the unused end of a chunk that str copies into
}

const (
	slabExchanges = 32
	slabFields    = 256
	slabBytes     = 32 << 10
)

// spanList returns an empty list with room for n spans.
func (s *slab) spanList(n int) []http1.FieldSpan {
	if n > slabFields/4 {
		return make([]http1.FieldSpan, 0, n)
	}
	if len(s.spans) < n {
		s.spans = make([]http1.FieldSpan, slabFields)
	}
	l := s.spans[:0:n]
	s.spans = s.spans[n:]
	return l
}

// exchange returns a zeroed Exchange that recycle may take back.
func (s *slab) exchange() *Exchange {
	if n := len(s.reuse); n > 0 {
		ex := s.reuse[n-1]
		s.reuse = s.reuse[:n-1]
		*ex = Exchange{pooled: true}
		return ex
	}
	if len(s.exs) == 0 {
		s.exs = make([]Exchange, slabExchanges)
	}
	ex := &s.exs[0]
	s.exs = s.exs[1:]
	ex.pooled = true
	return ex
}

// recycle takes back the exchanges of b that exchange made and nothing
// refers to any more: the sinks have seen them and keep none (see
// KeepsNoExchangeSink). Only the Exchange structs are reused, never the
// strings and lists they point to, which sinks may keep.
func (s *slab) recycle(b []*Exchange) {
	for _, ex := range b {
		if ex.pooled && len(s.reuse) < maxReuse {
			s.reuse = append(s.reuse, ex)
		}
	}
}

// maxReuse bounds the exchanges kept for reuse: the stage's batches in
// flight hold fewer.
const maxReuse = 4 * stageBatch * stageDepth

func (s *slab) fieldList(n int) Fields {
	if n > slabFields/4 {
		return make(Fields, n)
	}
	if len(s.fields) < n {
		s.fields = make([]Field, slabFields)
	}
	f := s.fields[:n:n]
	s.fields = s.fields[n:]
	return f
}

// str returns a string holding a copy of b. Short strings are carved from
// shared chunks: the bytes are copied into the unused end of a chunk, never
// written again, and the string points at them (as strings.Builder does),
// so that the copy costs no allocation of its own.
func (s *slab) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > slabBytes/8 {
		return string(b)
	}
	if len(b) > cap(s.bytes) {
		s.bytes = make([]byte, 0, slabBytes)
	}
	buf := s.bytes[:len(b)]
	copy(buf, b)
	s.bytes = s.bytes[len(b):len(b)]
	return unsafe.String(&buf[0], len(buf))
}

// head copies m's head (start line and header block) into one string and
// returns the target or reason phrase, a substring of it. The header fields
// are left as spans of that string in msg.lazy, for materialize to make
// strings of where the sinks run (a goroutine of their own, usually): the
// replay's goroutine is the pipeline's critical path. Whether p redacts one
// of them is found here, while the bytes are in this core's cache: on the
// sinks' goroutine it would fetch them for nothing. Fields unfolded from
// obs-fold lines are rare and go to msg.Header at once. room, when not
// nil, has room for the spans (see Exchange.spanRoom).
func (s *slab) head(msg *Message, m *http1.Message, p *redact.Policy, room []http1.FieldSpan) string {
	head := s.str(m.RawHeader())
	n := m.NumHeaders()
	if n == 0 {
		first, _, _ := m.HeadSpans(head, nil)
		return first
	}
	if room == nil {
		room = s.spanList(n)
	}
	if first, spans, ok := m.HeadSpans(head, room); ok {
		msg.lazy = newLazyHeader(head, spans, p)
		return first
	}
	out := s.fieldList(n)
	i := 0
	first := m.HeadStrings(head, func(name, value string) {
		out[i] = Field{Name: name, Value: value}
		i++
	})
	msg.Header = out
	return first
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

// materialize makes the Header of each of ex's messages whose fields are
// still spans (see slab.head), taking the lists from s. It must run before
// anything outside the replay (filter, redaction, sinks) sees ex, unless
// the sinks only look fields up by name: see prepare.
func (s *slab) materialize(ex *Exchange) {
	s.materializeMsg(&ex.Request.Message)
	s.materializeMsg(&ex.Response.Message)
}

func (s *slab) materializeMsg(msg *Message) {
	l := &msg.lazy
	if len(l.spans) == 0 {
		return
	}
	out := s.fieldList(len(l.spans))
	for i, sp := range l.spans {
		out[i] = Field{Name: sp.Name(l.head), Value: sp.Value(l.head)}
	}
	msg.Header = out
	*l = lazyHeader{}
}

// prepare readies ex for the sinks: it materializes the header fields
// still held as spans, then applies the redaction policy p. When lookup is
// true (every sink implements [HeaderLookupSink]) a message's fields stay
// spans unless p would redact one of them, which saves making a Field of
// every header line of every exchange.
func (s *slab) prepare(ex *Exchange, p *redact.Policy, lookup bool) {
	for _, msg := range [2]*Message{&ex.Request.Message, &ex.Response.Message} {
		if !lookup || msg.lazy.redact {
			s.materializeMsg(msg)
		}
	}
	if !p.Empty() {
		redactExchange(p, ex)
	}
}

// copyFields copies first (the request target or the reason phrase) and n
// fields into one string allocation shared by all, and returns first and
// the fields.
func (s *slab) copyFields(first []byte, n int, at func(int) ([]byte, []byte)) (string, Fields) {
	if n == 0 {
		return string(first), nil
	}
	size := len(first)
	for i := 0; i < n; i++ {
		k, v := at(i)
		size += len(k) + len(v)
	}
	var sb strings.Builder
	sb.Grow(size)
	sb.Write(first)
	for i := 0; i < n; i++ {
		k, v := at(i)
		sb.Write(k)
		sb.Write(v)
	}
	all := sb.String()
	out := s.fieldList(n)
	off := len(first)
	for i := 0; i < n; i++ {
		k, v := at(i)
		out[i].Name = all[off : off+len(k)]
		off += len(k)
		out[i].Value = all[off : off+len(v)]
		off += len(v)
	}
	return all[:len(first)], out
}
