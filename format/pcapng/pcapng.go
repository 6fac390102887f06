// Package pcapng writes a replay as a pcapng file that Wireshark decodes:
// every connection becomes one synthetic TCP/IP stream carrying its
// plaintext both ways (TLS plaintext included) with a handshake, MSS-sized
// segments, consistent sequence and acknowledgement numbers, valid checksums
// and a FIN exchange; each packet's comment names the process. Packets the
// recorder captured go on interfaces of their own, as they were.
//
// [Writer] is an [analyze.Sink] that also implements [analyze.StreamSink]
// and [analyze.PacketSink]; pass it to [analyze.Replay]. See README.md for
// how the streams are laid out and why TLS ports are rewritten.
package pcapng

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
)

// Segment sizes. The streams are synthetic, so no link limits them; they
// are cut as on an Ethernet path (MTU 1500) because that is what Wireshark
// users read every day, and it keeps each packet short enough to read.
const (
	// MSS4 is the segment size of IPv4 streams: 1500 - 20 (IP) - 20 (TCP).
	MSS4 = 1460
	// MSS6 is the segment size of IPv6 streams: 1500 - 40 (IP) - 20 (TCP).
	MSS6 = 1440
)

const (
	// windowScale is the shift both ends announce, so that the advertised
	// window (65535 << 7, 8 MiB) never fills on large calls.
	windowScale = 7
	// ackEvery bounds the bytes a side sends before the peer acknowledges
	// them within one call.
	ackEvery = 64 << 10
	// streamIface is the interface id of the synthetic streams.
	streamIface = 0
)

// Options configure a [Writer].
type Options struct {
	// Version is rewind's version, written in the section header's
	// user-application option as "rewind VERSION".
	Version string
	// MSS overrides the segment size ([MSS4], [MSS6]) when positive.
	MSS int
	// Transcoder, when set, is asked once per connection, before its first
	// bytes are written, for a [Transcoder] that rewrites its plaintext; it
	// returns nil to keep the plaintext as is. clientDir is the direction
	// (seen from the traced process) of the bytes the synthetic stream's
	// client sends. When Transcoder is nil, every connection gets the
	// HTTP/2 re-encoder ([NewHTTP2Transcoder]), which leaves other
	// protocols as they are.
	Transcoder func(c *analyze.Conn, clientDir capture.Direction) Transcoder
}

// Transcoder rewrites the plaintext of one connection before it is cut into
// segments.
type Transcoder interface {
	// Data writes to out the bytes to send for p, moved in direction dir
	// (seen from the traced process). It may buffer, and write fewer, more
	// or no bytes, in either direction.
	Data(dir capture.Direction, p []byte, out *Output)
	// Gap is told n bytes of dir are missing from the capture and returns
	// how far the synthetic stream skips.
	Gap(dir capture.Direction, n int64) int64
	// End is called before the connection's FIN: it writes to out what it
	// still holds.
	End(out *Output)
}

// Output collects what a [Transcoder] writes for one call: runs of bytes
// in either direction, in order, some starting with a note for the packet
// comment.
type Output struct {
	buf   []byte
	parts []outPart
}

type outPart struct {
	dir        capture.Direction
	start, end int
	note       string
}

func (o *Output) reset() {
	o.buf, o.parts = o.buf[:0], o.parts[:0]
}

// Write appends p to the bytes sent in direction dir.
func (o *Output) Write(dir capture.Direction, p []byte) {
	if len(p) == 0 {
		return
	}
	if n := len(o.parts); n == 0 || o.parts[n-1].dir != dir {
		o.parts = append(o.parts, outPart{dir: dir, start: len(o.buf), end: len(o.buf)})
	}
	o.buf = append(o.buf, p...)
	o.parts[len(o.parts)-1].end = len(o.buf)
}

// Note makes the next bytes written in direction dir start a new segment
// whose comment ends with note.
func (o *Output) Note(dir capture.Direction, note string) {
	o.parts = append(o.parts, outPart{dir: dir, start: len(o.buf), end: len(o.buf), note: note})
}

