package pcapng

import (
	"bytes"
	"fmt"

	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/analyze/bytetime"
	"github.com/rewind-tools/rewind/analyze/http2"
	"github.com/rewind-tools/rewind/capture"
)

// HTTP/2 re-encoding.
//
// Wireshark decodes an HTTP/2 header block only if it saw every block sent
// before it in that direction: HPACK's dynamic table is built by the whole
// history. A recording that joined a connection mid-way, lost bytes, or is
// cut by a filter lacks that history, so the header blocks of an HTTP/2
// connection are written again: a fresh client preface and SETTINGS
// (SETTINGS_HEADER_TABLE_SIZE 0) start the connection's HTTP/2 part, and
// every header block is encoded by an hpack.Encoder whose dynamic table
// size is 0, so that it only uses the static table and literals without
// indexing; every block also starts with a dynamic table size update to 0.
// Each block then decodes on its own, from any starting point.
//
// The frames come from the parser of package analyze/http2 (its
// Options.OnFrame hook: frame sync, HPACK with unknown tables), so this
// file parses nothing itself. Frames other than header blocks are written
// again as they were with the x/net Framer (DATA split to the default
// maximum frame size, padding dropped; SETTINGS without
// SETTINGS_HEADER_TABLE_SIZE, which the synthetic stream fixes at 0).
// Header fields the parser could not decode (HPACK entries from before the
// capture) are left out, never invented, and the packet that starts the
// block's frame says so in its comment.

// maxH2Frame is the frame payload size of re-encoded header blocks and DATA
// frames: SETTINGS_MAX_FRAME_SIZE's initial value, which holds whatever
// the original SETTINGS allowed.
const maxH2Frame = http2.DefaultMaxFrameSize

// h2Transcoder re-encodes the HTTP/2 part of one connection; bytes before
// it (an h2c upgrade's HTTP/1.1, or a connection that is not HTTP/2) pass
// as they are.
type h2Transcoder struct {
	c         *analyze.Conn
	clientDir capture.Direction
	// per direction, indexed by dirIndex
	on [2]bool // the direction's HTTP/2 part began
	// hold keeps a direction's first bytes while they may be a split
	// preface, or HTTP/2 frames the pipeline has not recognised yet
	// (joined mid-connection: it needs a whole frame sequence); holdCalls
	// counts the calls held.
	hold      [2][]byte
	holdCalls [2]int
	passed    [2]int64 // bytes passed through unchanged

	p      *http2.Conn
	out    *Output // of the Data call in progress
	frames bytes.Buffer
	fr     *xhttp2.Framer
	hb     bytes.Buffer
	enc    [2]*hpack.Encoder
	sets   []xhttp2.Setting
}

// NewHTTP2Transcoder returns the [Transcoder] that re-encodes the HTTP/2
// part of c so that Wireshark decodes every stream from any starting point
// (see the notes in h2.go); bytes of other protocols pass unchanged.
// clientDir is the direction of the bytes the synthetic stream's client
// sends: the re-encoded part starts with a client preface there.
func NewHTTP2Transcoder(c *analyze.Conn, clientDir capture.Direction) Transcoder {
	t := &h2Transcoder{c: c, clientDir: clientDir}
	t.fr = xhttp2.NewFramer(&t.frames, nil)
	t.fr.AllowIllegalWrites = true // frames are copied, not judged
	for i := range t.enc {
		t.enc[i] = hpack.NewEncoder(&t.hb)
		t.enc[i].SetMaxDynamicTableSizeLimit(0)
	}
	return t
}

func dirIndex(d capture.Direction) int {
	if d == capture.Egress {
		return 1
	}
	return 0
}

func dirAt(i int) capture.Direction {
	if i == 1 {
		return capture.Egress
	}
	return capture.Ingress
}

var prefaceBytes = []byte(http2.ClientPreface)

// Data implements [Transcoder].
func (t *h2Transcoder) Data(dir capture.Direction, p []byte, out *Output) {
	d := dirIndex(dir)
	t.out = out
	defer func() { t.out = nil }()
	if !t.on[d] {
		if len(t.hold[d]) > 0 {
			p = append(t.hold[d], p...)
			t.hold[d] = nil
		}
		if t.c.Proto != "HTTP/2" && t.mayHold(d, p) {
			t.hold[d] = append(t.hold[d][:0], p...)
			t.holdCalls[d]++
			return
		}
		if t.c.Proto != "HTTP/2" {
			t.passed[d] += int64(len(p))
			out.Write(dir, p)
			return
		}
		p = t.begin(d, p)
	}
	if len(p) > 0 {
		t.p.Feed(d, p, bytetime.Times{})
	}
}

