// Package http2 parses the two byte streams of an HTTP/2 connection, as a
// passive observer, into streams: request and response header blocks,
// trailers, body bytes, resets and times. Frames are read with the
// golang.org/x/net/http2 Framer and header blocks decoded with
// golang.org/x/net/http2/hpack, one decoder per direction.
//
// The parser tolerates what a capture does to a connection: it may start
// mid-connection (no preface; frame boundaries found by [Scan], HPACK tables
// unknown, see the notes in hpack.go), lose bytes ([Conn.Gap]) or end at any
// point. Unknown header fields are reported as such, never invented.
package http2

import (
	"bytes"
	"encoding/binary"
	"slices"

	"golang.org/x/net/http2"

	"github.com/rewind-tools/rewind/analyze/bytetime"
)

// ClientPreface is what a client sends first on an HTTP/2 connection.
const ClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Options tune a [Conn].
type Options struct {
	// MaxBodyCapture is how many bytes of each body are kept (0: none).
	MaxBodyCapture int
	// ClientWire is the wire (0 or 1, the index given to Feed) carrying
	// what the client sends; -1 lets the Conn infer it from the first
	// header block (":method" or ":status"). Only MidStream connections
	// should need inference.
	ClientWire int
	// MidStream says the capture joined the connection after it started:
	// no preface is expected, frame boundaries are searched for, and the
	// HPACK dynamic tables are unknown.
	MidStream bool
	// Upgraded says the connection switched from HTTP/1.1 (h2c upgrade):
	// the client sends the preface, the server starts with SETTINGS, and
	// stream 1 is the upgraded request, already sent.
	Upgraded bool
	// OnFrame, when set, is called for every frame read, in wire order:
	// a header block once, decoded, when it ends (or is cut short); any
	// other frame as the Framer read it. It lets a caller rewrite the
	// connection's frames (format/pcapng re-encodes header blocks) without
	// a second parser.
	OnFrame func(*Frame)
}

// Stats count what the parser saw and skipped.
type Stats struct {
	Frames       int64 // frames parsed
	BadFrames    int64 // frames the Framer rejected (skipped)
	SkippedBytes int64 // bytes skipped while searching for frame sync
	Resyncs      int64 // times frame sync was lost (gap, bad preface)
	CutFrames    int64 // DATA frames a gap cut inside (cutData)
	// LostFrameRuns counts gaps that went on past the DATA frame they cut
	// and took whole frames (framesLost); each is also a resync.
	LostFrameRuns int64
	HeaderBlocks  int64
	// DecodedFields and UnknownFields count header fields decoded and
	// fields left out because they referenced unknown HPACK entries.
	DecodedFields, UnknownFields int64
	// LostBlocks counts header blocks not decoded to their end.
	LostBlocks int64
	// Streams counts streams emitted; DroppedStreams streams seen only
	// through frames that carry no headers, which are not emitted.
	Streams, DroppedStreams int64
}

const (
	// maxOpenStreams bounds the streams tracked at once; beyond it the
	// oldest is emitted as incomplete.
	maxOpenStreams = 4096
	// maxScanBuffer bounds the bytes kept while searching for frame sync.
	maxScanBuffer = 256 << 10
	// maxSyncedFrame is the frame length beyond which a synced wire is
	// deemed out of sync, unless SETTINGS allowed more (Go advertises
	// 1 MiB; most peers keep the 16 KiB default).
	maxSyncedFrame = 1 << 20
)

// Conn is the parser of one HTTP/2 connection. It is not safe for
// concurrent use.
type Conn struct {
	opts      Options
	emit      func(*Stream)
	wires     [2]wire
	client    int  // wire carrying the client's frames
	inferring bool // client is provisional
	streams   map[uint32]*Stream
	free      []*Stream
	maxID     [2]uint32 // highest stream id seen per parity (0 even, 1 odd)
	firstID   [2]uint32 // first stream id seen per parity (mid-stream joins)
	order     []uint32  // scratch for sorting stream ids
	stats     Stats
	block     HeaderBlock // scratch for OnFrame
}

