package analyze

import (
	"bytes"

	"github.com/rewind-tools/rewind/analyze/bytetime"
	"github.com/rewind-tools/rewind/analyze/http2"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/redact"
)

// layerKind is what a layer's bytes turned out to be.
type layerKind uint8

const (
	kindUndetected layerKind = iota
	kindHTTP1
	kindHTTP2
	kindTLSCipher // TLS records: ciphertext we cannot read
	kindOther     // some other protocol
)

// maxDetect bounds the bytes buffered while a stream's first bytes are too
// short to tell what it carries.
const maxDetect = 24

// maxUndetected bounds how many bytes of a connection joined mid-stream are
// searched for an HTTP message start before it is given up as non-HTTP.
const maxUndetected = 256 << 10

// layer is one plaintext view of a connection: both directions' byte streams
// and the protocol parser they feed.
type layer struct {
	cs    *connState
	tls   bool
	kind  layerKind
	calls [2]callState
	// pending holds the first bytes of a direction while too few have
	// arrived to detect the protocol.
	pending [2][]byte
	pendT   [2]bytetime.Times
	scanned int // bytes looked at without finding HTTP (joined mid-stream)
	midJoin bool
	h1      *h1Conn
	// maskers redact credentials in the byte streams given to stream
	// sinks, one per direction (only with Options.Redact).
	maskers [2]*redact.Masker
	h2      *h2Conn
}

// callState follows the fragments of one call (a Data event split in parts)
// so that bytes the capture lacks become gaps of the right size.
type callState struct {
	start, end uint64
	len, pos   uint32
	open       bool
}

func (l *layer) setKind(k layerKind) {
	if l.kind == kindUndetected {
		l.kind = k
	}
}

func times(e *capture.Data) bytetime.Times {
	if e.Dir == capture.Ingress {
		// Bytes read are there when the read returns; its entry may be long
		// before (a blocking read waiting for data).
		return bytetime.Times{First: e.Timestamp, Last: e.Timestamp}
	}
	return bytetime.Times{First: e.Start, Last: e.Timestamp}
}

func (l *layer) data(e *capture.Data) {
	d := dirIdx(e.Dir)
	c := &l.calls[d]
	t := times(e)
	if c.open && (e.Offset == 0 || e.Start != c.start || e.Timestamp != c.end) {
		l.endCall(d, t)
	}
	if !c.open {
		*c = callState{start: e.Start, end: e.Timestamp, len: e.Len, open: true}
	}
	p := e.Payload
	if e.Offset > c.pos {
		l.gap(d, int64(e.Offset-c.pos), t)
		c.pos = e.Offset
	} else if e.Offset < c.pos {
		skip := c.pos - e.Offset
		if int(skip) >= len(p) {
			p = nil
		} else {
			p = p[skip:]
		}
	}
	if room := c.len - c.pos; uint32(len(p)) > room {
		p = p[:room]
	}
	if len(p) > 0 {
		l.bytes(d, p, t)
		l.streamData(d, e.TID, p, t)
		c.pos += uint32(len(p))
	}
	if e.Truncated() || c.pos >= c.len {
		l.endCall(d, t)
	}
}

// endCall closes the open call of direction d; bytes it moved that the
// capture does not hold become a gap.
func (l *layer) endCall(d int, t bytetime.Times) {
	c := &l.calls[d]
	if c.open && c.pos < c.len {
		l.gap(d, int64(c.len-c.pos), t)
	}
	c.open = false
}

