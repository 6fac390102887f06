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

import (
	"bytes"

	"github.com/rewind-tools/rewind/analyze/bytetime"
)

// Default limits; see [Options].
const (
	DefaultMaxBodyCapture = 64 << 10
	DefaultMaxHeaderBytes = 64 << 10
)

// resyncLineMax bounds how much of an unfinished line the parser keeps while
// scanning for a start line; request lines longer than this are not found.
const resyncLineMax = 16 << 10

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

// cutHeaders ends a message whose header block never completed: it is
// emitted as Incomplete when its start line was seen, dropped otherwise.
func (p *Parser) cutHeaders() {
	if !p.haveStart {
		p.stats.SkippedBytes += int64(len(p.hdr))
		p.state = stStart
		return
	}
	p.m.Incomplete = true
	p.m.HeaderBytes = int64(len(p.hdr))
	p.m.WireBytes = int64(len(p.hdr))
	// Report the fields received in full.
	first := bytes.IndexByte(p.hdr, '\n') + 1
	if first > 0 && first <= p.lineStart && p.lineStart <= len(p.hdr) {
		if err := p.parseFields(p.hdr[:p.lineStart], first, srcBlock); err != "" {
			p.setErr(err)
		}
	}
	p.m.End = p.lastT
	p.complete()
}

// loseSync switches to scanning for the next start line.
func (p *Parser) loseSync() {
	p.state = stResync
	p.line = p.line[:0]
	p.resynced = true
	p.probe = false
	p.stats.Resyncs++
}

// begin starts a new message whose first byte arrived at time start.
func (p *Parser) begin(start uint64) {
	p.m = Message{Kind: p.kind, ContentLength: -1, Start: start, Resynced: p.resynced}
	p.resynced = false
	// The previous message's head and fields stay as they are, for
	// fastBlock to compare with: the buffers alternate.
	p.hdr, p.prevHdr = p.prevHdr[:0], p.hdr
	p.fields, p.prevFields = p.prevFields[:0], p.fields
	p.fast, p.prev = fastParse{}, p.fast
	p.trl = p.trl[:0]
	p.fold = p.fold[:0]
	p.body = p.body[:0]
	p.lineStart = 0
	p.haveStart = false
	p.headersSent = false
	p.connClose = false
	p.capture = p.opts.MaxBodyCapture > 0
	p.state = stHeaders
}

// start handles the bytes between messages.
func (p *Parser) start(b []byte) []byte {
	if p.kind == Response && p.expectSimple() && !maybeStatusLine(b) {
		p.simpleResponse()
		return b
	}
	i := 0
	for i < len(b) && (b[i] == '\r' || b[i] == '\n') {
		i++
	}
	b = b[i:]
	if len(b) == 0 {
		return b
	}
	if p.probe && !('A' <= b[0] && b[0] <= 'Z') {
		p.state = stTunnel
		p.probe = false
		return b
	}
	p.begin(p.t.First)
	return b
}

// maybeStatusLine reports whether b starts with "HTTP/", or with a part of
// it when b is shorter.
func maybeStatusLine(b []byte) bool {
	const v = "HTTP/"
	n := min(len(b), len(v))
	return string(b[:n]) == v[:n]
}