// wire is one direction of the connection.
type wire struct {
	c        *Conn
	idx      int
	fr       *http2.Framer
	r        sliceReader
	buf      []byte // bytes not yet parsed: a partial frame, or a scan
	bufFirst uint64 // time of buf[0]
	synced   bool   // at a frame boundary (else scanning)
	// skip counts the bytes still to come of a DATA frame that a gap cut
	// (cutData): they are dropped as they arrive, and the frame after
	// them starts in sync.
	skip     int64
	preface  int    // bytes of the client preface still expected
	maxFrame uint32 // largest frame plausible on this wire
	dec      *headerDecoder

	// the header block in progress
	hbActive      bool
	hbPush        bool
	hbEndStream   bool
	hbStream      uint32
	hbAssoc       uint32
	hbStart       uint64
	hbBytes       int64
	hbPriority    http2.PriorityParam
	hbHasPriority bool
	hbTimes       bytetime.Times // of the block's last frame so far
}

// sliceReader hands the Framer the bytes of one frame.
type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// NewConn returns a parser that calls emit for every stream that completes,
// in the order they complete as bytes are fed.
func NewConn(opts Options, emit func(*Stream)) *Conn {
	c := &Conn{opts: opts, emit: emit, streams: map[uint32]*Stream{}, client: opts.ClientWire}
	if c.client < 0 || c.client > 1 {
		c.client, c.inferring = 0, true
	}
	for i := range c.wires {
		w := &c.wires[i]
		w.c, w.idx = c, i
		w.fr = http2.NewFramer(nil, &w.r)
		w.fr.AllowIllegalReads = true // order is checked here, tolerantly
		w.fr.SetMaxReadFrameSize(MaxFrameSizeLimit)
		w.fr.SetReuseFrames()
		w.dec = newHeaderDecoder(opts.MidStream)
		w.synced = !opts.MidStream
		w.maxFrame = DefaultMaxFrameSize
	}
	if !opts.MidStream && !c.inferring {
		c.wires[c.client].preface = len(ClientPreface)
	}
	if opts.Upgraded {
		s := c.stream(1, true)
		s.Upgraded = true
		s.Request.Seen, s.Request.HeadersSeen, s.Request.Ended = true, true, true
	}
	return c
}

// Stats returns the counters so far.
func (c *Conn) Stats() Stats { return c.stats }

// ClientWire returns the wire carrying the client's frames, and whether it
// is known (given, or inferred from a header block).
func (c *Conn) ClientWire() (int, bool) { return c.client, !c.inferring }

// Feed parses the next bytes p of wire w (0 or 1), which arrived at times t.
func (c *Conn) Feed(w int, p []byte, t bytetime.Times) {
	x := &c.wires[w&1]
	if x.preface > 0 && len(p) > 0 {
		want := ClientPreface[len(ClientPreface)-x.preface:]
		n := min(len(p), len(want))
		if !bytes.Equal(p[:n], []byte(want[:n])) {
			x.preface = 0
			x.loseSync()
		} else {
			x.preface -= n
			p = p[n:]
		}
	}
	if x.skip > 0 {
		k := min(x.skip, int64(len(p)))
		x.skip -= k
		p = p[k:]
	}
	if len(p) == 0 {
		return
	}
	old := len(x.buf)
	if old == 0 {
		x.bufFirst = t.First
	}
	x.buf = append(x.buf, p...)
	x.process(old, t)
}

// process parses the complete frames in buf; old is how many of its bytes
// were there before the chunk of times t.
func (x *wire) process(old int, t bytetime.Times) {
	off := 0
	for {
		if !x.synced {
			i, v := Scan(x.buf[off:], x.maxFrame)
			x.c.stats.SkippedBytes += int64(i)
			off += i
			if v == More && len(x.buf)-off > maxScanBuffer {
				// A plausible start that never confirms: move on.
				x.c.stats.SkippedBytes++
				off++
				continue
			}
			if v != Yes {
				break
			}
			x.synced = true
		}
		rest := x.buf[off:]
		if len(rest) < frameHeaderLen {
			break
		}
		n := frameLen(rest)
		if n > max(x.maxFrame, maxSyncedFrame) {
			// Longer than any peer sends: the stream is not where we
			// think it is. (Other oddities are left to the Framer, which
			// skips a bad frame whole.)
			x.loseSync()
			continue
		}
		end := frameHeaderLen + int(n)
		if len(rest) < end {
			break
		}
		first := t.First
		if off < old {
			first = x.bufFirst
		}
		x.frame(rest[:end], bytetime.Times{First: first, Last: t.Last})
		off += end
	}
	// Keep the unparsed tail at the front of buf.
	if off > 0 {
		if off < old {
			// bufFirst stays: the tail began before this chunk.
		} else {
			x.bufFirst = t.First
		}
		k := copy(x.buf, x.buf[off:])
		x.buf = x.buf[:k]
	}
	if cap(x.buf) > 1<<20 && len(x.buf) < 1<<16 {
		x.buf = slices.Clip(append([]byte(nil), x.buf...))
	}
}

