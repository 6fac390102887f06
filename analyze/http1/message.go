package http1

import "iter"

// Kind says which side of an HTTP/1.x conversation a [Parser] reads.
type Kind uint8

const (
	// Request parsers read what a client sends.
	Request Kind = 1
	// Response parsers read what a server sends.
	Response Kind = 2
)

// String returns "request" or "response".
func (k Kind) String() string {
	switch k {
	case Request:
		return "request"
	case Response:
		return "response"
	}
	return "unknown"
}

// State says at which moment a [Message] is passed to the emit callback.
type State uint8

const (
	// HeadersComplete: the start line and the header block have been
	// received and the body framing is known; body, trailers and End are
	// not valid yet. A message reaches this state at most once, and only
	// when its header block was well formed enough to frame the body.
	HeadersComplete State = 1
	// Complete: the message ended (normally, by a gap, by Close or by an
	// error). Every message the parser reports is emitted exactly once in
	// this state, possibly without a HeadersComplete emission before it
	// (headers cut by a gap or by Close, malformed header block).
	Complete State = 2
)

// Message is one HTTP/1.x request or response. The parser reuses a single
// Message, and the byte slices it holds point into the parser's buffers:
// a Message and everything reached through it are valid only during the emit
// call; copy what must outlive it.
//
// Fields valid from HeadersComplete on: Kind, Method, Target, ProtoMajor,
// ProtoMinor, StatusCode, Reason, the header fields, ContentLength, Chunked,
// ConnClose, Interim, Upgrade, Resynced, Start, HeadersDone, HeaderBytes.
// Fields valid only when State is Complete: Body, BodyBytes, BodyTruncated,
// trailers, End, WireBytes, Incomplete, Truncated. Error and Err may be set
// in either state (a non-fatal problem found in the header block is already
// reported at HeadersComplete).
type Message struct {
	Kind  Kind
	State State

	// Method is the request method as sent (case kept). Known methods are
	// interned, so Method costs no allocation for them. For responses it is
	// the method of the request answered, as given to ExpectResponseTo
	// ("GET" when unknown).
	Method string
	// Target is the request-target as sent (origin, absolute, authority or
	// asterisk form). Requests only.
	Target []byte
	// ProtoMajor and ProtoMinor give the HTTP version: 1.1, 1.0, or 0.9 for
	// a simple request ("GET /path" without version, no headers).
	ProtoMajor, ProtoMinor int
	// StatusCode and Reason are the response status; responses only.
	StatusCode int
	Reason     []byte

	// ContentLength is the value of the Content-Length header, -1 when
	// absent (or overridden by Transfer-Encoding, which wins).
	ContentLength int64
	// Chunked says the body used the chunked transfer coding.
	Chunked bool
	// ConnClose says the connection closes after this message: a Connection
	// header says close, or HTTP/1.0 without keep-alive. The parser ignores
	// (and counts as skipped) any bytes after such a message.
	ConnClose bool

	// BodyBytes is the length of the body after removing chunked framing,
	// counting bytes lost in gaps.
	BodyBytes int64
	// Body holds the first bytes of the body (chunked framing removed, still
	// content-encoded), up to Options.MaxBodyCapture.
	Body []byte
	// BodyTruncated says Body holds less than the whole body: the capture
	// cap cut it, or a gap made it discontinuous.
	BodyTruncated bool

	// Start is the First time of the chunk holding the message's first byte,
	// HeadersDone the Last time of the chunk where the header block ended,
	// End the Last time of the chunk holding the message's last byte.
	Start, HeadersDone, End uint64
	// HeaderBytes counts the start line and header block, final empty line
	// included. WireBytes counts every byte of the message on the wire,
	// chunk framing, trailers and bytes lost in gaps included.
	HeaderBytes, WireBytes int64

	// Incomplete: part of the message is missing — it was cut by a gap, by
	// the end of the stream, or its beginning was never seen.
	Incomplete bool
	// Truncated: body bytes were lost in a gap (BodyBytes still counts them).
	Truncated bool
	// LengthUnknown: a gap took chunked framing with it (a size line or
	// the data past it), so how many body bytes the message had cannot be
	// known; BodyBytes counts only those seen and is a lower bound.
	LengthUnknown bool
	// Interim: a 1xx informational response other than 101; the final
	// response to the same request follows.
	Interim bool
	// Upgrade: after this message the stream is no longer HTTP/1.x (101
	// Switching Protocols, 2xx to CONNECT, a CONNECT request, or a request
	// asking for an upgrade, see [Parser]); the parser counts the following
	// bytes as tunnel bytes.
	Upgrade bool
	// Resynced: the parser lost sync before this message (gap, parse error,
	// stream joined mid-connection) and found it by scanning; messages may
	// be missing before it.
	Resynced bool
	// Error says the message is malformed; Err says how (the first problem
	// found). Non-fatal problems (bare LF line ends, control characters in a
	// field value, both Transfer-Encoding and Content-Length, …) are flagged
	// but the message is parsed on; fatal ones (unframeable body, invalid
	// start line or field line) end the message and make the parser resync.
	Error bool
	Err   string

	block []byte // start line + header block, as received
	// first locates Target (requests) or Reason (responses) in block.
	firstOff, firstLen int32
	trailer            []byte // trailer section, as received
	fold               []byte // unfolded values of fields that used obs-fold
	fields             []field
	nHeader            int // fields[:nHeader] are headers, the rest trailers
}

