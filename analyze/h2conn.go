package analyze

import (
	"bytes"
	"net/url"
	"strconv"
	"strings"

	"github.com/rewind-tools/rewind/analyze/bytetime"
	"github.com/rewind-tools/rewind/analyze/http1"
	"github.com/rewind-tools/rewind/analyze/http2"
	"github.com/rewind-tools/rewind/capture"
	"golang.org/x/net/http2/hpack"
)

// h2Conn turns the streams of one HTTP/2 layer into exchanges, one per
// stream, emitted in the order the streams complete.
type h2Conn struct {
	out exchangeOut
	p   *http2.Conn
	// upgrade is the HTTP/1.1 request of an h2c upgrade: stream 1 carries
	// its response.
	upgrade *Exchange
}

// newH2Conn starts HTTP/2 parsing. reqDir is the direction carrying the
// client's bytes, -1 when unknown (the parser then infers it).
func newH2Conn(out exchangeOut, o protoOpts, reqDir int, midStream bool, upgrade *Exchange) *h2Conn {
	h := &h2Conn{out: out, upgrade: upgrade}
	h.p = http2.NewConn(http2.Options{
		MaxBodyCapture: o.maxBody,
		ClientWire:     reqDir,
		MidStream:      midStream,
		Upgraded:       upgrade != nil,
	}, h.onStream)
	return h
}

func (h *h2Conn) feed(d int, p []byte, t bytetime.Times) { h.p.Feed(d, p, t) }

func (h *h2Conn) gap(d int, n int64, t bytetime.Times) { h.p.Gap(d, n, t) }

func (h *h2Conn) close(t bytetime.Times) { h.p.Close(t) }

// startHTTP2 starts the HTTP/2 parser of a layer whose client direction is
// reqDir (-1: unknown, joined mid-connection).
func (l *layer) startHTTP2(reqDir int) {
	c := l.cs.c
	// The preface (or a server's first SETTINGS) gives the direction; a
	// frame sequence found mid-stream does not.
	midStream := reqDir < 0
	if reqDir < 0 {
		switch c.Role {
		case capture.RoleServer:
			reqDir = dirIdx(capture.Ingress)
		case capture.RoleClient:
			reqDir = dirIdx(capture.Egress)
		}
	}
	l.h2 = newH2Conn(l.cs, l.cs.t.proto, reqDir, midStream, nil)
	c.Proto = "HTTP/2"
}

// h2cUpgrade reports whether the response m switching protocols (its
// exchange ex) is an h2c upgrade; the exchange then waits for stream 1,
// and feed returns it for the layer to switch.
func (h *h1Conn) h2cUpgrade(ex *Exchange, m *http1.Message) bool {
	if m.StatusCode != 101 {
		return false
	}
	for i := 0; i < m.NumHeaders(); i++ {
		k, v := m.HeaderAt(i)
		if bytes.EqualFold(k, []byte("Upgrade")) && bytes.EqualFold(bytes.TrimSpace(v), []byte("h2c")) {
			h.h2c = ex
			ex.pooled = false // the HTTP/2 layer takes it over
			return true
		}
	}
	return false
}

// switchH2C turns the layer into HTTP/2 after an h2c 101 (its exchange
// ex); the last tail bytes of p, the chunk that held the 101, are the
// server's first HTTP/2 bytes.
func (l *layer) switchH2C(ex *Exchange, p []byte, tail int64, t bytetime.Times) {
	reqDir := l.h1.reqDir
	l.kind = kindHTTP2
	l.cs.c.Proto = "HTTP/2"
	l.h2 = newH2Conn(l.cs, l.cs.t.proto, reqDir, false, ex)
	if tail > 0 && tail <= int64(len(p)) {
		l.h2.feed(1-reqDir, p[int64(len(p))-tail:], t)
	}
}