// simpleResponse starts an HTTP/0.9 response: no status line, no headers,
// a body delimited by the end of the stream.
func (p *Parser) simpleResponse() {
	p.begin(p.t.First)
	m := &p.m
	m.ProtoMajor, m.ProtoMinor = 0, 9
	m.Method = p.peekMethod()
	p.popMethod()
	m.HeadersDone = p.t.First
	p.headersSent = true
	p.emitMsg(HeadersComplete)
	m.End = p.t.First
	p.state = stBodyClose
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

// headers accumulates the start line and header block.
func (p *Parser) headers(b []byte) []byte {
	max := p.opts.MaxHeaderBytes
	from := 0 // b[:from] is already appended to hdr
	pos := 0
	for {
		i := bytes.IndexByte(b[pos:], '\n')
		if i < 0 {
			if len(p.hdr)+len(b)-from > max {
				return p.headerOverflow(b, from)
			}
			p.hdr = append(p.hdr, b[from:]...)
			return nil
		}
		end := pos + i + 1
		if len(p.hdr)+end-from > max {
			return p.headerOverflow(b, from)
		}
		lineLen := len(p.hdr) - p.lineStart + end - from
		blank := lineLen == 1
		if lineLen == 2 {
			c := byte(0)
			if end-2 >= from {
				c = b[end-2]
			} else {
				c = p.hdr[len(p.hdr)-1]
			}
			blank = c == '\r'
		}
		if !p.haveStart || blank {
			p.hdr = append(p.hdr, b[from:end]...)
			from = end
			line := p.hdr[p.lineStart:]
			p.lineStart = len(p.hdr)
			if !p.haveStart {
				if !p.startLine(line) {
					return b[end:]
				}
				// The common case: the whole header block follows in b,
				// every field line well formed. One pass finds its end
				// and parses its fields.
				if n := p.fastBlock(b[end:min(len(b), end+max-len(p.hdr))]); n >= 0 {
					p.hdr = append(p.hdr, b[end:end+n]...)
					p.lineStart = len(p.hdr)
					p.m.HeadersDone = p.t.Last
					p.headerBlockDone()
					return b[end+n:]
				}
			} else {
				p.m.HeadersDone = p.t.Last
				p.headerBlockDone()
				return b[end:]
			}
		} else {
			p.lineStart = len(p.hdr) + end - from
		}
		pos = end
	}
}

// headerOverflow handles a header block over the limit: the lines complete
// so far make the reported message, the unfinished line goes to resync (so
// that the result does not depend on where the stream was cut).
func (p *Parser) headerOverflow(b []byte, from int) []byte {
	var partial []byte
	if upto := p.lineStart - len(p.hdr) + from; upto >= from {
		p.hdr = append(p.hdr, b[from:upto]...)
		b = b[upto:]
	} else {
		partial = p.hdr[p.lineStart:]
		p.hdr = p.hdr[:p.lineStart]
		b = b[from:]
	}
	if p.probe {
		p.probe = false
		p.stats.TunnelBytes += int64(len(p.hdr) + len(partial) + len(b))
		p.state = stTunnel
		return nil
	}
	if !p.haveStart {
		// Not a message we can report: just garbage.
		p.stats.SkippedBytes += int64(len(p.hdr))
		p.loseSync()
	} else {
		p.m.HeaderBytes = int64(len(p.hdr))
		p.m.WireBytes = p.m.HeaderBytes
		p.fail(errHeaderTooLarge)
	}
	p.resyncFrom(partial)
	return b
}

// resyncFrom starts the resync line buffer with bytes already consumed.
func (p *Parser) resyncFrom(partial []byte) {
	if len(partial) == 0 {
		return
	}
	p.stats.SkippedBytes += int64(len(partial))
	if len(partial) > resyncLineMax/2 {
		partial = partial[len(partial)-resyncLineMax/2:]
	}
	p.line = append(p.line[:0], partial...)
	p.lineT = p.m.Start
}

// startLine parses the first line of a message; it returns false when the
// message was ended (fatal error or simple request).
func (p *Parser) startLine(line []byte) bool {
	p.sl = startLine{}
	var err string
	if p.kind == Request {
		err = parseRequestLine(line, &p.sl)
	} else {
		err = parseStatusLine(line, &p.sl)
	}
	if err != "" {
		if p.probe {
			// After an upgrade request: the server accepted it and this is
			// the new protocol.
			p.probe = false
			p.stats.TunnelBytes += int64(len(p.hdr))
			p.state = stTunnel
			return false
		}
		p.m.HeaderBytes = int64(len(p.hdr))
		p.m.WireBytes = p.m.HeaderBytes
		p.fail(err)
		return false
	}
	p.probe = false
	p.haveStart = true
	p.m.ProtoMajor, p.m.ProtoMinor = p.sl.major, p.sl.minor
	p.m.StatusCode = p.sl.status
	if p.kind == Request {
		p.m.Method = methodString(p.sl.method)
	} else {
		p.m.Method = p.peekMethod()
	}
	if p.sl.warn != "" {
		p.setErr(p.sl.warn)
	}
	if p.sl.simple {
		p.m.HeaderBytes = int64(len(p.hdr))
		p.m.WireBytes = p.m.HeaderBytes
		p.m.HeadersDone = p.t.Last
		p.m.End = p.t.Last
		p.emitMsg(HeadersComplete)
		p.complete()
		return false
	}
	return true
}

// headerBlockDone parses the fields of a complete header block, decides the
// body framing and emits HeadersComplete.
func (p *Parser) headerBlockDone() {
	m := &p.m
	m.HeaderBytes = int64(len(p.hdr))
	m.WireBytes = m.HeaderBytes
	if p.fieldsParsed {
		p.fieldsParsed = false
	} else {
		first := bytes.IndexByte(p.hdr, '\n') + 1
		if err := p.parseFields(p.hdr, first, srcBlock); err != "" {
			p.fail(err)
			return
		}
	}
	m.nHeader = len(p.fields)

	// Framing-relevant fields.
	var (
		cl           int64 = -1
		hasTE        bool
		chunkedFinal bool
		chunkedCount int
		upgradeHdr   bool
		connUpgrade  bool
		keepAlive    bool
		fatal        string
	)
	for i := range p.fields {
		f := &p.fields[i]
		switch f.nLen {
		case 14, 17, 10, 7:
		default:
			continue // not a name that frames the message
		}
		var name, v []byte
		if f.nSrc == srcBlock && f.vSrc == srcBlock {
			name, v = p.hdr[f.nOff:f.nOff+f.nLen], p.hdr[f.vOff:f.vOff+f.vLen]
		} else {
			name, v = m.atWith(p, i)
		}
		switch len(name) {
		case 14:
			if !equalFold(name, "content-length") {
				continue
			}
			n, e := parseContentLength(v)
			if e != "" {
				fatal = e
				continue
			}
			if cl >= 0 {
				if n != cl {
					fatal = errCLConflict
					continue
				}
				p.setErr(errCLDuplicate)
			} else if e2 := clListDuplicate(v); e2 {
				p.setErr(errCLDuplicate)
			}
			cl = n
		case 17:
			if !equalFold(name, "transfer-encoding") {
				continue
			}
			hasTE = true
			last, nChunked := lastCoding(v)
			chunkedCount += nChunked
			if last != nil {
				chunkedFinal = equalFold(last, "chunked")
			}
		case 10:
			if !equalFold(name, "connection") {
				continue
			}
			cl, ka, up := connectionTokens(v)
			p.connClose = p.connClose || cl
			keepAlive = keepAlive || ka
			connUpgrade = connUpgrade || up
		case 7:
			if equalFold(name, "upgrade") {
				upgradeHdr = true
			}
		}
	}
	if m.ProtoMajor == 1 && m.ProtoMinor == 0 && !keepAlive {
		p.connClose = true
	}
	m.ConnClose = p.connClose
	if fatal != "" && !hasTE {
		p.fail(fatal)
		return
	}
	if chunkedCount > 1 {
		p.setErr(errTEChunkedTwice)
	}

	const (
		fNone = iota
		fLength
		fChunked
		fClose
		fTunnel
	)
	framing := fNone
	if p.kind == Request {
		switch {
		case hasTE:
			if cl >= 0 || fatal != "" {
				p.setErr(errTECL)
			}
			if !chunkedFinal {
				p.fail(errTERequest)
				return
			}
			framing = fChunked
		case cl >= 0:
			framing = fLength
			m.ContentLength = cl
		}
		if m.Method == "CONNECT" || m.Method == "PRI" && string(p.hdr[p.sl.tOff:p.sl.tOff+p.sl.tLen]) == "*" {
			m.Upgrade = true
			framing = fTunnel
		} else if upgradeHdr && connUpgrade {
			m.Upgrade = true
		}
	} else {
		method := m.Method
		st := m.StatusCode
		switch {
		case st == 101:
			m.Upgrade = true
			framing = fTunnel
		case st < 200:
			m.Interim = true
		case method == "CONNECT" && st < 300:
			m.Upgrade = true
			framing = fTunnel
		case method == "HEAD" || st == 204 || st == 304:
			if cl >= 0 && !hasTE {
				m.ContentLength = cl
			}
		case hasTE:
			if cl >= 0 || fatal != "" {
				p.setErr(errTECL)
			}
			if chunkedFinal {
				framing = fChunked
			} else {
				framing = fClose
			}
		case cl >= 0:
			framing = fLength
			m.ContentLength = cl
		default:
			framing = fClose
		}
		if !m.Interim {
			p.popMethod()
		}
	}

	m.Chunked = framing == fChunked
	p.headersSent = true
	p.emitMsg(HeadersComplete)
	switch framing {
	case fNone, fTunnel:
		m.End = p.t.Last
		p.complete()
	case fLength:
		if cl == 0 {
			m.End = p.t.Last
			p.complete()
			return
		}
		p.remaining = cl
		p.state = stBody
	case fChunked:
		p.state = stChunkSize
		p.line = p.line[:0]
	case fClose:
		m.End = p.t.Last
		p.state = stBodyClose
	}
}

// atWith is at() before the message buffers are attached at emission.
func (m *Message) atWith(p *Parser, i int) (name, value []byte) {
	m.block, m.trailer, m.fold, m.fields = p.hdr, p.trl, p.fold, p.fields
	return m.at(i)
}

// parseContentLength parses a Content-Length value, which may be a list of
// identical values.
func parseContentLength(v []byte) (int64, string) {
	var first int64 = -1
	for {
		var elem []byte
		i := bytes.IndexByte(v, ',')
		if i >= 0 {
			elem, v = trimOWS(v[:i]), v[i+1:]
		} else {
			elem = trimOWS(v)
		}
		if len(elem) == 0 {
			return 0, errCLInvalid
		}
		var n int64
		for _, c := range elem {
			if !isDigit(c) {
				return 0, errCLInvalid
			}
			if n > (1<<62)/10 {
				return 0, errCLInvalid
			}
			n = n*10 + int64(c-'0')
		}
		if first >= 0 && n != first {
			return 0, errCLConflict
		}
		first = n
		if i < 0 {
			return first, ""
		}
	}
}

// clListDuplicate reports whether a Content-Length value is a list.
func clListDuplicate(v []byte) bool { return bytes.IndexByte(v, ',') >= 0 }

// lastCoding returns the last transfer coding named in a Transfer-Encoding
// value (parameters removed) and how many times chunked appears.
func lastCoding(v []byte) (last []byte, chunked int) {
	for len(v) > 0 {
		var elem []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			elem, v = v[:i], v[i+1:]
		} else {
			elem, v = v, nil
		}
		if i := bytes.IndexByte(elem, ';'); i >= 0 {
			elem = elem[:i]
		}
		elem = trimOWS(elem)
		if len(elem) == 0 {
			continue
		}
		last = elem
		if equalFold(elem, "chunked") {
			chunked++
		}
	}
	return last, chunked
}

