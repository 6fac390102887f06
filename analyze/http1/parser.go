// Package http1 parses one direction of an HTTP/1.x connection incrementally,
// as an observer: bytes arrive in arbitrary chunks, parts of the stream may be
// missing (gaps), and the recording may have joined the connection part-way.
//
// A [Parser] never fails: malformed messages are reported with
// [Message.Error] set, and whenever it cannot tell where the next message
// begins it loses sync and scans for the next plausible request or status
// line, counting what it skipped in [Stats]. Memory is bounded by
// [Options.MaxHeaderBytes] and [Options.MaxBodyCapture]; steady-state parsing
// allocates nothing.
package http1

import "github.com/rewind-tools/rewind/analyze/bytetime"

// Default limits; see [Options].
const (
	DefaultMaxBodyCapture = 64 << 10
	DefaultMaxHeaderBytes = 64 << 10
)

// maxQueuedMethods bounds the ExpectResponseTo queue; older entries are
// dropped when responses never come.
const maxQueuedMethods = 1024

// Options tunes a [Parser].
type Options struct {
	// MaxBodyCapture is how many body bytes of each message are kept for
	// display in Message.Body. 0 keeps none; use DefaultMaxBodyCapture
	// (or DefaultOptions) for the usual 64 KiB.
	MaxBodyCapture int
	// MaxHeaderBytes bounds the start line plus header block, and the
	// trailer section; a longer one is an error and the parser resyncs.
	// 0 or less means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MidStream says the stream was joined part-way (the recording began
	// after the connection opened): the parser starts by scanning for a
	// start line instead of expecting one at the first byte.
	MidStream bool
}

// DefaultOptions returns the options with the default limits.
func DefaultOptions() Options {
	return Options{MaxBodyCapture: DefaultMaxBodyCapture, MaxHeaderBytes: DefaultMaxHeaderBytes}
}

// Stats counts what a [Parser] did.
type Stats struct {
	// Messages counts messages emitted in State Complete.
	Messages int64
	// Errors counts messages emitted with Error set.
	Errors int64
	// Resyncs counts the times the parser lost sync and scanned.
	Resyncs int64
	// SkippedBytes counts bytes that belong to no emitted message: skipped
	// while resyncing, lost in gaps outside messages, or sent after a
	// message that closed the connection.
	SkippedBytes int64
	// TunnelBytes counts bytes after an upgrade (CONNECT, 101), gaps
	// included.
	TunnelBytes int64
}

// pstate is where the parser is in the stream. A message goes through the
// states in the order of the files that handle them: headers.go (start line
// and header block), framing.go (how the body is delimited), body.go (body,
// chunks, trailers); resync.go finds the next message when sync is lost.
type pstate uint8

const (
	stStart     pstate = iota // between messages, in sync
	stHeaders                 // inside start line or header block
	stBody                    // Content-Length body
	stBodyClose               // body delimited by the end of the stream
	stChunkSize               // chunk-size line
	stChunkData               // chunk data
	stChunkEnd                // CRLF after chunk data
	stTrailers                // trailer section
	stResync                  // lost sync: scanning for a start line
	stTunnel                  // after an upgrade
	stIgnore                  // after a "Connection: close" message
	stClosed                  // after Close
)