func (l *layer) bytes(d int, p []byte, t bytetime.Times) {
	if l.kind == kindUndetected {
		if len(l.pending[d]) > 0 {
			l.pending[d] = append(l.pending[d], p...)
			p = l.pending[d]
			t.First = l.pendT[d].First
		}
		k, reqDir, off, ready := l.detect(d, p)
		if !ready {
			if len(p) < maxDetect {
				if len(l.pending[d]) == 0 {
					l.pending[d] = append(l.pending[d][:0], p...)
					l.pendT[d] = t
				}
				return
			}
			k = kindOther
		}
		if k == kindOther && l.awaitAnswer(d, p) {
			// Text that is no request line: a sloppy request, maybe, that
			// the server will answer; its answer decides.
			if len(l.pending[d]) == 0 {
				l.pending[d] = append(l.pending[d][:0], p...)
				l.pendT[d] = t
			}
			return
		}
		l.pending[d] = nil
		if k == kindUndetected {
			// Joined mid-stream: nothing recognisable yet.
			l.scanned += len(p)
			if l.scanned > maxUndetected {
				l.kind = kindOther
			}
			return
		}
		l.kind = k
		switch k {
		case kindHTTP1:
			l.startHTTP1(reqDir)
			if o := 1 - d; o == reqDir && len(l.pending[o]) > 0 {
				// The request held back by awaitAnswer, before its answer.
				held := l.pending[o]
				l.pending[o] = nil
				l.feedHTTP1(o, held, l.pendT[o])
			}
		case kindHTTP2:
			l.startHTTP2(reqDir)
		}
		p = p[off:]
	}
	switch l.kind {
	case kindHTTP1:
		l.feedHTTP1(d, p, t)
	case kindHTTP2:
		l.h2.feed(d, p, t)
	}
}

// feedHTTP1 feeds the HTTP/1 pairing, and switches to HTTP/2 when the
// bytes held an h2c upgrade's 101.
func (l *layer) feedHTTP1(d int, p []byte, t bytetime.Times) {
	if ex, tail := l.h1.feed(d, p, t); ex != nil {
		l.switchH2C(ex, p, tail, t)
	}
}

func (l *layer) gap(d int, n int64, t bytetime.Times) {
	l.streamGap(d, n, t)
	switch l.kind {
	case kindHTTP1:
		l.h1.gap(d, n, t)
	case kindHTTP2:
		l.h2.gap(d, n, t)
	case kindUndetected:
		// Bytes before the protocol was known: what follows may start
		// mid-message, so detection must search for a message start.
		l.pending[d] = nil
		l.midJoin = true
	}
}

func (l *layer) close(ts uint64) {
	t := bytetime.Times{First: ts, Last: ts}
	for d := range l.calls {
		l.endCall(d, t)
	}
	if l.kind == kindUndetected {
		for d := range l.pending {
			if len(l.pending[d]) > 0 {
				// A stream that ended before detection could finish.
				p := l.pending[d]
				l.pending[d] = nil
				if k, reqDir, off, ok := l.detect(d, p); ok && k == kindHTTP1 {
					l.kind = k
					l.startHTTP1(reqDir)
					l.feedHTTP1(d, p[off:], l.pendT[d])
				}
			}
		}
	}
	switch l.kind {
	case kindHTTP1:
		l.h1.close(t)
	case kindHTTP2:
		l.h2.close(t)
	}
}

// maxAwaitAnswer bounds the bytes of a direction held while waiting for the
// other direction to tell whether they were an HTTP request.
const maxAwaitAnswer = 4 << 10

// awaitAnswer says whether bytes p of direction d, which do not start like
// any protocol rewind knows, should wait for the other direction: at the
// start of a connection whose other side said nothing yet, text that could
// be a malformed request line ("GET/ HTTP/1.1", "OPTIONSHTTP/1.1") is HTTP
// when the server answers with a status line. Servers do answer such
// requests (400), and the exchange is worth reporting.
func (l *layer) awaitAnswer(d int, p []byte) bool {
	if l.midJoin || !l.cs.announced || len(p) > maxAwaitAnswer || len(p) == 0 {
		return false
	}
	if len(l.pending[1-d]) > 0 {
		return false
	}
	c := p[0]
	return c >= '!' && c < 0x7f || c >= 0x80
}

func (l *layer) startHTTP1(reqDir int) {
	c := l.cs.c
	if c.Role == capture.RoleUnknown {
		if reqDir == dirIdx(capture.Ingress) {
			c.Role = capture.RoleServer
		} else {
			c.Role = capture.RoleClient
		}
	}
	if c.Proto == "" {
		c.Proto = "HTTP/1.1"
	}
	l.h1 = newH1Conn(l.cs, l.cs.t.proto, reqDir, l.midJoin || !l.cs.announced)
}

var (
	http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	httpVersion  = []byte("HTTP/1.")
)