// wellFormedLine parses, in one pass, the field line at b[i:] when it takes
// the well-formed form: token ":" OWS value CRLF, the value all VCHAR,
// obs-text, SP or HTAB. It returns the field (offsets are base plus their
// index in b, in buffer src) and the index after the line; ok is false for
// any other form, which the caller's general path then reads.
func wellFormedLine(b []byte, i, base int, src uint8) (f field, next int, ok bool) {
	k := i
	for k < len(b) && tchar[b[k]] {
		k++
	}
	if k == i || k >= len(b) || b[k] != ':' {
		return field{}, 0, false
	}
	vs := k + 1
	for vs < len(b) && (b[vs] == ' ' || b[vs] == '\t') {
		vs++
	}
	e := vs + vcharRun(b[vs:])
	if e+1 >= len(b) || b[e] != '\r' || b[e+1] != '\n' {
		return field{}, 0, false
	}
	ve := e
	for ve > vs && (b[ve-1] == ' ' || b[ve-1] == '\t') {
		ve--
	}
	return field{
		nOff: int32(base + i), nLen: int32(k - i),
		vOff: int32(base + vs), vLen: int32(ve - vs),
		nSrc: src, vSrc: src,
	}, e + 2, true
}

// fastBlock parses, in one pass, a header block (after the start line)
// that lies whole in b and whose field lines all take the well-formed form
// parseFields reads fastest: token ":" OWS value CRLF, the value all VCHAR,
// SP or HTAB, then an empty CRLF line. It returns the block's length, with
// its fields appended to p.fields at offsets for when b[:n] is appended to
// p.hdr; or -1, leaving p.fields as it was, when the block does not end in
// b or a line takes any other form (the line-by-line path then handles
// it). Each line takes wellFormedLine's checks (parseFields's fast path);
// the fuzz test's split-invariance check holds the two to the same result.
//
// A block the same byte for byte as the previous message's (see
// Parser.prev) is not parsed again: its fields are the previous ones,
// moved to this block's offset.
func (p *Parser) fastBlock(b []byte) int {
	base := int32(len(p.hdr))
	fields := p.fields
	n0 := len(fields)
	if prev := p.prev; prev.ok && len(b) >= int(prev.n) && string(b[:prev.n]) == string(p.prevHdr[prev.off:prev.off+prev.n]) {
		same := p.prevFields[prev.f0 : prev.f0+prev.nf]
		if shift := base - prev.off; shift == 0 {
			// The same start line length too (the same request again,
			// the same status line): the fields are the same.
			fields = append(fields, same...)
		} else {
			for _, f := range same {
				f.nOff += shift
				f.vOff += shift
				fields = append(fields, f)
			}
		}
		p.fields = fields
		p.fieldsParsed = true
		p.fast = fastParse{ok: true, off: base, n: prev.n, f0: int32(n0), nf: prev.nf}
		return int(prev.n)
	}
	i := 0
	// wellFormedLine's loop, written out here: this is the parser's
	// hottest loop, and a call per line returning a field costs a third
	// of it.
	for i+1 < len(b) {
		if b[i] == '\r' {
			if b[i+1] != '\n' {
				break
			}
			p.fields = fields
			p.fieldsParsed = true
			p.fast = fastParse{ok: true, off: base, n: int32(i + 2), f0: int32(n0), nf: int32(len(fields) - n0)}
			return i + 2
		}
		k := i
		for k < len(b) && tchar[b[k]] {
			k++
		}
		if k == i || k >= len(b) || b[k] != ':' {
			break
		}
		vs := k + 1
		for vs < len(b) && (b[vs] == ' ' || b[vs] == '\t') {
			vs++
		}
		e := vs + vcharRun(b[vs:])
		if e+1 >= len(b) || b[e] != '\r' || b[e+1] != '\n' {
			break
		}
		ve := e
		for ve > vs && (b[ve-1] == ' ' || b[ve-1] == '\t') {
			ve--
		}
		fields = append(fields, field{
			nOff: base + int32(i), nLen: int32(k - i),
			vOff: base + int32(vs), vLen: int32(ve - vs),
			nSrc: srcBlock, vSrc: srcBlock,
		})
		i = e + 2
	}
	p.fields = fields[:n0]
	return -1
}