// loseSync makes the wire search for frame boundaries again; every stream
// open now may miss frames, and the peer's HPACK table is unknown.
func (x *wire) loseSync() {
	c := x.c
	c.stats.Resyncs++
	x.synced = false
	x.abandonBlock()
	x.dec.reset()
	for _, s := range c.streams {
		s.Gap = true
		s.side(x.idx == c.client).GRPC.Gap(1 << 62)
	}
}

// Gap tells the parser that n bytes of wire w are missing at this point.
func (c *Conn) Gap(w int, n int64, t bytetime.Times) {
	if n <= 0 {
		return
	}
	x := &c.wires[w&1]
	if x.synced && x.preface == 0 && x.cutData(n, t) {
		return
	}
	c.stats.SkippedBytes += int64(len(x.buf))
	x.buf = x.buf[:0]
	x.preface = 0
	x.skip = 0
	if x.synced {
		x.loseSync()
	}
}

// cutData takes a gap of n bytes that falls inside the payload of a DATA
// frame (a write longer than the snaplen cuts a frame, not the framing):
// the frame header, and so its length, stream and flags, is in buf, and the
// gap ends before the frame does. The stream gets the payload bytes that
// were captured, counts the frame's whole length and is flagged
// BodyMissing; the rest of the frame is skipped as it arrives, and the wire
// stays in sync. It reports false, leaving everything as it was, for any
// other gap: one that starts before a frame header is complete, or reaches
// past the frame's end, loses the frame boundaries.
func (x *wire) cutData(n int64, t bytetime.Times) bool {
	if x.skip > 0 {
		// Inside the rest of a frame already cut.
		if n > x.skip {
			// On past its end: whole frames lost.
			x.skip = 0
			x.framesLost()
			return true
		}
		x.skip -= n
		return true
	}
	if len(x.buf) < frameHeaderLen {
		return false
	}
	h := x.buf[:frameHeaderLen]
	length := int64(frameLen(h))
	typ, flags, id := h[3], h[4], binary.BigEndian.Uint32(h[5:9])&0x7fffffff
	have := int64(len(x.buf) - frameHeaderLen)
	if typ != byte(http2.FrameData) || id == 0 || have >= length {
		return false
	}
	// past is how far the gap runs beyond the frame's end: frames lost
	// whole, up to where the write that was cut ended.
	past := n - (length - have)
	payload := x.buf[frameHeaderLen:]
	data := length // DATA payload bytes, padding excluded
	if http2.Flags(flags).Has(http2.FlagDataPadded) {
		if have == 0 {
			return false // the pad length is in the gap
		}
		pad := int64(payload[0])
		payload = payload[1:]
		data -= 1 + pad
		if data < 0 {
			return false
		}
	}
	if int64(len(payload)) > data {
		payload = payload[:data]
	}
	c := x.c
	c.stats.Frames++
	c.stats.CutFrames++
	if s := c.stream(id, true); s != nil {
		m := s.side(x.idx == c.client)
		x.data(s, m, payload, data, t)
		m.BodyMissing = true
		if s.GRPC {
			m.GRPC.Gap(data - int64(len(payload)))
		}
		if http2.Flags(flags).Has(http2.FlagDataEndStream) {
			m.Ended = true
			c.maybeComplete(s)
		}
	}
	x.buf = x.buf[:0]
	if past > 0 {
		x.framesLost()
		return true
	}
	x.skip = -past
	return true
}

