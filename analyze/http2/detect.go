package http2

// Frame sync detection: recognising where frames start in a byte stream
// whose beginning was not seen (the recording joined mid-connection, or a gap
// lost the frame boundaries). Only the 9-byte frame header is examined here;
// the frames themselves are always parsed by the x/net Framer.

const (
	frameHeaderLen = 9
	// DefaultMaxFrameSize is SETTINGS_MAX_FRAME_SIZE's initial value.
	DefaultMaxFrameSize = 16384
	// MaxFrameSizeLimit is the largest frame length HTTP/2 allows.
	MaxFrameSizeLimit = 1<<24 - 1
)

// Frame types and flags, as numbers: the detector works on raw headers.
const (
	tData         = 0x0
	tHeaders      = 0x1
	tPriority     = 0x2
	tRSTStream    = 0x3
	tSettings     = 0x4
	tPushPromise  = 0x5
	tPing         = 0x6
	tGoAway       = 0x7
	tWindowUpdate = 0x8
	tContinuation = 0x9

	fEndStream  = 0x1
	fAck        = 0x1
	fEndHeaders = 0x4
	fPadded     = 0x8
	fPriority   = 0x20
)

// knownFlags are the flags RFC 9113 defines per frame type. Senders set no
// others in practice, so an undefined flag is evidence against a frame.
var knownFlags = [...]uint8{
	tData:         fEndStream | fPadded,
	tHeaders:      fEndStream | fEndHeaders | fPadded | fPriority,
	tPriority:     0,
	tRSTStream:    0,
	tSettings:     fAck,
	tPushPromise:  fEndHeaders | fPadded,
	tPing:         fAck,
	tGoAway:       0,
	tWindowUpdate: 0,
	tContinuation: fEndHeaders,
}

// frameLen returns the payload length in a frame header.
func frameLen(h []byte) uint32 { return uint32(h[0])<<16 | uint32(h[1])<<8 | uint32(h[2]) }

// PlausibleHeader reports whether the 9 bytes h could be the header of a
// frame a conforming peer sends: a defined type with only its defined flags,
// a length within maxFrame and the type's fixed size, a stream id that the
// type allows (zero or not) with the reserved bit clear, and no frame that
// carries nothing (empty DATA without END_STREAM, empty header blocks).
func PlausibleHeader(h []byte, maxFrame uint32) bool {
	if len(h) < frameHeaderLen {
		return false
	}
	n, typ, flags := frameLen(h), h[3], h[4]
	if n > maxFrame || int(typ) >= len(knownFlags) || flags&^knownFlags[typ] != 0 || h[5]&0x80 != 0 {
		return false
	}
	sid := uint32(h[5])<<24 | uint32(h[6])<<16 | uint32(h[7])<<8 | uint32(h[8])
	switch typ {
	case tData:
		// An empty DATA frame only makes sense to end a stream; runs of
		// zero bytes (padding, bodies) look like empty DATA frames.
		return sid != 0 && (n > 0 || flags&fEndStream != 0)
	case tContinuation:
		return sid != 0 && n > 0
	case tHeaders:
		min := uint32(0)
		if flags&fPadded != 0 {
			min++
		}
		if flags&fPriority != 0 {
			min += 5
		}
		return sid != 0 && n > min // a header block is never empty
	case tPushPromise:
		return sid != 0 && n >= 4
	case tPriority:
		return sid != 0 && n == 5
	case tRSTStream:
		return sid != 0 && n == 4
	case tSettings:
		return sid == 0 && n%6 == 0 && (flags&fAck == 0 || n == 0)
	case tPing:
		return sid == 0 && n == 8
	case tGoAway:
		return sid == 0 && n >= 8
	case tWindowUpdate:
		return n == 4
	}
	return false
}

// Verdict is the answer of [FramesAt].
type Verdict uint8

const (
	// No: the bytes are not a frame sequence.
	No Verdict = iota
	// Yes: the bytes start a plausible frame sequence.
	Yes
	// More: the bytes start plausibly but more are needed to be sure.
	More
)

// FramesAt says whether p starts with a plausible sequence of HTTP/2 frames:
// Yes for at least two chained plausible headers (the second one complete in
// p), or for one complete frame filling p exactly when it is a HEADERS
// (END_HEADERS set), SETTINGS or PING frame — what a single write often
// holds; More when the first header is plausible but p ends before a second
// one; No otherwise.
func FramesAt(p []byte, maxFrame uint32) Verdict {
	if len(p) < frameHeaderLen {
		return More
	}
	if !PlausibleHeader(p, maxFrame) {
		return No
	}
	next := frameHeaderLen + int(frameLen(p))
	switch {
	case next == len(p):
		switch typ := p[3]; {
		case typ == tHeaders && p[4]&fEndHeaders != 0, typ == tSettings, typ == tPing:
			return Yes
		}
		return More
	case next+frameHeaderLen > len(p):
		return More
	case PlausibleHeader(p[next:], maxFrame):
		return Yes
	}
	return No
}

// FindFrames returns the first offset in p at which [FramesAt] says Yes, or
// -1. Offsets where it says More are skipped: a caller that can wait for
// more bytes should use [Scan].
func FindFrames(p []byte, maxFrame uint32) int {
	for i := 0; i+frameHeaderLen <= len(p); i++ {
		if FramesAt(p[i:], maxFrame) == Yes {
			return i
		}
	}
	return -1
}

// Scan looks for the first offset of p where a frame sequence may start: it
// returns the offset and Yes, or the offset and More when the bytes from it on
// are a plausible start that needs more bytes to confirm, or len(p) and No.
// Bytes before the returned offset can be discarded.
func Scan(p []byte, maxFrame uint32) (int, Verdict) {
	for i := 0; i < len(p); i++ {
		switch FramesAt(p[i:], maxFrame) {
		case Yes:
			return i, Yes
		case More:
			return i, More
		}
	}
	return len(p), No
}
