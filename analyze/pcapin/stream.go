package pcapin

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/rewind-tools/rewind/analyze/tcpip"
	"github.com/rewind-tools/rewind/capture"
)

// Reassembly limits.
const (
	// maxGapEvent bounds the Len of one gap event; larger holes take several.
	maxGapEvent = 1 << 30
	// tombstoneNS is how long a closed connection's 4-tuple keeps absorbing
	// late packets (final ACKs, retransmitted FINs) before a packet without
	// SYN may open a new, mid-stream connection on it.
	tombstoneNS = 120e9
	// maxTombstones bounds the closed connections remembered.
	maxTombstones = 1 << 16
	// maxSegments bounds the out-of-order segments held per direction.
	maxSegments = 4096
)

// conn is one TCP connection, identified by its 4-tuple. Directions are
// indexed as the pipeline sees them from the "local" end: 0 is remote→local
// (Ingress), 1 is local→remote (Egress). Local is the server when the
// handshake was seen, the first packet's destination otherwise.
type conn struct {
	fd            int32
	keyIn, keyOut tcpip.FlowKey // the 4-tuples of directions 0 and 1
	local, remote netip.AddrPort
	h             [2]half
	syn           bool // the handshake was seen: an Accept was emitted
	closed        bool
	closedAt      uint64
}

// half is one direction of a connection: its sequence space and the
// out-of-order segments waiting for a hole to fill.
type half struct {
	started bool
	syn     bool   // its SYN was seen
	synSeq  uint32 // the SYN's sequence number, to spot retransmitted SYNs
	base    uint32 // sequence number of stream offset 0
	next    uint32 // next sequence number to deliver
	off     uint64 // stream bytes delivered, gaps included
	fin     bool
	finSeq  uint32 // sequence number just after the last byte
	done    bool   // delivered up to the FIN
	// ackedRel is the highest stream offset reported acknowledged.
	ackedRel uint32
	// ackAhead is set when the peer acknowledged bytes beyond next: they
	// were sent but not captured, and become a gap unless the very next
	// packet of the connection brings them (capture reordering).
	ackAhead    bool
	ackAheadSeq uint32
	ackAheadPkt uint64
	ooo         []held
	oooBytes    int
}

// held is an out-of-order segment, copied out of the packet buffer.
type held struct {
	seq  uint32
	wire uint32 // length on the wire; buf may hold fewer bytes (snaplen)
	buf  []byte
}

func (h *half) start(seq uint32) {
	h.started = true
	h.base, h.next = seq, seq
}

// assembler turns TCP segments into pipeline events.
type assembler struct {
	maxBuf int
	counts *Counts
	conns  map[tcpip.FlowKey]*conn
	// cache sits in front of conns: packets of a few busy connections
	// take turns, and hashing a 36-byte key for each is a visible cost.
	cache  [flowSlots]flowSlot
	nextFD int32
	closed []*conn // tombstones, oldest first
	pktNo  uint64

	seg tcpip.Segment
	q   []capture.Event
	// out is the batch the queued events go to: Data and TCP events are
	// made in its stores in the first place, rather than in pools of the
	// assembler's own and then copied there (see batch.add).
	out   *batch
	used  [][]byte // out-of-order buffers delivered in this round
	spare [][]byte
}

func (a *assembler) init(maxBuf int, counts *Counts) {
	a.maxBuf = maxBuf
	a.counts = counts
	a.conns = map[tcpip.FlowKey]*conn{}
}

// recycle is called when every queued event has been consumed.
func (a *assembler) recycle() {
	for i, b := range a.used {
		if len(a.spare) < 64 {
			a.spare = append(a.spare, b[:0])
		}
		a.used[i] = nil
	}
	a.used = a.used[:0]
}

// newData returns a zeroed Data event in the out batch's store.
func (a *assembler) newData() *capture.Data { return carve(&a.out.datas) }

// newTCP returns a zeroed TCP event in the out batch's store.
func (a *assembler) newTCP() *capture.TCP { return carve(&a.out.tcps) }

func (a *assembler) lookup(k *tcpip.FlowKey) (*conn, int) {
	s := &a.cache[slot(k)]
	if c := s.c; c != nil {
		if k.Equal(&c.keyIn) {
			return c, 0
		}
		if k.Equal(&c.keyOut) {
			return c, 1
		}
	}
	c := a.conns[*k]
	if c == nil {
		return nil, 0
	}
	s.c = c
	if k.Equal(&c.keyIn) {
		return c, 0
	}
	return c, 1
}

// flowSlot caches one connection of assembler.conns (c nil: none), under
// the slot of its two 4-tuples. forget clears the slot of the connection
// it deletes, so the cache never disagrees with the map.
type flowSlot struct {
	c *conn
}