// fastParse says where a header block that fastBlock parsed lies: the
// bytes hdr[off:off+n] of its message, and the fields fields[f0:f0+nf].
type fastParse struct {
	ok             bool
	off, n, f0, nf int32
}

// parseFields parses the field lines of block from offset from up to the
// empty line, appending to p.fields. It returns a fatal error or "".
func (p *Parser) parseFields(block []byte, from int, src uint8) string {
	firstField := len(p.fields)
	i := from
	for i < len(block) {
		// Fast path: a well-formed line in one pass. Anything else takes
		// the general path below, from the line's start.
		if f, next, ok := wellFormedLine(block, i, 0, src); ok {
			p.fields = append(p.fields, f)
			i = next
			continue
		}
		j := bytes.IndexByte(block[i:], '\n')
		if j < 0 {
			break
		}
		line := block[i : i+j]
		lineOff := i
		i += j + 1
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		} else {
			p.setErr(errBareLF)
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(p.fields) == firstField {
				p.setErr(errLeadingWS)
				continue
			}
			p.setErr(errObsFold)
			p.unfold(block, &p.fields[len(p.fields)-1], trimOWS(line), src)
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return errFieldLine
		}
		name := line[:colon]
		if colon == 0 || !allTchar(name) {
			return errFieldName
		}
		value := line[colon+1:]
		vs := 0
		for vs < len(value) && (value[vs] == ' ' || value[vs] == '\t') {
			vs++
		}
		ve := len(value)
		for ve > vs && (value[ve-1] == ' ' || value[ve-1] == '\t') {
			ve--
		}
		for _, c := range value[vs:ve] {
			if !vchar[c] {
				p.setErr(errFieldValue)
				break
			}
		}
		vOff := lineOff + colon + 1 + vs
		p.fields = append(p.fields, field{
			nOff: int32(lineOff), nLen: int32(colon),
			vOff: int32(vOff), vLen: int32(ve - vs),
			nSrc: src, vSrc: src,
		})
	}
	return ""
}