// Parser parses one direction of an HTTP/1.x connection. Feed it the stream
// in order with [Parser.Feed], report missing bytes with [Parser.Gap] and the
// end of the stream with [Parser.Close]. A Parser is not safe for concurrent
// use.
//
// Upgrades: a response 101 or a 2xx to CONNECT, and a CONNECT request, turn
// the rest of the stream into a tunnel. A request asking for an upgrade
// ("Connection: upgrade" + "Upgrade") is marked Upgrade too, but since the
// server may refuse, the request parser keeps parsing HTTP when the next bytes
// start with a plausible request line and turns to tunnel mode otherwise.
type Parser struct {
	kind  Kind
	opts  Options
	state pstate
	m     Message
	emit  func(*Message)
	t     bytetime.Times
	lastT uint64 // Last of the most recent chunk
	stats Stats

	hdr []byte // start line + header block of the current message
	// fieldsParsed says fastBlock has already parsed hdr's fields.
	fieldsParsed bool
	trl          []byte // trailer section
	fold         []byte // unfolded values
	body         []byte // captured body
	line         []byte // partial chunk-size line or resync line
	fields       []field
	// fast says where the header block fastBlock parsed lies in hdr, and
	// its fields in fields; prev is the same for the previous message,
	// whose hdr and fields begin keeps intact (in prevHdr and prevFields)
	// while the current message is parsed. A keep-alive peer sends the
	// same header block again and again: fastBlock then takes the previous
	// message's fields instead of parsing the block anew.
	fast, prev fastParse
	prevHdr    []byte
	prevFields []field

	lineStart   int  // offset in hdr (or trl) of the unfinished line
	haveStart   bool // start line of the current message parsed
	sl          startLine
	capture     bool  // still capturing the body
	remaining   int64 // body or chunk bytes left
	chunkEndCR  bool  // CR after chunk data seen
	lineT       uint64
	resynced    bool // next message follows a loss of sync
	probe       bool // after an upgrade request: non-HTTP bytes mean tunnel
	connClose   bool
	headersSent bool // HeadersComplete emitted for the current message

	methods []expected // requests awaiting responses (FIFO)
	mHead   int
}

// expected is a request a Response parser waits for the answer to.
type expected struct {
	method string
	simple bool // an HTTP/0.9 simple request: the answer may be a bare body
}

// NewParser returns a parser for one direction of a connection.
func NewParser(kind Kind, opts Options) *Parser {
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if opts.MaxBodyCapture < 0 {
		opts.MaxBodyCapture = 0
	}
	p := &Parser{kind: kind, opts: opts}
	p.Reset()
	return p
}

// Reset makes the parser ready for a new stream, keeping its buffers and
// options but dropping its statistics and the method queue.
func (p *Parser) Reset() {
	p.state = stStart
	p.stats = Stats{}
	p.methods = p.methods[:0]
	p.mHead = 0
	p.resynced = false
	p.probe = false
	p.line = p.line[:0]
	if p.opts.MidStream {
		p.state = stResync
		p.resynced = true
		p.stats.Resyncs++
	}
}

// Stats returns the counters so far.
func (p *Parser) Stats() Stats { return p.stats }

// Tunneling reports whether the stream has turned into a tunnel.
func (p *Parser) Tunneling() bool { return p.state == stTunnel }

// ExpectResponseTo tells a Response parser the method of the next request
// sent on the connection; responses consume the queue in order (pipelining).
// The method decides framing for HEAD (no body) and CONNECT (2xx: tunnel).
// When the queue is empty the parser assumes GET.
func (p *Parser) ExpectResponseTo(method string) {
	p.expect(expected{method: method})
}

// ExpectHTTP09Response is [Parser.ExpectResponseTo] for an HTTP/0.9 simple
// request (no version, no headers). Its answer is either a status line and
// headers, as servers that speak HTTP/1.x send anyway, or a bare HTTP/0.9
// body: everything up to the end of the stream. The parser tells them apart
// by the first bytes: anything but "HTTP/" starts a bare body, reported as
// a response with StatusCode 0 and version 0.9.
func (p *Parser) ExpectHTTP09Response(method string) {
	p.expect(expected{method: method, simple: true})
}

func (p *Parser) expect(e expected) {
	if len(p.methods)-p.mHead >= maxQueuedMethods {
		p.mHead++
	}
	if p.mHead > 0 && p.mHead == len(p.methods) {
		p.methods, p.mHead = p.methods[:0], 0
	} else if p.mHead > 64 && p.mHead*2 > len(p.methods) {
		n := copy(p.methods, p.methods[p.mHead:])
		p.methods, p.mHead = p.methods[:n], 0
	}
	p.methods = append(p.methods, e)
}

