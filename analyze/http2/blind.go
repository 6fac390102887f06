package http2

import "slices"

// Frames lost whole, at a known place.
//
// A write longer than the snaplen loses its tail: when the cut falls in a
// DATA frame and the write goes on past that frame's end, whole frames of
// the write are gone, but how many bytes is known, and the write after it
// starts on a frame boundary (peers write whole frames). Node.js, for one,
// writes a stream's HEADERS and all its DATA frames in one call.
//
// The wire then stays in frame sync: the frame after the gap is parsed as
// a frame (and the wire searches for sync as before if it is not a
// plausible one). What cannot be known is whether the lost bytes held a
// header block: its HPACK insertions would be missing from our table, and
// later blocks on the wire would decode to wrong fields. So the wire is
// blind until the frames after the gap prove that no header block was
// lost:
//
//   - every stream whose side on this wire had not ended when the gap came
//     shows its END_STREAM (or is reset) after the gap: a lost trailer or
//     final header block would have carried that END_STREAM, or come
//     before it;
//   - on the client's wire, the first stream opened after the gap is the
//     next stream id: a lost request header block would have opened the
//     one in between;
//   - on the server's wire, no stream appears that a lost PUSH_PROMISE
//     would have promised.
//
// Streams that complete while a wire is blind and whose header blocks
// were decoded on that wire after the gap are held back. When the proof
// is complete they are emitted as they are. When it fails (a stream id is
// skipped, a side never ends, the connection closes first, or too many
// streams wait), the held streams are emitted flagged desynced (Gap) and
// the wire's HPACK table is reset to placeholders, which never resolve a
// reference to a wrong entry. Either way nothing is reported as known that
// is not.

// maxHeld bounds the streams held back while a wire is blind; beyond it
// the proof is given up (the held streams are flagged and emitted).
const maxHeld = 256

// blindness is what a wire must see after frames were lost whole.
type blindness struct {
	// open holds the streams whose side on this wire had not ended at the
	// gap: each must end (or be reset) after it.
	open map[uint32]bool
	// nextID is, on the client's wire, the id the next new stream must
	// have; 0 once a stream has been opened after the gap (or on the
	// server's wire).
	nextID uint32
	// cut is, on the client's wire, the stream whose DATA frame the gap
	// began in, when the gap may have taken its END_STREAM.
	cut uint32
}

// goBlind records that whole frames of wire x were lost: every stream
// whose side on x had not ended must show that it lost no header block.
// cut is the stream whose DATA frame the gap began in.
func (x *wire) goBlind(cut uint32) {
	c := x.c
	c.stats.BlindGaps++
	b := x.blind
	if b == nil {
		b = &blindness{open: map[uint32]bool{}}
		x.blind = b
	}
	fromClient := x.idx == c.client
	for id, s := range c.streams {
		m := s.side(fromClient)
		if m.Ended {
			continue
		}
		b.open[id] = true
		if m.HeadersSeen {
			// Its DATA may be among the lost frames.
			m.BodyMissing, m.LengthUnknown = true, true
			if s.GRPC {
				m.GRPC.Gap(1 << 62)
			}
		}
	}
	if fromClient {
		if b.open[cut] {
			b.cut = cut
		}
		b.nextID = c.maxID[1] + 2
		if c.maxID[1] == 0 {
			b.nextID = 1
		}
	}
	x.afterGap = true
	if c.inferring {
		// Which wire is the client's is not known yet: nothing can be
		// proven.
		x.blindFailed()
	}
}

// blindStream checks, on a blind wire, a frame of stream id: a header
// block (opens) or a DATA frame. A stream opened must be the next one; a
// side that had not begun when the gap came must begin with a header
// block.
func (x *wire) blindStream(id uint32, opens bool) {
	b := x.blind
	if b == nil || id == 0 {
		return
	}
	c := x.c
	fromClient := x.idx == c.client
	if s, known := c.streams[id]; known {
		if !opens && b.open[id] && !s.side(fromClient).HeadersSeen {
			x.blindFailed() // its header block was among the lost frames
		}
		return
	}
	switch {
	case fromClient && opens && parity(id) == 1 && id > c.maxID[1]:
		if b.nextID != 0 && id != b.nextID {
			x.blindFailed() // a stream in between was opened in the gap
			return
		}
		b.nextID = 0
	case !fromClient && parity(id) == 0 && id > c.maxID[0]:
		x.blindFailed() // promised in a PUSH_PROMISE we did not see
	}
}

