package http2

import (
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rewind-tools/rewind/analyze/bytetime"
)

// Frame is what [Options.OnFrame] is given: one frame of a wire as the
// Framer read it, or one whole header block, decoded.
type Frame struct {
	// Wire is the wire (0 or 1, as given to [Conn.Feed]) the frame came on.
	Wire int
	// Frame is the frame read, for every frame that is not part of a header
	// block (DATA, SETTINGS, RST_STREAM, GOAWAY, PING, WINDOW_UPDATE,
	// PRIORITY, unknown types, and CONTINUATION frames that continue no
	// block); nil when Block is set. It is valid only during the call.
	Frame http2.Frame
	// Block is a HEADERS or PUSH_PROMISE frame with its CONTINUATION
	// frames, given once when the block ends or is cut short.
	Block *HeaderBlock
	// Times are those of the chunk that completed the frame.
	Times bytetime.Times
}

// HeaderBlock is one header block, decoded with the wire's HPACK decoder.
// Its slices are valid only during the [Options.OnFrame] call.
type HeaderBlock struct {
	// StreamID is the stream of the HEADERS frame, or the associated
	// stream of a PUSH_PROMISE, whose promised stream is PromiseID (0 for
	// HEADERS).
	StreamID, PromiseID uint32
	// EndStream says the HEADERS frame had END_STREAM.
	EndStream bool
	// Priority is the HEADERS frame's priority, when HasPriority.
	Priority    http2.PriorityParam
	HasPriority bool
	// Fields are the decoded fields in order. Fields whose name referenced
	// an HPACK entry unknown to the observer are left out and counted in
	// Unknown.
	Fields  []hpack.HeaderField
	Unknown int
	// Lost says the block was not decoded to its end (cut by a gap or an
	// interleaved frame, or undecodable): fields after the failure are
	// missing and their number is unknown.
	Lost bool
}

// onBlock hands the block in progress to the frame hook.
func (x *wire) onBlock(lost bool, t bytetime.Times) {
	c := x.c
	if c.opts.OnFrame == nil {
		return
	}
	d := x.dec
	b := &c.block
	*b = HeaderBlock{
		StreamID: x.hbStream, EndStream: x.hbEndStream,
		Priority: x.hbPriority, HasPriority: x.hbHasPriority,
		Fields: d.fields, Unknown: d.unknown, Lost: lost || d.lost,
	}
	if x.hbPush {
		b.StreamID, b.PromiseID = x.hbAssoc, x.hbStream
	}
	c.opts.OnFrame(&Frame{Wire: x.idx, Block: b, Times: t})
}