// framesLost handles a gap that, after the rest of the DATA frame it cut,
// took whole frames: a write longer than the snaplen whose tail held more
// frames (Node.js writes a stream's HEADERS and all its DATA frames in one
// call). The cut frame was counted whole (and ended its stream if it said
// so). What the lost frames were is unknown: more DATA of any open stream
// (whose body length is then unknown: BodyBytes is a lower bound), its
// END_STREAM, or a header block whose HPACK insertions later blocks would
// reference. So the wire searches for frame sync again (the
// next write normally starts on a frame, and is then found at once), the
// open streams are flagged (Gap), and the HPACK table becomes placeholders,
// which never resolve a reference to a wrong entry (loseSync).
func (x *wire) framesLost() {
	c := x.c
	fromClient := x.idx == c.client
	for _, s := range c.streams {
		if m := s.side(fromClient); m.HeadersSeen && !m.Ended {
			m.BodyMissing, m.LengthUnknown = true, true
		}
	}
	c.stats.LostFrameRuns++
	x.loseSync()
}

// data adds a DATA frame's payload to message m of stream s: d is what was
// captured of it, total its length (padding excluded).
func (x *wire) data(s *Stream, m *Message, d []byte, total int64, t bytetime.Times) {
	if !m.Seen {
		m.Seen = true
		m.Start = t.First
	}
	m.BodyBytes += total
	if room := x.c.opts.MaxBodyCapture - len(m.Body); room > 0 {
		m.Body = append(m.Body, d[:min(room, len(d))]...)
	}
	if len(m.Body) < int(m.BodyBytes) {
		m.BodyTruncated = true
	}
	if s.GRPC {
		m.GRPC.Write(d)
	}
	m.End = t.Last
}

// Close ends both wires: streams still open are emitted as incomplete, in
// order of stream id.
func (c *Conn) Close(t bytetime.Times) {
	for i := range c.wires {
		x := &c.wires[i]
		x.abandonBlock()
		c.stats.SkippedBytes += int64(len(x.buf))
		x.buf = x.buf[:0]
	}
	c.order = c.order[:0]
	for id := range c.streams {
		c.order = append(c.order, id)
	}
	slices.Sort(c.order)
	for _, id := range c.order {
		if s, ok := c.streams[id]; ok {
			s.Incomplete = true
			c.finish(s)
		}
	}
}

func parity(id uint32) int { return int(id & 1) }

// stream returns the open stream id, creating it when create is set and the
// id is not one of a stream already closed.
func (c *Conn) stream(id uint32, create bool) *Stream {
	if s, ok := c.streams[id]; ok || !create {
		return s
	}
	if id == 0 {
		return nil
	}
	p := parity(id)
	switch {
	case id > c.maxID[p]:
		if c.firstID[p] == 0 {
			c.firstID[p] = id
		}
		c.maxID[p] = id
	case c.opts.MidStream && id < c.firstID[p]:
		// Opened before the capture joined.
	default:
		return nil // closed already
	}
	if len(c.streams) >= maxOpenStreams {
		c.evictOldest()
	}
	var s *Stream
	if n := len(c.free); n > 0 {
		s = c.free[n-1]
		c.free = c.free[:n-1]
	} else {
		s = new(Stream)
	}
	s.reset(id)
	c.streams[id] = s
	return s
}

func (c *Conn) evictOldest() {
	var oldest *Stream
	for _, s := range c.streams {
		if oldest == nil || s.ID < oldest.ID {
			oldest = s
		}
	}
	if oldest != nil {
		oldest.Incomplete = true
		c.finish(oldest)
	}
}

// finish emits a stream (when it carries anything worth reporting) and
// forgets it.
func (c *Conn) finish(s *Stream) {
	delete(c.streams, s.ID)
	if s.Request.HeadersSeen || s.Response.HeadersSeen || len(s.Response.Trailer) > 0 || s.Upgraded {
		if !s.Request.HeadersSeen {
			s.Incomplete = true // the request began before the capture
		}
		s.Request.GRPC.finish()
		s.Response.GRPC.finish()
		c.stats.Streams++
		c.emit(s)
	} else {
		c.stats.DroppedStreams++
	}
	if len(c.free) < 64 {
		c.free = append(c.free, s)
	}
}

// maybeComplete emits the stream when both sides ended (or the response
// ended and the request was never seen: it was sent before the capture).
func (c *Conn) maybeComplete(s *Stream) {
	// A request whose tail was lost with whole frames (LengthUnknown) may
	// have ended in them: once answered, it is complete as far as the
	// capture can tell; its body length stays unknown.
	if s.Response.Ended && (s.Request.Ended || !s.Request.Seen || s.Request.LengthUnknown) {
		c.finish(s)
	}
}