// blindEnded tells a blind wire that stream id's side on it ended (or the
// stream was reset).
func (x *wire) blindEnded(id uint32) {
	if x.blind != nil {
		delete(x.blind.open, id)
	}
}

// blindCheck ends the blindness of x when the frames since the gap prove
// that no header block was lost.
func (x *wire) blindCheck() {
	if b := x.blind; b != nil && len(b.open) == 0 && b.nextID == 0 {
		x.blind = nil
		x.c.release(x.idx, false)
	}
}

// blindFailed gives up the proof: the held streams are flagged, and the
// wire's HPACK table is reset to placeholders.
func (x *wire) blindFailed() {
	b := x.blind
	if b == nil {
		return
	}
	x.blind = nil
	for id := range b.open {
		if s := x.c.streams[id]; s != nil {
			s.Gap = true // frames of it may be among the lost ones
		}
	}
	x.c.stats.BlindFailed++
	x.dec.reset()
	x.c.release(x.idx, true)
}

// hold keeps back a stream that completed while a wire its header blocks
// were decoded on is blind; it reports false when s can be emitted now.
func (c *Conn) hold(s *Stream) bool {
	for i := range c.wires {
		if s.uncertain&(1<<i) != 0 && c.wires[i].blind == nil {
			s.uncertain &^= 1 << i
		}
	}
	if s.uncertain == 0 {
		return false
	}
	c.held = append(c.held, s)
	if len(c.held) > maxHeld {
		for i := range c.wires {
			c.wires[i].blindFailed()
		}
	}
	return true
}

// release emits the held streams that wire w no longer keeps back, in the
// order they completed; failed flags those whose blocks it decoded blind.
func (c *Conn) release(w int, failed bool) {
	for _, s := range c.streams {
		if s.uncertain&(1<<w) != 0 {
			s.uncertain &^= 1 << w
			if failed {
				s.Gap = true
			}
		}
	}
	kept := c.held[:0]
	var out []*Stream
	for _, s := range c.held {
		if s.uncertain&(1<<w) != 0 {
			s.uncertain &^= 1 << w
			if failed {
				s.Gap = true
			}
		}
		if s.uncertain == 0 {
			out = append(out, s)
		} else {
			kept = append(kept, s)
		}
	}
	clear(c.held[len(kept):])
	c.held = kept
	for _, s := range out {
		c.emitStream(s)
	}
}

// closeBlind gives up the proof on every blind wire at the end of the
// connection: a side that never ended may have ended in a gap.
func (c *Conn) closeBlind() {
	for i := range c.wires {
		c.wires[i].blindFailed()
	}
	if len(c.held) > 0 { // unreachable: every blind wire was released
		held := slices.Clone(c.held)
		c.held = c.held[:0]
		for _, s := range held {
			s.uncertain = 0
			c.emitStream(s)
		}
	}
}

// cutRequestEnded says whether the request of s, whose END_STREAM may have
// been among the frames a gap took right after its cut DATA frame, is to
// be taken as ended now that its response ended: the rest of a request
// that was cut in its body is its body (Node.js writes a stream's HEADERS
// and all its DATA in one call). Its body length stays unknown. Only
// request trailers, which clients hardly ever send, could have been lost
// there unseen.
func (c *Conn) cutRequestEnded(s *Stream) bool {
	x := &c.wires[c.client]
	b := x.blind
	if b == nil || b.cut != s.ID || c.inferring {
		return false
	}
	b.cut = 0
	delete(b.open, s.ID)
	return true
}