// flowSlots is the size of that cache (a power of two).
const flowSlots = 64

// slot returns k's slot in the cache. It is the same for both directions
// of a connection: the ports and addresses are combined symmetrically.
func slot(k *tcpip.FlowKey) int {
	h := uint32(k.SrcPort^k.DstPort) ^ binary.LittleEndian.Uint32(k.Src[12:]) ^ binary.LittleEndian.Uint32(k.Dst[12:])
	return int((h*0x9E3779B1)>>26) & (flowSlots - 1)
}

// packet handles one captured packet (wire: its length on the wire, 0 when
// unknown) and appends the events it causes to q.
func (a *assembler) packet(link int, data []byte, wire int, ts uint64, q []capture.Event) []capture.Event {
	a.q = q
	a.pktNo++
	seg := &a.seg
	switch tcpip.Decode(link, data, wire, seg) {
	case tcpip.TCP:
	case tcpip.Fragment:
		a.counts.Fragments++
		return a.q
	case tcpip.Bad:
		a.counts.Malformed++
		return a.q
	default:
		a.counts.NonTCP++
		return a.q
	}
	if seg.WireLen > uint32(len(seg.Payload)) {
		a.counts.TruncatedPackets++
	}
	syn := seg.Flags&tcpip.SYN != 0
	c, d := a.lookup(&seg.Key)
	if c != nil && syn {
		h := &c.h[d]
		if h.syn && h.synSeq == seg.Seq {
			if c.closed {
				return a.q // a duplicate of the old connection's SYN
			}
		} else if c.closed || seg.Flags&tcpip.ACK == 0 {
			// A new connection on this 4-tuple.
			if !c.closed {
				a.end(c, ts)
			}
			a.forget(c)
			c = nil
		}
	}
	if c != nil && c.closed {
		return a.q // late packets of a closed connection
	}
	if c == nil {
		if seg.Flags&tcpip.RST != 0 || (!syn && seg.WireLen == 0) {
			return a.q // nothing to start a connection from
		}
		c, d = a.create(seg, ts)
	}
	a.segment(c, d, seg, ts)
	return a.q
}

// create starts a connection at its first useful packet.
func (a *assembler) create(seg *tcpip.Segment, ts uint64) (*conn, int) {
	a.nextFD++
	a.counts.Connections++
	src, dst := seg.Src(), seg.Dst()
	c := &conn{fd: a.nextFD}
	d := 0
	syn := seg.Flags&tcpip.SYN != 0
	if syn && seg.Flags&tcpip.ACK != 0 {
		// SYN-ACK without the SYN: its sender is the server.
		d = 1
	}
	if d == 0 {
		c.local, c.remote = dst, src
		c.keyIn = seg.Key
	} else {
		c.local, c.remote = src, dst
		c.keyIn = seg.Key.Reverse()
	}
	c.keyOut = c.keyIn.Reverse()
	a.conns[c.keyIn] = c
	a.conns[c.keyOut] = c
	a.cache[slot(&seg.Key)] = flowSlot{c: c}
	if syn {
		c.syn = true
		a.q = append(a.q, &capture.Accept{Start: ts, Timestamp: ts, FD: c.fd, Gen: 1, Local: c.local, Remote: c.remote})
	} else {
		a.q = append(a.q, &capture.Socket{Timestamp: ts, FD: c.fd, Role: capture.RoleUnknown, State: 1,
			Local: c.local, Remote: c.remote})
	}
	return c, d
}

// segment applies one segment of direction d.
func (a *assembler) segment(c *conn, d int, seg *tcpip.Segment, ts uint64) {
	for i := range c.h {
		if h := &c.h[i]; h.ackAhead && h.ackAheadPkt < a.pktNo {
			a.fillTo(c, i, h.ackAheadSeq, ts)
			h.ackAhead = false
		}
	}
	h := &c.h[d]
	seq := seg.Seq
	if seg.Flags&tcpip.SYN != 0 {
		if !h.started {
			h.start(seq + 1)
			h.syn, h.synSeq = true, seq
		}
		seq++
		if seg.Flags&tcpip.ACK != 0 && c.syn && !c.h[1-d].started {
			c.h[1-d].start(seg.Ack)
		}
	} else if !h.started {
		h.start(seq)
	}
	if seg.WireLen > 0 {
		a.data(c, d, seq, seg.Payload, seg.WireLen, ts)
	}
	if seg.Flags&tcpip.FIN != 0 && !h.fin {
		h.fin, h.finSeq = true, seq+seg.WireLen
	}
	if seg.Flags&tcpip.ACK != 0 {
		a.acked(c, 1-d, seg.Ack, ts)
	}
	if seg.Flags&tcpip.RST != 0 {
		a.end(c, ts)
		return
	}
	if !c.closed {
		a.checkFin(c, ts)
	}
}

