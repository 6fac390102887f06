package http1

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// tchar marks the bytes allowed in a token (RFC 9110 §5.6.2).
var tchar [256]bool

// vchar marks the bytes allowed in a field value: VCHAR, obs-text, SP, HTAB.
var vchar [256]bool

func init() {
	for c := 'a'; c <= 'z'; c++ {
		tchar[c] = true
		tchar[c-'a'+'A'] = true
	}
	for c := '0'; c <= '9'; c++ {
		tchar[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		tchar[c] = true
	}
	for c := 0x21; c < 0x100; c++ {
		vchar[c] = c != 0x7f
	}
	vchar[' '] = true
	vchar['\t'] = true
}

// vcharRun returns the length of b's leading run of field-value bytes
// (vchar: VCHAR, obs-text, SP, HTAB). It tests eight bytes at a time for a
// control byte or DEL, and finishes byte by byte in the word that has one
// (HTAB, though allowed, takes the byte path).
func vcharRun(b []byte) int {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		below := (x - 0x20*ones) &^ x & high // a byte < 0x20
		y := x ^ 0x7f*ones
		del := (y - ones) &^ y & high // a byte == 0x7f
		if m := below | del; m != 0 {
			// The lowest flagged byte is exact (borrows only run upwards):
			// unless it is HTAB, it ends the run.
			j := i + bits.TrailingZeros64(m)>>3
			if b[j] != '\t' {
				return j
			}
			i = j
			break
		}
	}
	for i < len(b) && vchar[b[i]] {
		i++
	}
	return i
}

// Messages given as Err. Constant strings: reporting costs no allocation.
const (
	errBareLF          = "line ends with LF without CR"
	errMethod          = "invalid request method"
	errTarget          = "invalid request target"
	errVersion         = "invalid HTTP version"
	errVersionUnknown  = "unsupported HTTP version"
	errTargetNonASCII  = "non-ASCII byte in request target"
	errTargetMissing   = "no request target"
	errTargetSpaces    = "spaces in request target"
	errSimpleMethod    = "HTTP/0.9 request with a method other than GET"
	errStartLine       = "invalid start line"
	errStatus          = "invalid status code"
	errReason          = "invalid character in reason phrase"
	errFieldLine       = "invalid header field line (no colon)"
	errFieldName       = "invalid character in header field name"
	errFieldValue      = "invalid character in header field value"
	errLeadingWS       = "whitespace before the first header field"
	errObsFold         = "obsolete line folding in header field"
	errCLInvalid       = "invalid Content-Length"
	errCLConflict      = "conflicting Content-Length values"
	errCLDuplicate     = "duplicate Content-Length"
	errTECL            = "both Transfer-Encoding and Content-Length (Transfer-Encoding wins)"
	errTERequest       = "request Transfer-Encoding does not end in chunked"
	errTEChunkedTwice  = "chunked applied more than once"
	errHeaderTooLarge  = "header block exceeds the size limit"
	errChunkSize       = "invalid chunk size"
	errChunkExt        = "invalid chunk extension"
	errChunkTooLarge   = "chunk size line exceeds the size limit"
	errChunkEnd        = "missing CRLF after chunk data"
	errTrailerTooLarge = "trailer section exceeds the size limit"
)