// unfold appends a continuation line to f's value, joined by one SP.
func (p *Parser) unfold(block []byte, f *field, cont []byte, src uint8) {
	if f.vSrc != srcFold {
		var prev []byte
		if f.vSrc == srcBlock && src == srcBlock || f.vSrc == srcTrailer && src == srcTrailer {
			prev = block[f.vOff : f.vOff+f.vLen]
		}
		off := len(p.fold)
		p.fold = append(p.fold, prev...)
		f.vSrc, f.vOff = srcFold, int32(off)
	}
	if len(cont) == 0 {
		return
	}
	if f.vLen > 0 {
		p.fold = append(p.fold, ' ')
		f.vLen++
	}
	p.fold = append(p.fold, cont...)
	f.vLen += int32(len(cont))
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

// takeBody consumes body bytes.
func (p *Parser) takeBody(b []byte) {
	m := &p.m
	m.BodyBytes += int64(len(b))
	m.WireBytes += int64(len(b))
	m.End = p.t.Last
	if p.capture {
		room := p.opts.MaxBodyCapture - len(p.body)
		if room > len(b) {
			room = len(b)
		}
		if room > 0 {
			p.body = append(p.body, b[:room]...)
		}
	}
}

// skipBody accounts for n body bytes lost in a gap.
func (p *Parser) skipBody(n int64) {
	m := &p.m
	m.BodyBytes += n
	m.WireBytes += n
	m.Truncated = true
	m.End = p.t.Last
	p.capture = false
}

func (p *Parser) bodyLen(b []byte) []byte {
	n := int64(len(b))
	if n > p.remaining {
		n = p.remaining
	}
	p.takeBody(b[:n])
	p.remaining -= n
	if p.remaining == 0 {
		p.complete()
	}
	return b[n:]
}

// chunkSize reads a chunk-size line: hex size, extensions, line end.
func (p *Parser) chunkSize(b []byte) []byte {
	i := bytes.IndexByte(b, '\n')
	n := len(b)
	if i >= 0 {
		n = i + 1
	}
	if len(p.line)+n > p.opts.MaxHeaderBytes {
		// The whole line goes to resync, wherever the stream was cut.
		partial := p.line
		p.fail(errChunkTooLarge)
		p.resyncFrom(partial)
		return b
	}
	var line []byte
	if i < 0 {
		p.line = append(p.line, b...)
		return nil
	}
	if len(p.line) > 0 {
		p.line = append(p.line, b[:i+1]...)
		line = p.line
	} else {
		line = b[:i+1]
	}
	rest := b[i+1:]
	p.m.WireBytes += int64(len(line))
	p.line = p.line[:0]
	size, err := p.parseChunkLine(line)
	if err != "" {
		p.fail(err)
		return rest
	}
	if size == 0 {
		p.state = stTrailers
		p.lineStart = 0
		p.trl = p.trl[:0]
		return rest
	}
	p.remaining = size
	p.state = stChunkData
	return rest
}

// parseChunkLine parses "1*HEXDIG *( BWS ; ext ) CRLF".
func (p *Parser) parseChunkLine(line []byte) (int64, string) {
	content, bare := trimEOL(line)
	if bare {
		p.setErr(errBareLF)
	}
	var n int64
	i := 0
	for ; i < len(content); i++ {
		c := content[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto done
		}
		if n > (1<<59)-1 {
			return 0, errChunkSize
		}
		n = n<<4 | int64(d)
	}
done:
	if i == 0 {
		return 0, errChunkSize
	}
	rest := content[i:]
	if len(rest) == 0 {
		return n, ""
	}
	if rest[0] != ';' {
		// Only BWS may sit between the size and an extension.
		k := 0
		for k < len(rest) && (rest[k] == ' ' || rest[k] == '\t') {
			k++
		}
		if k == 0 || k == len(rest) || rest[k] != ';' {
			return 0, errChunkSize
		}
		p.setErr(errChunkSize)
		rest = rest[k:]
	}
	if !validChunkExt(rest) {
		return 0, errChunkExt
	}
	return n, ""
}

// validChunkExt checks *( BWS ";" BWS name [ BWS "=" BWS value ] ).
func validChunkExt(b []byte) bool {
	i := 0
	skipWS := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
	}
	for {
		skipWS()
		if i == len(b) {
			return true
		}
		if b[i] != ';' {
			return false
		}
		i++
		skipWS()
		s := i
		for i < len(b) && tchar[b[i]] {
			i++
		}
		if i == s {
			return false
		}
		skipWS()
		if i == len(b) || b[i] != '=' {
			continue
		}
		i++
		skipWS()
		if i < len(b) && b[i] == '"' {
			i++
			for {
				if i == len(b) {
					return false
				}
				c := b[i]
				if c == '"' {
					i++
					break
				}
				if c == '\\' {
					i++
					if i == len(b) || !vchar[b[i]] {
						return false
					}
				} else if !vchar[c] {
					return false
				}
				i++
			}
		} else {
			s := i
			for i < len(b) && tchar[b[i]] {
				i++
			}
			if i == s {
				return false
			}
		}
	}
}