// Writer writes the pcapng. Its methods are called by [analyze.Replay]:
// Begin writes the section header and the synthetic streams' interface,
// End flushes. Like [pcapgo.NgWriter] it buffers: End must have returned
// before the underlying file is closed (flush the writer, then close the
// file). It is not safe for concurrent use.
type Writer struct {
	out   io.Writer
	opts  Options
	ng    *pcapgo.NgWriter
	clock capture.ClockMapping
	err   error

	streams map[*analyze.Conn]*stream
	tuples  map[tuple]*stream // the 4-tuples of open streams
	ifaces  map[ifaceKey]int  // interfaces of captured packets
	nIfaces int
	nConns  int
	// realPackets: the capture has packets, whose 4-tuples the synthetic
	// streams must not reuse (stream.go).
	realPackets bool

	// Scratch reused for every packet, so writing a segment allocates
	// little.
	buf     gopacket.SerializeBuffer
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	payload gopacket.Payload
	comment [1]string
	sopts   gopacket.SerializeOptions
	tcOut   Output // a Transcoder's output for one call
}

var (
	_ analyze.Sink       = (*Writer)(nil)
	_ analyze.StreamSink = (*Writer)(nil)
	_ analyze.PacketSink = (*Writer)(nil)
)

// New returns a Writer writing to w.
func New(w io.Writer, opts Options) *Writer {
	return &Writer{
		out:     w,
		opts:    opts,
		streams: map[*analyze.Conn]*stream{},
		tuples:  map[tuple]*stream{},
		ifaces:  map[ifaceKey]int{},
		buf:     gopacket.NewSerializeBuffer(),
		sopts:   gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
	}
}

// Begin implements [analyze.Sink]: it writes the section header and the
// interface of the synthetic streams (raw IP, nanosecond timestamps).
func (w *Writer) Begin(info *analyze.CaptureInfo) error {
	w.clock = info.Header.Clock
	w.realPackets = info.Header.Options.Packets
	app := "rewind"
	if w.opts.Version != "" {
		app += " " + w.opts.Version
	}
	section := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Application: app,
		Comment: fmt.Sprintf("replay of a capture of %s (kernel %s): synthetic TCP streams carry the plaintext of every connection",
			orUnknown(info.Header.Host), orUnknown(info.Header.Kernel)),
	}}
	iface := pcapgo.NgInterface{
		Name:                "rewind",
		Description:         "synthetic TCP/IP streams rebuilt from recorded syscall and TLS plaintext",
		LinkType:            layers.LinkTypeRaw,
		TimestampResolution: 9,
	}
	ng, err := pcapgo.NewNgWriterInterface(w.out, iface, section)
	if err != nil {
		return w.fail(fmt.Errorf("writing pcapng header: %w", err))
	}
	w.ng = ng
	w.nIfaces = 1
	return nil
}

// Exchange implements [analyze.Sink]; exchanges are in the streams already.
func (w *Writer) Exchange(*analyze.Exchange) error { return w.err }

// End implements [analyze.Sink]: it closes streams still open (the replay
// closes every connection, so normally none) and flushes.
func (w *Writer) End(*analyze.Summary) error {
	if w.err != nil {
		return w.err
	}
	if w.ng == nil {
		return errors.New("pcapng: End before Begin")
	}
	for len(w.streams) > 0 {
		// Deterministic order: by connection number.
		var first *stream
		for _, s := range w.streams {
			if first == nil || s.n < first.n {
				first = s
			}
		}
		if err := w.ConnClose(first.c, first.last); err != nil {
			return err
		}
	}
	if err := w.ng.Flush(); err != nil {
		return w.fail(fmt.Errorf("flushing pcapng: %w", err))
	}
	return nil
}

// The optional sink interfaces the replay finds by type assertion.
var (
	_ analyze.StreamSink = (*Writer)(nil)
	_ analyze.PacketSink = (*Writer)(nil)
)

// ConnOpen implements [analyze.StreamSink]: it starts the connection's
// synthetic stream with a three-way handshake at time t.
func (w *Writer) ConnOpen(c *analyze.Conn, t uint64) error {
	if w.err != nil {
		return w.err
	}
	if _, ok := w.streams[c]; ok {
		return nil
	}
	w.nConns++
	s := &stream{c: c, n: w.nConns, open: t, last: t}
	w.streams[c] = s
	if c.Role != capture.RoleUnknown && !portMayChange(c) {
		return w.start(s, c.Role == capture.RoleClient)
	}
	// Which end initiated is unknown until the first bytes: the sender of
	// the first bytes is taken as the client. A server port Wireshark does
	// not hand to HTTP waits too, for the protocol (see httpPorts); the
	// handshake keeps its time, so packets of other streams written in
	// between may come before it in the file.
	return nil
}