// knownMethod returns b as an interned string when it is a well-known
// method, so that the common case costs no allocation.
func knownMethod(b []byte) (string, bool) {
	switch string(b) {
	case "GET":
		return "GET", true
	case "POST":
		return "POST", true
	case "PUT":
		return "PUT", true
	case "HEAD":
		return "HEAD", true
	case "DELETE":
		return "DELETE", true
	case "OPTIONS":
		return "OPTIONS", true
	case "PATCH":
		return "PATCH", true
	case "CONNECT":
		return "CONNECT", true
	case "TRACE":
		return "TRACE", true
	case "PROPFIND":
		return "PROPFIND", true
	case "PROPPATCH":
		return "PROPPATCH", true
	case "MKCOL":
		return "MKCOL", true
	case "COPY":
		return "COPY", true
	case "MOVE":
		return "MOVE", true
	case "LOCK":
		return "LOCK", true
	case "UNLOCK":
		return "UNLOCK", true
	case "SEARCH":
		return "SEARCH", true
	case "REPORT":
		return "REPORT", true
	case "MKACTIVITY":
		return "MKACTIVITY", true
	case "CHECKOUT":
		return "CHECKOUT", true
	case "MERGE":
		return "MERGE", true
	case "M-SEARCH":
		return "M-SEARCH", true
	case "NOTIFY":
		return "NOTIFY", true
	case "SUBSCRIBE":
		return "SUBSCRIBE", true
	case "UNSUBSCRIBE":
		return "UNSUBSCRIBE", true
	case "PURGE":
		return "PURGE", true
	case "MKCALENDAR":
		return "MKCALENDAR", true
	case "LINK":
		return "LINK", true
	case "UNLINK":
		return "UNLINK", true
	case "BIND":
		return "BIND", true
	case "REBIND":
		return "REBIND", true
	case "UNBIND":
		return "UNBIND", true
	case "ACL":
		return "ACL", true
	case "QUERY":
		return "QUERY", true
	case "PRI":
		return "PRI", true
	}
	return "", false
}

// methodString returns the method as a string, interned when known.
func methodString(b []byte) string {
	if s, ok := knownMethod(b); ok {
		return s
	}
	return string(b)
}

// trimEOL removes the line end ("\r\n" or "\n") from line and says whether
// it was a bare LF.
func trimEOL(line []byte) ([]byte, bool) {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			return line[:n-1], false
		}
		return line, true
	}
	return line, false
}