// data delivers or buffers payload starting at sequence number seq.
func (a *assembler) data(c *conn, d int, seq uint32, p []byte, wire uint32, ts uint64) {
	h := &c.h[d]
	if h.done {
		a.retransmit(c, d, seq, ts)
		return
	}
	diff := tcpip.SeqDiff(seq, h.next)
	if diff < 0 {
		trim := uint32(-int64(diff))
		if trim >= wire {
			a.retransmit(c, d, seq, ts)
			return
		}
		if int(trim) < len(p) {
			p = p[trim:]
		} else {
			p = nil
		}
		wire -= trim
	} else if diff > 0 {
		a.hold(h, seq, p, wire)
		for h.oooBytes > a.maxBuf || len(h.ooo) > maxSegments {
			a.giveUpHole(c, d, ts)
		}
		return
	}
	a.deliver(c, d, p, wire, ts)
	a.drain(c, d, ts)
}

func (a *assembler) retransmit(c *conn, d int, seq uint32, ts uint64) {
	a.counts.Retransmissions++
	h := &c.h[d]
	t := a.newTCP()
	*t = capture.TCP{Timestamp: ts, Type: capture.TCPRetransmit, Seq: seq - h.base}
	t.Local, t.Remote = c.ends(d)
	a.q = append(a.q, t)
}

// ends returns the sender and the receiver of direction d.
func (c *conn) ends(d int) (from, to netip.AddrPort) {
	if d == 0 {
		return c.remote, c.local
	}
	return c.local, c.remote
}

// hold copies an out-of-order segment into the direction's buffer, in
// sequence order.
func (a *assembler) hold(h *half, seq uint32, p []byte, wire uint32) {
	a.counts.OutOfOrder++
	var buf []byte
	if n := len(a.spare); n > 0 && cap(a.spare[n-1]) >= len(p) {
		buf = a.spare[n-1][:0]
		a.spare = a.spare[:n-1]
	}
	buf = append(buf, p...)
	i := len(h.ooo)
	for i > 0 && tcpip.SeqDiff(h.ooo[i-1].seq, seq) > 0 {
		i--
	}
	h.ooo = slices.Insert(h.ooo, i, held{seq: seq, wire: wire, buf: buf})
	h.oooBytes += len(buf)
}

// drain delivers held segments that the stream has reached.
func (a *assembler) drain(c *conn, d int, ts uint64) {
	h := &c.h[d]
	for len(h.ooo) > 0 {
		s := h.ooo[0]
		diff := tcpip.SeqDiff(s.seq, h.next)
		if diff > 0 {
			return
		}
		copy(h.ooo, h.ooo[1:])
		h.ooo[len(h.ooo)-1] = held{}
		h.ooo = h.ooo[:len(h.ooo)-1]
		h.oooBytes -= len(s.buf)
		a.used = append(a.used, s.buf)
		trim := uint32(-int64(diff))
		if trim >= s.wire {
			continue
		}
		p := s.buf
		if int(trim) < len(p) {
			p = p[trim:]
		} else {
			p = nil
		}
		a.deliver(c, d, p, s.wire-trim, ts)
	}
}

// fillTo advances direction d to sequence number end, delivering held
// segments where it can and gaps where the capture has nothing.
func (a *assembler) fillTo(c *conn, d int, end uint32, ts uint64) {
	h := &c.h[d]
	for tcpip.SeqDiff(end, h.next) > 0 {
		to := end
		if len(h.ooo) > 0 && tcpip.SeqDiff(h.ooo[0].seq, to) < 0 {
			to = h.ooo[0].seq
		}
		if n := tcpip.SeqDiff(to, h.next); n > 0 {
			a.gap(c, d, uint64(uint32(n)), ts)
		}
		a.drain(c, d, ts)
	}
	a.drain(c, d, ts)
}

// giveUpHole reports the hole before the first held segment as a gap and
// delivers what follows it.
func (a *assembler) giveUpHole(c *conn, d int, ts uint64) {
	h := &c.h[d]
	n := len(h.ooo)
	a.fillTo(c, d, h.ooo[0].seq, ts)
	if len(h.ooo) == n {
		// No progress (cannot happen with consistent state): drop the
		// buffer rather than loop.
		for _, s := range h.ooo {
			a.used = append(a.used, s.buf)
		}
		h.ooo, h.oooBytes = h.ooo[:0], 0
	}
}