func (p *Parser) peekMethod() string {
	if p.mHead < len(p.methods) {
		return p.methods[p.mHead].method
	}
	return "GET"
}

// expectSimple says the next response answers an HTTP/0.9 request.
func (p *Parser) expectSimple() bool {
	return p.mHead < len(p.methods) && p.methods[p.mHead].simple
}

func (p *Parser) popMethod() {
	if p.mHead < len(p.methods) {
		p.methods[p.mHead] = expected{}
		p.mHead++
		if p.mHead == len(p.methods) {
			p.methods, p.mHead = p.methods[:0], 0
		}
	}
}

// Feed parses b, whose first and last bytes arrived at times t. For every
// message whose header block completes, and for every message that ends, it
// calls emit (see [State]); the Message is only valid during that call.
func (p *Parser) Feed(b []byte, t bytetime.Times, emit func(*Message)) {
	p.t = t
	p.emit = emit
	for len(b) > 0 {
		n, st := len(b), p.state
		switch p.state {
		case stStart:
			b = p.start(b)
		case stHeaders:
			b = p.headers(b)
		case stBody:
			b = p.bodyLen(b)
		case stBodyClose:
			p.takeBody(b)
			b = nil
		case stChunkSize:
			b = p.chunkSize(b)
		case stChunkData:
			b = p.chunkData(b)
		case stChunkEnd:
			b = p.chunkEnd(b)
		case stTrailers:
			b = p.trailers(b)
		case stResync:
			b = p.resync(b)
		case stTunnel:
			p.stats.TunnelBytes += int64(len(b))
			b = nil
		case stIgnore, stClosed:
			p.stats.SkippedBytes += int64(len(b))
			b = nil
		}
		if len(b) == n && p.state == st {
			// No progress: cannot happen by construction; never loop.
			p.stats.SkippedBytes += int64(len(b))
			break
		}
	}
	p.lastT = t.Last
	p.emit = nil
}

// Gap tells the parser that n bytes of the stream are missing at this point
// (the capture truncated them or events were lost); t is when they would
// have arrived. Inside a body of known length (or delimited by close, or a
// chunk's data) the bytes are skipped and the message marked Truncated;
// anywhere else the parser emits the message in progress as Incomplete and
// resyncs at the next plausible start line.
func (p *Parser) Gap(n int64, t bytetime.Times, emit func(*Message)) {
	if n <= 0 {
		return
	}
	p.t = t
	p.emit = emit
	defer func() { p.emit = nil; p.lastT = t.Last }()
	switch p.state {
	case stBody:
		k := min(n, p.remaining)
		p.skipBody(k)
		p.remaining -= k
		n -= k
		if p.remaining == 0 {
			p.m.End = t.Last
			p.complete()
		}
		if n > 0 {
			p.loseSync()
			p.stats.SkippedBytes += n
		}
	case stBodyClose:
		p.skipBody(n)
	case stChunkData:
		if n <= p.remaining {
			p.skipBody(n)
			p.remaining -= n
			if p.remaining == 0 {
				p.state = stChunkEnd
				p.chunkEndCR = false
			}
			return
		}
		if excess := n - p.remaining; excess <= 2 {
			// The gap ends inside the CRLF after the chunk's data (a
			// client writes a chunk's size line, data and CRLF in one
			// call, and the snaplen cut the call): the framing goes on at
			// the next size line.
			p.skipBody(p.remaining)
			p.remaining = 0
			p.m.WireBytes += excess
			if excess == 2 {
				p.state = stChunkSize
			} else {
				p.state, p.chunkEndCR = stChunkEnd, true
			}
			return
		}
		p.skipBody(p.remaining)
		p.stats.SkippedBytes += n - p.remaining
		p.m.Incomplete = true
		p.m.LengthUnknown = true // the gap ran on past this chunk's framing
		p.m.End = t.Last
		p.complete()
		p.loseSync()
	case stChunkSize, stChunkEnd, stTrailers:
		p.m.Truncated = true
		p.m.Incomplete = true
		p.m.LengthUnknown = p.state != stTrailers // trailers follow the last chunk
		p.m.WireBytes += n + p.pendingWire()
		p.m.End = t.Last
		p.complete()
		p.loseSync()
	case stHeaders:
		p.stats.SkippedBytes += n
		p.cutHeaders()
		p.loseSync()
	case stStart, stIgnore:
		p.stats.SkippedBytes += n
		p.loseSync()
	case stResync:
		p.stats.SkippedBytes += n
		p.line = p.line[:0]
	case stTunnel:
		p.stats.TunnelBytes += n
	case stClosed:
		p.stats.SkippedBytes += n
	}
}