// portMayChange says whether c's server port is one the stream writes as
// 80 if the connection turns out to carry HTTP.
func portMayChange(c *analyze.Conn) bool {
	sv := c.Local
	if c.Role == capture.RoleClient {
		sv = c.Remote
	}
	if !sv.IsValid() {
		return false // a placeholder: port 80
	}
	p := sv.Port()
	if q, ok := tlsPorts[p]; ok {
		p = q
	}
	return !httpPorts[p]
}

// StreamData implements [analyze.StreamSink]: it writes p as segments from
// the sending end, each at a time between the call's entry and exit, and a
// pure ACK from the other end.
func (w *Writer) StreamData(c *analyze.Conn, sp analyze.StreamSpan, p []byte) error {
	s, err := w.ready(c, sp.Dir)
	if err != nil || len(p) == 0 {
		return err
	}
	if s.tc == nil {
		return w.send(s, s.side(sp.Dir), sp, p, "", true)
	}
	w.tcOut.reset()
	s.tc.Data(sp.Dir, p, &w.tcOut)
	return w.sendOutput(s, sp)
}

// sendOutput writes what a Transcoder wrote to w.tcOut during call sp.
func (w *Writer) sendOutput(s *stream, sp analyze.StreamSpan) error {
	parts := w.tcOut.parts
	for i, pt := range parts {
		if pt.start == pt.end {
			continue
		}
		// The other end acknowledges when the direction changes, or at
		// the end of the call.
		ack := true
		for _, next := range parts[i+1:] {
			if next.start < next.end {
				ack = next.dir != pt.dir
				break
			}
		}
		if err := w.send(s, s.side(pt.dir), sp, w.tcOut.buf[pt.start:pt.end], pt.note, ack); err != nil {
			return err
		}
	}
	return nil
}

// send writes p as segments from end `from`, spread over the call sp, the
// first segment's comment ending with note; with ack, the other end
// acknowledges at the end.
func (w *Writer) send(s *stream, from int, sp analyze.StreamSpan, p []byte, note string, ack bool) error {
	if len(p) == 0 {
		return nil
	}
	mss := s.mss
	n := (len(p) + mss - 1) / mss
	sent := 0
	for k := 0; k < n; k++ {
		seg := p[k*mss : min((k+1)*mss, len(p))]
		// Segments leave while the call runs: spread them over it, the
		// last at its exit.
		ts := sp.Last
		if sp.Last > sp.First {
			ts = sp.First + (sp.Last-sp.First)*uint64(k+1)/uint64(n)
		}
		flags := flagACK
		if k == n-1 {
			flags |= flagPSH
		}
		if k == 0 {
			s.frameNote[from] = note
		}
		if err := w.segment(s, from, flags, ts, sp.TID, seg); err != nil {
			return err
		}
		sent += len(seg)
		if sent >= ackEvery && k < n-1 {
			if err := w.segment(s, 1-from, flagACK, ts, 0, nil); err != nil {
				return err
			}
			sent = 0
		}
	}
	if !ack {
		return nil
	}
	return w.segment(s, 1-from, flagACK, s.last, 0, nil)
}

// StreamGap implements [analyze.StreamSink]: the sending end's sequence
// number skips n bytes, and its next packet's comment says so.
func (w *Writer) StreamGap(c *analyze.Conn, sp analyze.StreamSpan, n int64) error {
	s, err := w.ready(c, sp.Dir)
	if err != nil {
		return err
	}
	if s.tc != nil {
		n = s.tc.Gap(sp.Dir, n)
	}
	if n <= 0 {
		return nil
	}
	from := s.side(sp.Dir)
	s.nxt[from] += uint32(n)
	s.missing[from] += n
	return nil
}