// deliver emits bytes at the direction's next sequence number. wire may
// exceed len(p): the rest of the segment was not captured.
func (a *assembler) deliver(c *conn, d int, p []byte, wire uint32, ts uint64) {
	h := &c.h[d]
	ev := a.newData()
	flags := capture.DataFlags(0)
	if uint32(len(p)) < wire {
		flags = capture.DataTruncated
	}
	// Set field by field (newData's event is zeroed): a composite literal
	// would be built on the stack and copied over with wide loads the CPU
	// cannot forward from the narrow stores that built it.
	ev.Start, ev.Timestamp = ts, ts
	ev.FD, ev.Gen = c.fd, 1
	ev.Dir, ev.Flags = dirOf(d), flags
	ev.Len, ev.Payload = wire, p
	a.q = append(a.q, ev)
	h.next += wire
	h.off += uint64(wire)
}

// gap emits n missing bytes at the direction's next sequence number.
func (a *assembler) gap(c *conn, d int, n uint64, ts uint64) {
	a.counts.Gaps++
	a.counts.GapBytes += n
	for n > 0 {
		m := min(n, maxGapEvent)
		a.deliver(c, d, nil, uint32(m), ts)
		n -= m
	}
}

func dirOf(d int) capture.Direction {
	if d == 0 {
		return capture.Ingress
	}
	return capture.Egress
}

// acked applies an acknowledgement of direction d's bytes, sent by the
// other end.
func (a *assembler) acked(c *conn, d int, ack uint32, ts uint64) {
	h := &c.h[d]
	if !h.started {
		if c.syn {
			// The handshake's ACK gives the sequence space of a side whose
			// SYN-ACK was not captured.
			h.start(ack)
		}
		return
	}
	if ahead := tcpip.SeqDiff(ack, h.next); ahead > 0 && ahead < 1<<30 {
		end := ack
		if h.fin && tcpip.SeqDiff(end, h.finSeq) > 0 {
			end = h.finSeq
		}
		if tcpip.SeqDiff(end, h.next) > 0 {
			h.ackAhead, h.ackAheadSeq, h.ackAheadPkt = true, end, a.pktNo
		}
	}
	if c.syn && d == 0 {
		// Network timing needs the acknowledgement of what the server
		// sent; when the handshake named the server, skip the rest.
		return
	}
	rel := ack - h.base
	if uint64(rel) > h.off && h.off < 1<<32 {
		rel = uint32(h.off)
	}
	if tcpip.SeqDiff(rel, h.ackedRel) <= 0 {
		return
	}
	h.ackedRel = rel
	t := a.newTCP()
	*t = capture.TCP{Timestamp: ts, Type: capture.TCPAck, Seq: rel}
	t.Local, t.Remote = c.ends(d)
	a.q = append(a.q, t)
}

// checkFin ends the connection once both directions delivered up to their
// FIN.
func (a *assembler) checkFin(c *conn, ts uint64) {
	for i := range c.h {
		h := &c.h[i]
		if h.fin && !h.done && tcpip.SeqDiff(h.next, h.finSeq) >= 0 {
			h.done = true
		}
	}
	if c.h[0].done && c.h[1].done {
		a.end(c, ts)
	}
}

// end closes a connection: holes before held segments become gaps, then a
// Close event. The 4-tuple stays known for a while to absorb late packets.
func (a *assembler) end(c *conn, ts uint64) {
	for d := range c.h {
		h := &c.h[d]
		if h.ackAhead {
			a.fillTo(c, d, h.ackAheadSeq, ts)
			h.ackAhead = false
		}
		for len(h.ooo) > 0 {
			a.giveUpHole(c, d, ts)
		}
	}
	a.q = append(a.q, &capture.Close{Timestamp: ts, FD: c.fd, Gen: 1})
	c.closed, c.closedAt = true, ts
	c.h = [2]half{c.h[0].tomb(), c.h[1].tomb()}
	a.closed = append(a.closed, c)
	for len(a.closed) > 0 && (len(a.closed) > maxTombstones || a.closed[0].closedAt+tombstoneNS < ts) {
		a.forget(a.closed[0])
		a.closed = a.closed[1:]
	}
}

// tomb keeps what a closed direction needs to recognise a duplicate SYN.
func (h *half) tomb() half { return half{syn: h.syn, synSeq: h.synSeq} }

// forget drops a connection's 4-tuple.
func (a *assembler) forget(c *conn) {
	if a.conns[c.keyIn] == c {
		delete(a.conns, c.keyIn)
		delete(a.conns, c.keyOut)
	}
	if s := &a.cache[slot(&c.keyIn)]; s.c == c {
		*s = flowSlot{}
	}
}

// finish ends every open connection at the end of the file, in the order
// they appeared.
func (a *assembler) finish(ts uint64, q []capture.Event) []capture.Event {
	a.q = q
	var open []*conn
	for k, c := range a.conns {
		if !c.closed && k == c.keyIn {
			open = append(open, c)
		}
	}
	slices.SortFunc(open, func(x, y *conn) int { return int(x.fd - y.fd) })
	for _, c := range open {
		a.end(c, ts)
	}
	return a.q
}