// Close tells the parser the stream ended (the connection closed) at time t.
// A body delimited by close completes; a message cut short is emitted as
// Incomplete. Feed and Gap do nothing after Close, until Reset.
func (p *Parser) Close(t bytetime.Times, emit func(*Message)) {
	p.t = t
	p.emit = emit
	switch p.state {
	case stBodyClose:
		p.complete()
	case stBody, stChunkSize, stChunkData, stChunkEnd, stTrailers:
		p.m.Incomplete = true
		p.m.WireBytes += p.pendingWire()
		p.complete()
	case stHeaders:
		p.cutHeaders()
	case stResync:
		p.stats.SkippedBytes += int64(len(p.line))
		p.line = p.line[:0]
	}
	p.state = stClosed
	p.emit = nil
}

// pendingWire counts bytes held in a partial chunk-size line or trailer
// section, not yet in WireBytes.
func (p *Parser) pendingWire() int64 {
	switch p.state {
	case stChunkSize:
		return int64(len(p.line))
	case stTrailers:
		return int64(len(p.trl))
	}
	return 0
}

// fail ends the current message with a fatal error and resyncs.
func (p *Parser) fail(err string) {
	p.setErr(err)
	if p.m.End == 0 {
		p.m.End = p.t.Last
	}
	p.complete()
	p.loseSync()
}

// setErr records the first problem of the message.
func (p *Parser) setErr(err string) {
	if !p.m.Error {
		p.m.Error = true
		p.m.Err = err
	}
}

// emitMsg passes the message to the callback in state st.
func (p *Parser) emitMsg(st State) {
	m := &p.m
	m.State = st
	m.block, m.trailer, m.fold, m.fields = p.hdr, p.trl, p.fold, p.fields
	m.firstOff, m.firstLen = 0, 0
	if p.haveStart {
		if p.kind == Request {
			m.Target = p.hdr[p.sl.tOff : p.sl.tOff+p.sl.tLen : p.sl.tOff+p.sl.tLen]
			m.firstOff, m.firstLen = int32(p.sl.tOff), int32(p.sl.tLen)
		} else {
			m.Reason = p.hdr[p.sl.rOff : p.sl.rOff+p.sl.rLen : p.sl.rOff+p.sl.rLen]
			m.firstOff, m.firstLen = int32(p.sl.rOff), int32(p.sl.rLen)
		}
	}
	if st == Complete {
		m.Body = p.body
		if m.BodyBytes > int64(len(p.body)) {
			m.BodyTruncated = true
		}
	} else {
		m.Body = nil
	}
	if p.emit != nil {
		p.emit(m)
	}
}

// complete emits the current message as Complete and picks the next state.
func (p *Parser) complete() {
	m := &p.m
	if m.End == 0 {
		m.End = p.lastT
	}
	if !p.headersSent {
		m.nHeader = len(p.fields)
	}
	p.stats.Messages++
	if m.Error {
		p.stats.Errors++
	}
	p.emitMsg(Complete)
	switch {
	case m.Upgrade && p.kind == Request && m.Method != "CONNECT" && m.Method != "PRI":
		p.state = stStart
		p.probe = true
	case m.Upgrade:
		p.state = stTunnel
	case p.connClose && !m.Interim:
		p.state = stIgnore
	default:
		p.state = stStart
	}
}