// frame handles one complete frame b.
func (x *wire) frame(b []byte, t bytetime.Times) {
	c := x.c
	x.r.b = b
	f, err := x.fr.ReadFrame()
	if err != nil {
		c.stats.BadFrames++
		if x.hbActive {
			x.abandonBlock()
		}
		return
	}
	c.stats.Frames++
	fromClient := x.idx == c.client
	size := int64(len(b))
	if x.hbActive {
		if cf, ok := f.(*http2.ContinuationFrame); ok && cf.StreamID == x.hbStream {
			x.hbBytes += size
			x.hbTimes = t
			x.dec.write(cf.HeaderBlockFragment())
			if cf.HeadersEnded() {
				x.endBlock(t)
			}
			return
		}
		x.abandonBlock()
	}
	switch f.(type) {
	case *http2.HeadersFrame, *http2.PushPromiseFrame:
	default:
		if c.opts.OnFrame != nil {
			c.opts.OnFrame(&Frame{Wire: x.idx, Frame: f, Times: t})
		}
	}
	switch f := f.(type) {
	case *http2.HeadersFrame:
		x.beginBlock(f.StreamID, 0, false, f.StreamEnded(), size, t)
		x.hbPriority, x.hbHasPriority = f.Priority, f.HasPriority()
		x.dec.write(f.HeaderBlockFragment())
		if f.HeadersEnded() {
			x.endBlock(t)
		}
	case *http2.PushPromiseFrame:
		x.beginBlock(f.PromiseID, f.StreamID, true, false, size, t)
		x.dec.write(f.HeaderBlockFragment())
		if f.HeadersEnded() {
			x.endBlock(t)
		}
	case *http2.DataFrame:
		s := c.stream(f.StreamID, true)
		if s == nil {
			return
		}
		m := s.side(fromClient)
		d := f.Data()
		x.data(s, m, d, int64(len(d)), t)
		if f.StreamEnded() {
			m.Ended = true
			c.maybeComplete(s)
		}
	case *http2.RSTStreamFrame:
		s := c.stream(f.StreamID, false)
		if s == nil {
			return
		}
		s.Reset, s.ResetByServer, s.ResetCode = true, !fromClient, uint32(f.ErrCode)
		c.finish(s)
	case *http2.SettingsFrame:
		if f.IsAck() {
			return
		}
		peer := &c.wires[1-x.idx]
		_ = f.ForeachSetting(func(st http2.Setting) error {
			switch st.ID {
			case http2.SettingHeaderTableSize:
				// Limits what the other side's encoder may use.
				peer.dec.setAllowed(st.Val)
			case http2.SettingMaxFrameSize:
				if st.Val <= MaxFrameSizeLimit {
					peer.maxFrame = max(peer.maxFrame, st.Val)
				}
			}
			return nil
		})
	case *http2.GoAwayFrame:
		x.goAway(f.LastStreamID, fromClient)
	}
	// PRIORITY, PING, WINDOW_UPDATE and unknown frame types carry nothing
	// an exchange needs.
}

// goAway marks the streams the sender will not process: those the receiver
// initiated with ids above last.
func (x *wire) goAway(last uint32, fromClient bool) {
	c := x.c
	p := 1 // a server's GOAWAY concerns client (odd) streams
	if fromClient {
		p = 0
	}
	c.order = c.order[:0]
	for id, s := range c.streams {
		if parity(id) == p && id > last && !s.Response.Ended {
			c.order = append(c.order, id)
		}
	}
	slices.Sort(c.order)
	for _, id := range c.order {
		s := c.streams[id]
		s.Refused = true
		c.finish(s)
	}
}

func (x *wire) beginBlock(id, assoc uint32, push, endStream bool, size int64, t bytetime.Times) {
	x.hbActive, x.hbPush, x.hbEndStream = true, push, endStream
	x.hbStream, x.hbAssoc, x.hbStart, x.hbBytes = id, assoc, t.First, size
	x.hbPriority, x.hbHasPriority, x.hbTimes = http2.PriorityParam{}, false, t
	x.dec.begin()
}