func (h *h2Conn) onStream(s *http2.Stream) {
	c := h.out.conn()
	var ex *Exchange
	if s.Upgraded && h.upgrade != nil {
		ex, h.upgrade = h.upgrade, nil
		ex.Flags |= FlagUpgrade
		ex.Response = Response{}
	} else {
		ex = &Exchange{Conn: c, Timings: Timings{Unknown, Unknown, Unknown, Unknown}}
		fillH2Request(&ex.Request, &s.Request)
	}
	ex.Proto = "HTTP/2"
	ex.StreamID = s.ID
	fillH2Message(&ex.Response.Message, &s.Response)
	if st, ok := http2.Get(s.Response.Header, ":status"); ok {
		ex.Response.Status, _ = strconv.Atoi(st)
	}
	switch {
	case s.Reset:
		ex.Flags |= FlagReset
	case s.Refused:
		ex.Flags |= FlagReset | FlagNoResponse
	}
	if s.Incomplete {
		ex.Flags |= FlagIncomplete
	}
	if s.Desynced() {
		ex.Flags |= FlagDesynced
	}
	if s.Request.BodyMissing || s.Response.BodyMissing {
		ex.Flags |= FlagTruncated
	}
	if !s.Response.HeadersSeen && len(s.Response.Trailer) == 0 {
		ex.Flags |= FlagNoResponse
		if !s.Reset && !s.Refused {
			ex.Flags |= FlagIncomplete
		}
	}
	if s.GRPC {
		ex.GRPC = grpcInfo(ex, s)
	}
	if c.Role == capture.RoleUnknown {
		if w, ok := h.p.ClientWire(); ok {
			if w == dirIdx(capture.Ingress) {
				c.Role = capture.RoleServer
			} else {
				c.Role = capture.RoleClient
			}
		}
	}
	setTimings(ex)
	h.out.deliver(ex)
}

// fillH2Request fills a request from a stream's client side; pseudo-headers
// stay in Header under their names (":method", …), as browsers export them
// in HAR.
func fillH2Request(r *Request, m *http2.Message) {
	fillH2Message(&r.Message, m)
	r.Method, _ = http2.Get(m.Header, ":method")
	r.Target, _ = http2.Get(m.Header, ":path")
	r.Host, _ = http2.Get(m.Header, ":authority")
	if r.Host == "" {
		r.Host, _ = http2.Get(m.Header, "host")
	}
	if q := strings.IndexByte(r.Target, '?'); q >= 0 {
		r.Path, r.Query = r.Target[:q], r.Target[q+1:]
	} else {
		r.Path = r.Target
	}
}

func fillH2Message(msg *Message, m *http2.Message) {
	msg.Proto = "HTTP/2"
	msg.Header = h2Fields(m.Header)
	msg.Trailer = h2Fields(m.Trailer)
	msg.BodyBytes = -1
	if m.Seen && !m.LengthUnknown {
		msg.BodyBytes = m.BodyBytes
	}
	if len(m.Body) > 0 {
		msg.Body = append([]byte(nil), m.Body...)
	}
	msg.BodyTruncated = m.BodyTruncated
	msg.Start, msg.End = m.Start, m.End
	msg.HeaderBytes = m.HeaderBytes
}

// h2Fields copies fields; their strings are the decoder's and immutable.
func h2Fields(f []hpack.HeaderField) Fields {
	if len(f) == 0 {
		return nil
	}
	out := make(Fields, len(f))
	for i := range f {
		out[i] = Field{Name: f[i].Name, Value: f[i].Value}
	}
	return out
}

func grpcInfo(ex *Exchange, s *http2.Stream) *GRPC {
	g := &GRPC{Status: -1, RequestMsgs: s.Request.GRPC.Msgs, ResponseMsgs: s.Response.GRPC.Msgs}
	g.Service, g.Method, _ = http2.GRPCMethod(ex.Request.Path)
	// grpc-status comes in the trailers, or in the headers of a
	// trailers-only response.
	st, ok := http2.Get(s.Response.Trailer, "grpc-status")
	msg, _ := http2.Get(s.Response.Trailer, "grpc-message")
	if !ok {
		st, ok = http2.Get(s.Response.Header, "grpc-status")
		msg, _ = http2.Get(s.Response.Header, "grpc-message")
	}
	if ok {
		if n, err := strconv.Atoi(st); err == nil {
			g.Status = n
		}
	}
	if m, err := url.PathUnescape(msg); err == nil {
		msg = m // grpc-message is percent-encoded
	}
	g.Message = msg
	return g
}
