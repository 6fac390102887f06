package http2

import "golang.org/x/net/http2/hpack"

// Message is one side of a stream: the request a client sent, or the
// response a server sent.
type Message struct {
	// Header holds the header block's fields in order, pseudo-headers
	// (":method", ":path", ":status", …) included; Trailer holds a trailing
	// header block (sent with END_STREAM after the body). Fields whose name
	// referenced an unknown HPACK entry are left out and counted in
	// UnknownFields.
	Header, Trailer []hpack.HeaderField
	// HeadersSeen says the header block was seen (the request's may come
	// from a PUSH_PROMISE); Seen says any frame of this side was.
	HeadersSeen, Seen bool
	// UnknownFields counts fields left out because they referenced HPACK
	// dynamic table entries that were inserted before the capture joined.
	UnknownFields int
	// HeadersLost: a header block of this side could not be decoded to its
	// end (cut by a gap, or undecodable); fields after the failure are
	// missing and their number is unknown.
	HeadersLost bool
	// Ended says END_STREAM was seen.
	Ended bool
	// BodyBytes counts DATA payload bytes, padding excluded.
	BodyBytes int64
	// Body holds up to Options.MaxBodyCapture bytes of the body;
	// BodyTruncated says it holds less than BodyBytes.
	Body          []byte
	BodyTruncated bool
	// BodyMissing says DATA payload bytes were not in the capture (a gap
	// inside a DATA frame): BodyBytes still counts them.
	BodyMissing bool
	// LengthUnknown says the body may have gone on in frames a gap took
	// whole (a cut write's tail past the DATA frame it cut): BodyBytes
	// counts what is known and is a lower bound.
	LengthUnknown bool
	// HeaderBytes counts the wire bytes (frame headers included) of the
	// HEADERS, CONTINUATION and PUSH_PROMISE frames of this side.
	HeaderBytes int64
	// Start and End are the times of the first byte of this side's first
	// frame and of the last byte of its last frame.
	Start, End uint64
	// GRPC counts gRPC messages in the body when the stream is gRPC.
	GRPC GRPCFrames
}

// Get returns the value of the first field named name (lower case, as
// HTTP/2 requires), and whether there is one.
func Get(fields []hpack.HeaderField, name string) (string, bool) {
	for i := range fields {
		if fields[i].Name == name {
			return fields[i].Value, true
		}
	}
	return "", false
}

// Stream is one HTTP/2 stream, passed to the emit callback of [NewConn]
// when it completes. The Conn reuses Streams: a Stream and its slices are
// valid only during the callback.
type Stream struct {
	ID uint32
	// Request is what the client sent; Response what the server sent
	// (final response: 1xx header blocks are only counted).
	Request, Response Message
	Informational     int
	// Pushed says the stream was promised by the server (PUSH_PROMISE on
	// stream Associated); its request is the promised header block.
	Pushed     bool
	Associated uint32
	// Upgraded says this is stream 1 of an h2c upgrade: the request was
	// sent as HTTP/1.1 before the switch and is not in Request.
	Upgraded bool
	// Reset says RST_STREAM ended the stream, sent by the server when
	// ResetByServer, with ResetCode.
	Reset         bool
	ResetByServer bool
	ResetCode     uint32
	// Refused says a GOAWAY's last-stream-id showed the stream was not
	// processed by the peer.
	Refused bool
	// Incomplete says the stream did not end in the capture: cut by the
	// end of the capture (or connection), or its beginning was not seen.
	Incomplete bool
	// Gap says frames of the connection were lost while the stream was
	// open, so frames of the stream may be missing.
	Gap bool
	// GRPC says a content-type of application/grpc was seen.
	GRPC bool
}

func (s *Stream) side(client bool) *Message {
	if client {
		return &s.Request
	}
	return &s.Response
}

func (m *Message) reset() {
	*m = Message{Header: m.Header[:0], Trailer: m.Trailer[:0], Body: m.Body[:0]}
}

func (s *Stream) reset(id uint32) {
	s.Request.reset()
	s.Response.reset()
	*s = Stream{ID: id, Request: s.Request, Response: s.Response}
}

// Desynced reports whether some of the stream's header fields are unknown or
// missing (HPACK state unknown) or frames may have been lost.
func (s *Stream) Desynced() bool {
	return s.Gap || s.Request.UnknownFields > 0 || s.Response.UnknownFields > 0 ||
		s.Request.HeadersLost || s.Response.HeadersLost
}

type hpackField = hpack.HeaderField