// field locates a name and a value in one of the message buffers.
type field struct {
	nOff, nLen, vOff, vLen int32
	nSrc, vSrc             uint8
}

const (
	srcBlock uint8 = iota
	srcTrailer
	srcFold
)

func (m *Message) src(s uint8) []byte {
	switch s {
	case srcBlock:
		return m.block
	case srcTrailer:
		return m.trailer
	}
	return m.fold
}

func (m *Message) at(i int) (name, value []byte) {
	f := &m.fields[i]
	n := m.src(f.nSrc)
	v := m.src(f.vSrc)
	return n[f.nOff : f.nOff+f.nLen : f.nOff+f.nLen], v[f.vOff : f.vOff+f.vLen : f.vOff+f.vLen]
}

// NumHeaders returns the number of header fields (repeats counted).
func (m *Message) NumHeaders() int { return m.nHeader }

// HeaderAt returns the i-th header field: its name in the original case and
// its value with surrounding whitespace removed and obs-folds unfolded.
func (m *Message) HeaderAt(i int) (name, value []byte) { return m.at(i) }

// Header returns the value of the first header field called name, compared
// case-insensitively (ASCII).
func (m *Message) Header(name string) ([]byte, bool) {
	for i := 0; i < m.nHeader; i++ {
		n, v := m.at(i)
		if equalFold(n, name) {
			return v, true
		}
	}
	return nil, false
}

// Headers iterates over the header fields in order, repeats included.
func (m *Message) Headers() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		for i := 0; i < m.nHeader; i++ {
			if !yield(m.at(i)) {
				return
			}
		}
	}
}

// NumTrailers returns the number of trailer fields of a chunked body.
func (m *Message) NumTrailers() int { return len(m.fields) - m.nHeader }

// TrailerAt returns the i-th trailer field.
func (m *Message) TrailerAt(i int) (name, value []byte) { return m.at(m.nHeader + i) }

// Trailer returns the value of the first trailer field called name,
// case-insensitively.
func (m *Message) Trailer(name string) ([]byte, bool) {
	for i := m.nHeader; i < len(m.fields); i++ {
		n, v := m.at(i)
		if equalFold(n, name) {
			return v, true
		}
	}
	return nil, false
}

// Trailers iterates over the trailer fields in order.
func (m *Message) Trailers() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		for i := m.nHeader; i < len(m.fields); i++ {
			if !yield(m.at(i)) {
				return
			}
		}
	}
}

// HeadStrings gives a message's head as strings, for keeping it beyond the
// emit call at the cost of one copy: head must hold the same bytes as
// [Message.RawHeader] (a copy of them, made by the caller however it likes).
// HeadStrings returns the request target (requests) or the reason phrase
// (responses) as a substring of head, and calls each with every header
// field, in order, its name and value also substrings of head (a value
// unfolded from obs-fold lines gets a string of its own).
func (m *Message) HeadStrings(head string, each func(name, value string)) (first string) {
	if len(head) != len(m.block) {
		panic("http1: HeadStrings: head is not a copy of RawHeader")
	}
	if m.firstLen > 0 {
		first = head[m.firstOff : m.firstOff+m.firstLen]
	}
	for i := 0; i < m.nHeader; i++ {
		f := &m.fields[i]
		var name, value string
		if f.nSrc == srcBlock {
			name = head[f.nOff : f.nOff+f.nLen]
		} else {
			n, _ := m.at(i)
			name = string(n)
		}
		if f.vSrc == srcBlock {
			value = head[f.vOff : f.vOff+f.vLen]
		} else {
			_, v := m.at(i)
			value = string(v)
		}
		each(name, value)
	}
	return first
}

// FieldSpan locates a header field in a message's head (see
// [Message.RawHeader]): the name is head[NameOff:NameOff+NameLen], the value
// head[ValueOff:ValueOff+ValueLen]. It holds no pointers, so lists of them
// cost the garbage collector nothing.
type FieldSpan struct {
	NameOff, NameLen, ValueOff, ValueLen int32
}

// Name returns the field's name in head.
func (f FieldSpan) Name(head string) string { return head[f.NameOff : f.NameOff+f.NameLen] }

// Value returns the field's value in head.
func (f FieldSpan) Value(head string) string { return head[f.ValueOff : f.ValueOff+f.ValueLen] }

// HeadSpans is [Message.HeadStrings] for a caller that keeps the head and
// makes strings of the fields later, perhaps on another goroutine: it
// appends the span of every header field to dst and returns the request
// target or reason phrase, a substring of head. It returns ok false, having
// appended nothing, when a field's value is not a run of head (it was
// unfolded from obs-fold lines); HeadStrings then gives the fields.
func (m *Message) HeadSpans(head string, dst []FieldSpan) (first string, spans []FieldSpan, ok bool) {
	if len(head) != len(m.block) {
		panic("http1: HeadSpans: head is not a copy of RawHeader")
	}
	n0 := len(dst)
	for _, f := range m.fields[:m.nHeader] {
		if f.nSrc != srcBlock || f.vSrc != srcBlock {
			return "", dst[:n0], false
		}
		dst = append(dst, FieldSpan{f.nOff, f.nLen, f.vOff, f.vLen})
	}
	if m.firstLen > 0 {
		first = head[m.firstOff : m.firstOff+m.firstLen]
	}
	return first, dst, true
}

// RawHeader returns the start line and header block exactly as received
// (empty for a message whose start line was never complete).
func (m *Message) RawHeader() []byte { return m.block }

// equalFold reports whether b equals s, ASCII case-insensitively.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