func (p *Parser) chunkData(b []byte) []byte {
	n := int64(len(b))
	if n > p.remaining {
		n = p.remaining
	}
	p.takeBody(b[:n])
	p.remaining -= n
	if p.remaining == 0 {
		p.state = stChunkEnd
		p.chunkEndCR = false
	}
	return b[n:]
}

// chunkEnd expects the CRLF that ends chunk data.
func (p *Parser) chunkEnd(b []byte) []byte {
	for len(b) > 0 {
		c := b[0]
		switch {
		case c == '\r' && !p.chunkEndCR:
			p.chunkEndCR = true
		case c == '\n':
			if !p.chunkEndCR {
				p.setErr(errBareLF)
			}
			p.m.WireBytes++
			p.state = stChunkSize
			return b[1:]
		default:
			p.fail(errChunkEnd)
			return b
		}
		p.m.WireBytes++
		b = b[1:]
	}
	return b
}

// trailers accumulates the trailer section up to its empty line.
func (p *Parser) trailers(b []byte) []byte {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		n := len(b)
		if i >= 0 {
			n = i + 1
		}
		if len(p.trl)+n > p.opts.MaxHeaderBytes {
			partial := p.trl[p.lineStart:]
			p.trl = p.trl[:p.lineStart]
			p.m.WireBytes += int64(len(p.trl))
			p.fail(errTrailerTooLarge)
			p.resyncFrom(partial)
			return b
		}
		p.trl = append(p.trl, b[:n]...)
		b = b[n:]
		if i < 0 {
			return b
		}
		line := p.trl[p.lineStart:]
		p.lineStart = len(p.trl)
		if isBlank(line) {
			p.m.End = p.t.Last
			p.m.WireBytes += int64(len(p.trl))
			if err := p.parseFields(p.trl, 0, srcTrailer); err != "" {
				p.fail(err)
				return b
			}
			p.complete()
			return b
		}
	}
	return b
}