// isBlank reports whether line (with its line end) is empty.
func isBlank(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseVersion parses "HTTP/d.d".
func parseVersion(b []byte) (major, minor int, ok bool) {
	if len(b) != 8 || string(b[:5]) != "HTTP/" || !isDigit(b[5]) || b[6] != '.' || !isDigit(b[7]) {
		return 0, 0, false
	}
	return int(b[5] - '0'), int(b[7] - '0'), true
}

// startLine is a parsed request or status line; offsets are into the line.
type startLine struct {
	method               []byte
	tOff, tLen           int
	rOff, rLen           int
	major, minor, status int
	simple               bool   // HTTP/0.9 simple request
	warn                 string // non-fatal problem
}

// parseRequestLine parses line (line end included). It returns a fatal
// error message, or "" when the line is usable.
func parseRequestLine(line []byte, sl *startLine) string {
	content, bare := trimEOL(line)
	if bare {
		sl.warn = errBareLF
	}
	sp := bytes.IndexByte(content, ' ')
	if sp <= 0 {
		if sp < 0 && len(content) > 0 && allTchar(content) {
			return errStartLine
		}
		return errMethod
	}
	if !allTchar(content[:sp]) {
		return errMethod
	}
	sl.method = content[:sp]
	rest := content[sp+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 < 0 {
		if maj, min, ok := parseVersion(rest); ok {
			// "METHOD SP HTTP/1.1": the target is missing. Servers answer
			// such requests (400), so report it, target empty.
			sl.tOff, sl.tLen = sp+1, 0
			sl.major, sl.minor = maj, min
			sl.warn = errTargetMissing
			return ""
		}
		// HTTP/0.9 simple request: METHOD SP target, GET in the RFC; other
		// methods, and a missing target ("GET \n"), are flagged but kept,
		// since a server may answer them.
		if len(rest) == 0 || validTarget(rest) {
			sl.tOff, sl.tLen = sp+1, len(rest)
			sl.major, sl.minor, sl.simple = 0, 9, true
			switch {
			case len(rest) == 0:
				sl.warn = errTargetMissing
			case string(sl.method) != "GET":
				sl.warn = errSimpleMethod
			}
			return ""
		}
		return errStartLine
	}
	target := rest[:sp2]
	if !validTarget(target) {
		return errTarget
	}
	for _, c := range target {
		if c >= 0x80 {
			sl.warn = errTargetNonASCII
			break
		}
	}
	sl.tOff, sl.tLen = sp+1, sp2
	version := rest[sp2+1:]
	maj, min, ok := parseVersion(version)
	if !ok {
		if sp3 := bytes.LastIndexByte(version, ' '); sp3 >= 0 && printable(version) {
			if maj, min, ok := parseVersion(version[sp3+1:]); ok {
				// "CONNECT host:25 / HTTP/1.0": more words before the
				// version. A lenient server answers it; keep the method
				// and the first word as the target, flagged.
				sl.major, sl.minor = maj, min
				sl.warn = errTargetSpaces
				return ""
			}
		}
		if len(version) < 6 || string(version[:5]) != "HTTP/" || !isDigit(version[5]) || !printable(version) {
			return errVersion
		}
		// A damaged version such as "HTTP/1." or "HTTP/1.1 x": the
		// request is still one, flagged; the digits found are the version.
		maj, min = int(version[5]-'0'), 0
		if len(version) > 7 && version[6] == '.' && isDigit(version[7]) {
			min = int(version[7] - '0')
		}
		sl.warn = errVersion
	}
	sl.major, sl.minor = maj, min
	if !knownVersion(maj, min) && sl.warn == "" {
		sl.warn = errVersionUnknown
	}
	return ""
}

// parseStatusLine parses line (line end included).
func parseStatusLine(line []byte, sl *startLine) string {
	content, bare := trimEOL(line)
	if bare {
		sl.warn = errBareLF
	}
	if len(content) < 12 {
		return errStartLine
	}
	maj, min, ok := parseVersion(content[:8])
	if !ok {
		return errVersion
	}
	sl.major, sl.minor = maj, min
	if !knownVersion(maj, min) && sl.warn == "" {
		sl.warn = errVersionUnknown
	}
	if content[8] != ' ' || !isDigit(content[9]) || !isDigit(content[10]) || !isDigit(content[11]) {
		return errStatus
	}
	sl.status = int(content[9]-'0')*100 + int(content[10]-'0')*10 + int(content[11]-'0')
	if sl.status < 100 {
		return errStatus
	}
	sl.rOff, sl.rLen = 12, 0
	if len(content) > 12 {
		if content[12] != ' ' {
			return errStatus
		}
		sl.rOff, sl.rLen = 13, len(content)-13
		for _, c := range content[13:] {
			if !vchar[c] {
				if sl.warn == "" {
					sl.warn = errReason
				}
				break
			}
		}
	}
	return ""
}

// knownVersion reports whether HTTP/maj.min is a version that exists.
func knownVersion(maj, min int) bool {
	return maj == 1 && min <= 1 || maj == 0 && min == 9 || maj == 2 && min == 0
}

// printable reports whether b holds only visible ASCII and SP (no CR or
// other control bytes, which would make a damaged line unsafe to read on).
func printable(b []byte) bool {
	for _, c := range b {
		if c < ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func allTchar(b []byte) bool {
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

// validTarget accepts any non-empty run of bytes other than CTL and SP
// (obs-text included: real clients send raw UTF-8).
func validTarget(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// trimOWS removes leading and trailing SP and HTAB.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// connectionTokens reports which of the options close, keep-alive and
// upgrade a Connection field value lists, in one pass over it.
func connectionTokens(v []byte) (close, keepAlive, upgrade bool) {
	for len(v) > 0 {
		var elem []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			elem, v = v[:i], v[i+1:]
		} else {
			elem, v = v, nil
		}
		elem = trimOWS(elem)
		switch len(elem) {
		case 5:
			close = close || equalFold(elem, "close")
		case 10:
			keepAlive = keepAlive || equalFold(elem, "keep-alive")
		case 7:
			upgrade = upgrade || equalFold(elem, "upgrade")
		}
	}
	return close, keepAlive, upgrade
}