// Bounds of what a direction holds while its protocol is unknown.
const (
	maxHoldBytes = 64 << 10
	maxHoldCalls = 8
)

// mayHold says whether p, the first bytes of direction d (with what it
// holds), should wait for the pipeline to tell whether they are HTTP/2: a
// preface cut short, or bytes where a frame may start. Bytes the pipeline
// passes through before it finds HTTP/2 would otherwise reach Wireshark
// ahead of the synthetic preface, and its HTTP dissector would wait for the
// end of a "message" that never comes. Text protocols never look like
// frames (a frame header starts with a zero byte), so only binary ones may
// wait, and not for long.
func (t *h2Transcoder) mayHold(d int, p []byte) bool {
	if t.passed[d] > 0 || len(p) > maxHoldBytes || t.holdCalls[d] >= maxHoldCalls {
		return false
	}
	if len(p) < len(prefaceBytes) && bytes.HasPrefix(prefaceBytes, p) {
		return true
	}
	// Scan also says More for a tail too short to judge: only a whole
	// plausible frame header counts.
	i, v := http2.Scan(p, http2.DefaultMaxFrameSize)
	return v == http2.Yes || v == http2.More && len(p)-i >= 9
}

// End implements [Transcoder]: bytes still held were no HTTP/2.
func (t *h2Transcoder) End(out *Output) {
	for d := range t.hold {
		if len(t.hold[d]) > 0 && !t.on[d] {
			out.Write(dirAt(d), t.hold[d])
		}
		t.hold[d] = nil
	}
}

// begin starts the HTTP/2 part of direction d, which the pipeline found in
// p, and returns the bytes of p to parse.
func (t *h2Transcoder) begin(d int, p []byte) []byte {
	dir := dirAt(d)
	t.on[d] = true
	var start, skip int
	if i := bytes.Index(p, prefaceBytes); i >= 0 {
		start, skip = i, len(prefaceBytes)
	} else {
		// The first frame: after an h2c upgrade's 101 (text, which no
		// plausible frame header starts in), or where a recording that
		// joined mid-connection finds frame sync.
		start, _ = http2.Scan(p, http2.DefaultMaxFrameSize)
	}
	var note string
	if t.passed[d] > 0 || bytes.HasPrefix(p, []byte("HTTP/1.")) {
		t.passed[d] += int64(start)
		t.out.Write(dir, p[:start])
	} else if start > 0 {
		// The end of a frame whose start the capture lacks.
		note = fmt.Sprintf("%d bytes before the first whole HTTP/2 frame left out", start)
	}
	if t.p == nil {
		t.p = http2.NewConn(http2.Options{
			ClientWire: dirIndex(t.clientDir),
			// The parser may meet HPACK references to entries it never
			// saw; the preface, if any, was taken out above.
			MidStream: true,
			OnFrame:   t.onFrame,
		}, func(*http2.Stream) {})
		t.preamble()
	}
	if note != "" {
		t.out.Note(dir, note)
	}
	return p[start+skip:]
}

// preamble writes the synthetic start of the connection's HTTP/2 part: the
// client preface and SETTINGS from the client, SETTINGS from the server,
// and both acknowledgements.
func (t *h2Transcoder) preamble() {
	cd := t.clientDir
	sd := capture.Ingress
	if cd == capture.Ingress {
		sd = capture.Egress
	}
	zero := xhttp2.Setting{ID: xhttp2.SettingHeaderTableSize, Val: 0}
	t.out.Note(cd, "HTTP/2 preface and SETTINGS written by rewind: header blocks are re-encoded without the HPACK dynamic table")
	t.frames.WriteString(http2.ClientPreface)
	_ = t.fr.WriteSettings(zero)
	t.flush(cd)
	t.out.Note(sd, "SETTINGS written by rewind")
	_ = t.fr.WriteSettings(zero)
	_ = t.fr.WriteSettingsAck()
	t.flush(sd)
	_ = t.fr.WriteSettingsAck()
	t.flush(cd)
}

func (t *h2Transcoder) flush(dir capture.Direction) {
	t.out.Write(dir, t.frames.Bytes())
	t.frames.Reset()
}

// Gap implements [Transcoder]: the parser looks for frame sync again.
func (t *h2Transcoder) Gap(dir capture.Direction, n int64) int64 {
	d := dirIndex(dir)
	if t.on[d] {
		t.p.Gap(d, n, bytetime.Times{})
	} else if len(t.hold[d]) > 0 {
		n += int64(len(t.hold[d]))
		t.passed[d] += int64(len(t.hold[d]))
		t.hold[d] = nil
	}
	return n
}