// abandonBlock drops a header block whose end will not come; the HPACK
// state is unknown from here on.
func (x *wire) abandonBlock() {
	if !x.hbActive {
		return
	}
	x.hbActive = false
	x.dec.end(true)
	x.onBlock(true, x.hbTimes)
	x.c.stats.LostBlocks++
	if s := x.c.streams[x.hbStream]; s != nil {
		s.side(x.idx == x.c.client && !x.hbPush).HeadersLost = true
	}
}

// endBlock finishes the header block in progress and assigns its fields.
func (x *wire) endBlock(t bytetime.Times) {
	c := x.c
	x.hbActive = false
	d := x.dec
	d.end(false)
	x.onBlock(false, t)
	c.stats.HeaderBlocks++
	c.stats.DecodedFields += int64(len(d.fields))
	c.stats.UnknownFields += int64(d.unknown)
	if d.lost {
		c.stats.LostBlocks++
	}
	c.infer(x.idx, d, x.hbPush)
	fromClient := x.idx == c.client
	s := c.stream(x.hbStream, true)
	if s == nil {
		return
	}
	var m *Message
	if x.hbPush {
		s.Pushed, s.Associated = true, x.hbAssoc
		m = &s.Request
		m.Ended = true
		m.End = t.Last
	} else {
		m = s.side(fromClient)
	}
	m.Seen = true
	m.HeaderBytes += x.hbBytes
	m.UnknownFields += d.unknown
	m.HeadersLost = m.HeadersLost || d.lost
	if ct, ok := Get(d.fields, "content-type"); ok && IsGRPC(ct) {
		s.GRPC = true
	}
	_, pseudo := firstPseudo(d.fields)
	noStatus := !fromClient && !x.hbPush && !pseudo // a response block without :status
	switch {
	case m.HeadersSeen || (!fromClient && !s.Request.HeadersSeen && !pseudo && x.hbEndStream && d.unknown == 0 && !d.lost):
		// A second block, or (joined mid-stream) a block ending the
		// stream without pseudo-headers: trailers.
		m.Trailer = append(m.Trailer[:0], d.fields...)
		if m.Start == 0 {
			m.Start = x.hbStart
		}
	case !fromClient && !x.hbPush && isInformational(d.fields):
		s.Informational++
	case noStatus && x.hbEndStream:
		// A response's first block seen has no :status and ends the
		// stream: trailers whose header block was lost (a gap, or frames
		// skipped while the wire resynced). They are not the response's
		// headers, and the response is flagged.
		m.Trailer = append(m.Trailer[:0], d.fields...)
		m.HeadersLost = true
		if m.Start == 0 {
			m.Start = x.hbStart
		}
	default:
		if noStatus {
			// Its status referenced an unknown HPACK entry, or was never
			// sent.
			m.HeadersLost = true
		}
		m.Header = append(m.Header[:0], d.fields...)
		m.HeadersSeen = true
		if m.Start == 0 || x.hbStart < m.Start {
			m.Start = x.hbStart
		}
	}
	if m.End < t.Last {
		m.End = t.Last
	}
	if x.hbEndStream {
		m.Ended = true
		c.maybeComplete(s)
	}
}

func firstPseudo(f []hpackField) (string, bool) {
	if len(f) > 0 && len(f[0].Name) > 0 && f[0].Name[0] == ':' {
		return f[0].Name, true
	}
	return "", false
}

func isInformational(f []hpackField) bool {
	st, ok := Get(f, ":status")
	return ok && len(st) == 3 && st[0] == '1'
}

// infer settles which wire is the client's from a header block: requests
// carry ":method", responses ":status", and only servers push.
func (c *Conn) infer(w int, d *headerDecoder, push bool) {
	if !c.inferring {
		return
	}
	client := -1
	switch {
	case push:
		client = 1 - w
	default:
		if _, ok := Get(d.fields, ":method"); ok {
			client = w
		} else if _, ok := Get(d.fields, ":status"); ok {
			client = 1 - w
		}
	}
	if client < 0 {
		return
	}
	c.inferring = false
	if client != c.client {
		c.client = client
		for _, s := range c.streams {
			s.Request, s.Response = s.Response, s.Request
		}
	}
	c.wires[c.client].preface = 0
}