// resync scans for the next plausible start line.
func (p *Parser) resync(b []byte) []byte {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(p.line) == 0 {
				p.lineT = p.t.First
			}
			p.stats.SkippedBytes += int64(len(b))
			if len(p.line)+len(b) > resyncLineMax {
				// Keep only the tail: a start line is a suffix of its line.
				keep := resyncLineMax / 2
				if len(b) >= keep {
					p.line = append(p.line[:0], b[len(b)-keep:]...)
				} else {
					drop := len(p.line) + len(b) - keep
					n := copy(p.line, p.line[drop:])
					p.line = append(p.line[:n], b...)
				}
			} else {
				p.line = append(p.line, b...)
			}
			return nil
		}
		var line []byte
		startT := p.t.First
		inB := len(p.line) // bytes of line that precede b
		if len(p.line) > 0 {
			p.line = append(p.line, b[:i+1]...)
			line = p.line
			startT = p.lineT
		} else {
			line = b[:i+1]
		}
		p.stats.SkippedBytes += int64(i + 1)
		b = b[i+1:]
		off := p.findStartLine(line)
		if off >= 0 && len(line)-off > p.opts.MaxHeaderBytes {
			off = -1
		}
		if off < 0 {
			p.line = p.line[:0]
			continue
		}
		if off >= inB {
			startT = p.t.First
		}
		p.stats.SkippedBytes -= int64(len(line) - off)
		p.begin(startT)
		p.hdr = append(p.hdr, line[off:]...)
		p.line = p.line[:0]
		p.lineStart = len(p.hdr)
		if p.startLine(p.hdr) {
			p.state = stHeaders
		}
		return b
	}
	return b
}