// detect looks at the first bytes of direction d. ready is false when more
// bytes are needed. For HTTP/1 it returns the direction carrying requests.
func (l *layer) detect(d int, p []byte) (k layerKind, reqDir, off int, ready bool) {
	other := 1 - d
	if !l.midJoin && l.cs.announced {
		switch {
		case hasPrefixOrIsPrefix(p, http2Preface):
			if len(p) < len(http2Preface) {
				return 0, 0, 0, false
			}
			return kindHTTP2, d, 0, true
		case hasPrefixOrIsPrefix(p, httpVersion):
			if len(p) < len(httpVersion) {
				return 0, 0, 0, false
			}
			return kindHTTP1, other, 0, true
		case len(p) >= 3 && p[0] == 0x16 && p[1] == 3 && p[2] <= 4:
			return kindTLSCipher, 0, 0, true
		case len(p) >= 9 && p[3] == 0x4 && http2.PlausibleHeader(p, http2.MaxFrameSizeLimit):
			// An HTTP/2 server's SETTINGS, written before the client's
			// preface was read.
			return kindHTTP2, other, 0, true
		}
		switch looksLikeRequest(p) {
		case yes:
			return kindHTTP1, d, 0, true
		case maybe:
			return 0, 0, 0, false
		}
		return kindOther, 0, 0, true
	}
	// Joined mid-stream (the recording began after the connection, or bytes
	// were lost before detection): search for a message start anywhere.
	if bytes.HasPrefix(p, http2Preface) {
		return kindHTTP2, d, 0, true
	}
	if i := findResponseStart(p); i >= 0 {
		return kindHTTP1, other, i, true
	}
	if i := findRequestStart(p); i >= 0 {
		return kindHTTP1, d, i, true
	}
	if len(p) >= 5 && p[0] == 0x17 && p[1] == 3 && p[2] <= 4 {
		return kindTLSCipher, 0, 0, true
	}
	if i := http2.FindFrames(p, http2.DefaultMaxFrameSize); i >= 0 {
		return kindHTTP2, -1, i, true // client direction: from the role
	}
	return kindUndetected, 0, 0, true
}

func hasPrefixOrIsPrefix(p, prefix []byte) bool {
	if len(p) >= len(prefix) {
		return bytes.HasPrefix(p, prefix)
	}
	return bytes.HasPrefix(prefix, p)
}

type tri uint8

const (
	no tri = iota
	yes
	maybe
)

// looksLikeRequest says whether p starts with "TOKEN SP" where TOKEN is an
// upper-case method name, and "maybe" when p is too short to tell.
func looksLikeRequest(p []byte) tri {
	for i, c := range p {
		if c == ' ' {
			if i >= 3 && i <= 20 {
				return yes
			}
			return no
		}
		if !(c >= 'A' && c <= 'Z' || c == '-' || c == '_') || i > 20 {
			return no
		}
	}
	return maybe
}

// findResponseStart returns the index of a status line start ("HTTP/1.x NNN")
// at the beginning of p or of a line in p, or -1.
func findResponseStart(p []byte) int {
	for i := 0; i+12 <= len(p); {
		j := bytes.Index(p[i:], httpVersion)
		if j < 0 {
			return -1
		}
		j += i
		if (j == 0 || p[j-1] == '\n') && j+12 <= len(p) && p[j+8] == ' ' &&
			isDigit(p[j+9]) && isDigit(p[j+10]) && isDigit(p[j+11]) {
			return j
		}
		i = j + 1
	}
	return -1
}

// findRequestStart returns the index of a request line start
// ("METHOD SP target SP HTTP/1.x") at a line start in p, or -1.
func findRequestStart(p []byte) int {
	for i := 0; i < len(p); {
		j := bytes.Index(p[i:], []byte(" HTTP/1."))
		if j < 0 {
			return -1
		}
		j += i
		ls := bytes.LastIndexByte(p[:j], '\n') + 1
		line := p[ls:j]
		if sp := bytes.IndexByte(line, ' '); sp > 0 && looksLikeRequest(line[:sp+1]) == yes {
			return ls
		}
		i = j + 1
	}
	return -1
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
