package analyze

import (
	"strconv"
	"strings"

	"github.com/rewind-tools/rewind/analyze/bytetime"
	"github.com/rewind-tools/rewind/analyze/http1"
)

// h1Conn pairs the requests and responses of one HTTP/1.x layer, in order
// (pipelining included): the n-th final response answers the n-th request.
type h1Conn struct {
	out    exchangeOut
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

	// heads makes the exchanges and copies the messages' heads.
	heads h1Heads

	emitReq, emitResp func(*http1.Message)
	// h2c is the exchange whose 101 switched the connection to HTTP/2
	// (see h2conn.go), until feed hands it to the layer for the switch.
	h2c *Exchange
}

// newH1Conn starts pairing the HTTP/1 messages of a connection whose
// requests travel in direction reqDir; joined says the recording began
// after the connection did.
func newH1Conn(out exchangeOut, o protoOpts, reqDir int, joined bool) *h1Conn {
	opts := http1.Options{MaxBodyCapture: o.maxBody, MidStream: joined}
	h := &h1Conn{
		out:    out,
		reqDir: reqDir,
		req:    http1.NewParser(http1.Request, opts),
		resp:   http1.NewParser(http1.Response, opts),
		joined: joined,
		heads:  h1Heads{slab: out.alloc(), redact: o.redact},
	}
	h.emitReq = h.onRequest
	h.emitResp = h.onResponse
	return h
}

// feed parses bytes p of direction d. When they held the 101 of an h2c
// upgrade, it returns the upgraded exchange and how many of p's last bytes
// came after the 101 (the server's first HTTP/2 bytes): the layer then
// switches to HTTP/2 (layer.switchH2C).
func (h *h1Conn) feed(d int, p []byte, t bytetime.Times) (h2c *Exchange, tail int64) {
	if d == h.reqDir {
		h.req.Feed(p, t, h.emitReq)
		return nil, 0
	}
	tunnel := h.resp.Stats().TunnelBytes
	h.resp.Feed(p, t, h.emitResp)
	if h.h2c == nil {
		return nil, 0
	}
	h2c, h.h2c = h.h2c, nil
	return h2c, h.resp.Stats().TunnelBytes - tunnel
}

func (h *h1Conn) gap(d int, n int64, t bytetime.Times) {
	if d == h.reqDir {
		h.req.Gap(n, t, h.emitReq)
	} else {
		h.resp.Gap(n, t, h.emitResp)
	}
}

func (h *h1Conn) close(t bytetime.Times) {
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

func (h *h1Conn) newExchange() *Exchange { return h.heads.exchange(h.out.conn()) }

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
	h.out.deliver(ex)
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
	h.heads.request(ex, m)
	r.HeaderBytes = m.HeaderBytes
	r.BodyBytes = -1
}

// splitTarget sets r's Host (the Host field, else the authority of an
// absolute-form target), Path and Query from its Target and fields.
func splitTarget(r *Request) {
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
	h.heads.response(ex, m)
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
		msg.Trailer = h.heads.trailer(m)
	}
	if msg.HeaderBytes == 0 {
		msg.HeaderBytes = m.HeaderBytes
	}
}