// findStartLine returns the offset in line (which ends with LF) of a
// plausible start line that runs to its end, or -1.
func (p *Parser) findStartLine(line []byte) int {
	content, _ := trimEOL(line)
	if p.kind == Response {
		for k := 0; ; {
			j := bytes.Index(content[k:], []byte("HTTP/1."))
			if j < 0 {
				return -1
			}
			k += j
			var sl startLine
			if parseStatusLine(line[k:], &sl) == "" {
				return k
			}
			k++
		}
	}
	// Request: "METHOD SP target SP HTTP/1.x" at the end of the line.
	n := len(content)
	if n < 12 || string(content[n-9:n-1]) != " HTTP/1." || !isDigit(content[n-1]) {
		return -1
	}
	ts := n - 9 // end of target
	k := ts
	for k > 0 && content[k-1] > ' ' && content[k-1] != 0x7f {
		k--
	}
	if k == ts || k == 0 || content[k-1] != ' ' {
		return -1
	}
	target := content[k:ts]
	me := k - 1
	ms := me
	for ms > 0 && tchar[content[ms-1]] && me-ms < 32 {
		ms--
	}
	if ms == me {
		return -1
	}
	// Prefer the longest suffix that is a known method ("xyzGET" → GET).
	start := -1
	for s := ms; s < me; s++ {
		if _, ok := knownMethod(content[s:me]); ok {
			start = s
			break
		}
	}
	if start < 0 {
		// An extension method: all upper case, at a line start or after a
		// non-token byte.
		if ms > 0 && content[ms-1] != ' ' && tchar[content[ms-1]] {
			return -1
		}
		for _, c := range content[ms:me] {
			if !('A' <= c && c <= 'Z' || c == '-' || c == '_') {
				return -1
			}
		}
		start = ms
	}
	method := content[start:me]
	if !(target[0] == '/' || string(target) == "*" || bytes.Contains(target, []byte("://")) || string(method) == "CONNECT") {
		return -1
	}
	return start
}