// onFrame writes one frame (or header block) again.
func (t *h2Transcoder) onFrame(f *http2.Frame) {
	if t.out == nil {
		return // Close's leftovers: nothing can be written any more
	}
	dir := dirAt(f.Wire)
	fr := t.fr
	var err error
	note := ""
	if f.Block != nil {
		note, err = t.block(f.Wire, f.Block)
	} else {
		switch x := f.Frame.(type) {
		case *xhttp2.DataFrame:
			d := x.Data()
			for len(d) > maxH2Frame {
				if err = fr.WriteData(x.StreamID, false, d[:maxH2Frame]); err != nil {
					break
				}
				d = d[maxH2Frame:]
			}
			if err == nil {
				err = fr.WriteData(x.StreamID, x.StreamEnded(), d)
			}
		case *xhttp2.SettingsFrame:
			if x.IsAck() {
				err = fr.WriteSettingsAck()
				break
			}
			t.sets = t.sets[:0]
			_ = x.ForeachSetting(func(s xhttp2.Setting) error {
				if s.ID != xhttp2.SettingHeaderTableSize {
					t.sets = append(t.sets, s)
				}
				return nil
			})
			err = fr.WriteSettings(t.sets...)
		case *xhttp2.RSTStreamFrame:
			err = fr.WriteRSTStream(x.StreamID, x.ErrCode)
		case *xhttp2.GoAwayFrame:
			err = fr.WriteGoAway(x.LastStreamID, x.ErrCode, x.DebugData())
		case *xhttp2.PingFrame:
			err = fr.WritePing(x.IsAck(), x.Data)
		case *xhttp2.WindowUpdateFrame:
			err = fr.WriteWindowUpdate(x.StreamID, x.Increment)
		case *xhttp2.PriorityFrame:
			err = fr.WritePriority(x.StreamID, x.PriorityParam)
		case *xhttp2.UnknownFrame:
			h := x.Header()
			err = fr.WriteRawFrame(h.Type, h.Flags, h.StreamID, x.Payload())
		case *xhttp2.ContinuationFrame:
			// It continues a block that began before the capture.
			note = fmt.Sprintf("a CONTINUATION frame of stream %d left out: its block began before the capture", x.StreamID)
		}
	}
	if err != nil {
		t.frames.Reset() // not written: the frame cannot be copied
		note = fmt.Sprintf("an HTTP/2 frame left out: %v", err)
	}
	if note != "" {
		t.out.Note(dir, note)
	}
	t.flush(dir)
}

// block writes a header block again, encoded without the dynamic table,
// and returns the note for its packet.
func (t *h2Transcoder) block(w int, b *http2.HeaderBlock) (string, error) {
	var note string
	switch {
	case b.Lost:
		note = fmt.Sprintf("stream %d: header block not decoded to its end (%d fields kept): later fields are missing", b.StreamID, len(b.Fields))
	case b.Unknown > 0:
		note = fmt.Sprintf("stream %d: %d header fields left out: they referenced HPACK entries from before the capture", b.StreamID, b.Unknown)
	}
	if len(b.Fields) == 0 {
		// Nothing to show, and an empty block is no header block a
		// decoder expects; END_STREAM still ends the stream.
		note = fmt.Sprintf("stream %d: header block left out: none of its fields could be decoded", b.StreamID)
		if b.EndStream && b.PromiseID == 0 {
			return note, t.fr.WriteData(b.StreamID, true, nil)
		}
		return note, nil
	}
	enc := t.enc[w]
	t.hb.Reset()
	// Every block starts with a dynamic table size update to 0: whatever
	// the reader believes the table size to be, it is 0 from here.
	enc.SetMaxDynamicTableSize(0)
	for _, f := range b.Fields {
		if err := enc.WriteField(f); err != nil {
			return note, fmt.Errorf("encoding header field %q: %w", f.Name, err)
		}
	}
	frag := t.hb.Bytes()
	first := frag[:min(len(frag), maxH2Frame)]
	rest := frag[len(first):]
	var err error
	if b.PromiseID != 0 {
		err = t.fr.WritePushPromise(xhttp2.PushPromiseParam{StreamID: b.StreamID, PromiseID: b.PromiseID, BlockFragment: first, EndHeaders: len(rest) == 0})
	} else {
		hp := xhttp2.HeadersFrameParam{StreamID: b.StreamID, BlockFragment: first, EndStream: b.EndStream, EndHeaders: len(rest) == 0}
		if b.HasPriority {
			hp.Priority = b.Priority
		}
		err = t.fr.WriteHeaders(hp)
	}
	for err == nil && len(rest) > 0 {
		part := rest[:min(len(rest), maxH2Frame)]
		rest = rest[len(part):]
		err = t.fr.WriteContinuation(b.StreamID, len(rest) == 0, part)
	}
	return note, err
}