// ConnClose implements [analyze.StreamSink]: the traced process's end sends
// FIN, the other end answers FIN-ACK, and the process's end ACKs.
func (w *Writer) ConnClose(c *analyze.Conn, t uint64) error {
	if w.err != nil {
		return w.err
	}
	s, ok := w.streams[c]
	if !ok {
		return nil
	}
	if !s.started {
		if err := w.start(s, c.Role != capture.RoleServer); err != nil {
			return err
		}
	}
	if s.tc != nil {
		w.tcOut.reset()
		s.tc.End(&w.tcOut)
		if err := w.sendOutput(s, analyze.StreamSpan{First: t, Last: t}); err != nil {
			return err
		}
	}
	proc := s.procSide
	if err := w.segment(s, proc, flagFIN|flagACK, t, 0, nil); err != nil {
		return err
	}
	s.nxt[proc]++
	if err := w.segment(s, 1-proc, flagFIN|flagACK, t, 0, nil); err != nil {
		return err
	}
	s.nxt[1-proc]++
	if err := w.segment(s, proc, flagACK, t, 0, nil); err != nil {
		return err
	}
	delete(w.streams, c)
	if w.tuples[s.tuple] == s {
		delete(w.tuples, s.tuple)
	}
	return nil
}

// Packet implements [analyze.PacketSink]: a captured packet is written as
// is, on an interface per (ifindex, link type).
func (w *Writer) Packet(p *capture.Packet) error {
	if w.err != nil {
		return w.err
	}
	k := ifaceKey{p.Ifindex, p.LinkType}
	id, ok := w.ifaces[k]
	if !ok {
		var err error
		id, err = w.ng.AddInterface(pcapgo.NgInterface{
			Name:                "if" + strconv.FormatUint(uint64(p.Ifindex), 10),
			Description:         "packets captured by rewind record (ifindex " + strconv.FormatUint(uint64(p.Ifindex), 10) + ")",
			LinkType:            layers.LinkType(p.LinkType),
			TimestampResolution: 9,
		})
		if err != nil {
			return w.fail(fmt.Errorf("writing pcapng interface: %w", err))
		}
		w.ifaces[k] = id
		w.nIfaces++
	}
	length := int(p.OrigLen)
	if length < len(p.Data) {
		length = len(p.Data)
	}
	ci := gopacket.CaptureInfo{Timestamp: w.wall(p.Timestamp), CaptureLength: len(p.Data), Length: length, InterfaceIndex: id}
	opts := pcapgo.NgPacketOptions{}
	switch p.Dir {
	case capture.Ingress:
		opts.Flags = &flagsIn
	case capture.Egress:
		opts.Flags = &flagsOut
	}
	if err := w.ng.WritePacketWithOptions(ci, p.Data, opts); err != nil {
		return w.fail(fmt.Errorf("writing captured packet: %w", err))
	}
	return nil
}

var (
	flagsIn  = pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionInbound}
	flagsOut = pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionOutbound}
)

type ifaceKey struct {
	ifindex  uint32
	linkType uint16
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

// wall converts a monotonic time of the capture to wall-clock time.
func (w *Writer) wall(mono uint64) time.Time {
	return time.Unix(0, w.clock.WallUnixNS+int64(mono)-int64(w.clock.MonoNS))
}

// ready returns c's stream with its handshake written, the sender of the
// first bytes taken as the client when the role is unknown.
func (w *Writer) ready(c *analyze.Conn, dir capture.Direction) (*stream, error) {
	if w.err != nil {
		return nil, w.err
	}
	s, ok := w.streams[c]
	if !ok {
		// A sink joined after the connection opened: open it now.
		if err := w.ConnOpen(c, c.Start); err != nil {
			return nil, err
		}
		s = w.streams[c]
	}
	if !s.started {
		procIsClient := dir == capture.Egress
		switch c.Role {
		case capture.RoleClient:
			procIsClient = true
		case capture.RoleServer:
			procIsClient = false
		}
		if err := w.start(s, procIsClient); err != nil {
			return nil, err
		}
	}
	if !s.tcAsked {
		s.tcAsked = true
		clientDir := capture.Ingress
		if s.procSide == client {
			clientDir = capture.Egress
		}
		if w.opts.Transcoder != nil {
			s.tc = w.opts.Transcoder(c, clientDir)
		} else {
			s.tc = NewHTTP2Transcoder(c, clientDir)
		}
	}
	return s, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown host"
	}
	return s
}

// ip converts an address to the slice form the layers want.
func ip(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }

// isn is a stream end's initial sequence number: fixed for a connection id,
// so output is deterministic, and different between connections.
func isn(id string, side int) uint32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	h.Write([]byte{byte(side)})
	return h.Sum32()
}
