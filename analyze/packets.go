package analyze

import (
	"net/netip"

	"github.com/rewind-tools/rewind/analyze/tcpip"
	"github.com/rewind-tools/rewind/capture"
)

// Packets of a recording (capture.Packet, raw IP from the recorder's packet
// socket) are turned into the same ACKs and retransmissions that pcap input
// emits as capture.TCP events: the file keeps the raw packets, the logic
// lives here.
//
// Sequence numbers become stream offsets with the sequence number of the
// sender's first byte (its ISN + 1):
//   - from the SYN (client) or SYN-ACK (server) when the recording saw the
//     handshake. Those packets come before the connect or accept event that
//     names the connection, so flows are tracked by 4-tuple from the SYN on.
//   - otherwise (connections opened before the recording) from the first
//     data packet the traced process sends: its sequence number is taken to
//     be the stream offset the process had written so far (egressOff before
//     the write that is sending it). This holds when the socket had no unsent
//     bytes queued at that point; a connection joined mid-transfer may get
//     ACK offsets shifted by what was queued, and then network timings that
//     are too early or missing, never wrong in sign.

// maxFlows bounds the 4-tuples followed; beyond it the idle ones are
// forgotten.
const maxFlows = 1 << 16

// flowIdleNS is how long a flow without a connection is kept when the table
// is full.
const flowIdleNS = 60e9

// flow is one direction of a TCP connection seen in packets: the sender's
// sequence space.
type flow struct {
	base     uint32 // sequence number of stream offset 0
	hasBase  bool
	started  bool   // end is valid
	end      uint32 // highest sequence number sent + 1 (retransmission check)
	acked    uint32 // highest stream offset the peer acknowledged
	ackedAt  uint64 // when
	hasAcked bool
	lastTS   uint64
	// segs remembers the latest new-data segments of a traced sender, for
	// the start of network timings; nil for other flows.
	segs *segRing
}

// segRingSize is how many of a sender's latest data segments are
// remembered: a response's last segment is among the latest when its ACK
// comes (loopback segments are up to 64 KiB, so a 1 MiB response is
// about 16).
const segRingSize = 32

// segRing holds a sender's latest segments of new data: the stream offsets
// each covers and when it was captured (its first transmission).
type segRing struct {
	seg [segRingSize]struct {
		start, end uint32 // stream offsets [start, end), mod 2^32
		ts         uint64
	}
	n int // segments added
}

func (r *segRing) add(start, end uint32, ts uint64) {
	s := &r.seg[r.n%segRingSize]
	s.start, s.end, s.ts = start, end, ts
	r.n++
}

// find returns when the segment that carried the byte before stream offset
// end was captured.
func (r *segRing) find(end uint32) (uint64, bool) {
	for i := 0; i < min(r.n, segRingSize); i++ {
		s := &r.seg[(r.n-1-i)%segRingSize]
		if tcpip.SeqDiff(end, s.start) > 0 && tcpip.SeqDiff(end, s.end) <= 0 {
			return s.ts, true
		}
	}
	return 0, false
}

// packetTCP follows a captured packet's TCP sequence space (packets are
// captured in the recorder's network namespace: they match connections of
// that namespace only): ACKs of the
// traced connections' bytes release the exchanges waiting for them, and
// segments sent again count as retransmissions.
func (t *tracker) packetTCP(p *capture.Packet) {
	// The recorder keeps packets from the IP header on (OrigLen counts from
	// there too).
	var seg tcpip.Segment
	if p.LinkType != tcpip.LinkRaw || tcpip.Decode(tcpip.LinkRaw, p.Data, int(p.OrigLen), &seg) != tcpip.TCP {
		return
	}
	// Syscall events name IPv4 peers of an IPv6 socket by their IPv4
	// address.
	src, dst := unmap(seg.Src()), unmap(seg.Dst())
	ts := p.Timestamp
	t.rawPackets = true
	if seg.Flags&tcpip.SYN != 0 {
		f := t.flow(addrPair{t.hostNS, src, dst}, ts)
		if seg.Flags&tcpip.ACK == 0 {
			// A new connection on this 4-tuple: forget the old one's.
			*f = flow{}
			delete(t.flows, addrPair{t.hostNS, dst, src})
		}
		f.base, f.hasBase, f.started, f.end, f.lastTS = seg.Seq+1, true, true, seg.Seq+1, ts
		return
	}
	// The connection seen from the sender's end and the one seen from the
	// receiver's: both are traced when client and server run on this host.
	snd, rcv := t.byAddrGet(addrPair{t.hostNS, src, dst}), t.byAddrGet(addrPair{t.hostNS, dst, src})
	if snd == nil && rcv == nil {
		return
	}
	if seg.WireLen > 0 || seg.Flags&tcpip.FIN != 0 {
		out := t.flow(addrPair{t.hostNS, src, dst}, ts)
		if snd != nil && !out.hasBase && seg.WireLen > 0 {
			out.base, out.hasBase = seg.Seq-uint32(snd.egressOff), true
		}
		end := seg.Seq + seg.WireLen
		if seg.Flags&tcpip.FIN != 0 {
			end++
		}
		fresh := false
		switch {
		case !out.started:
			out.started, out.end, fresh = true, end, true
		case tcpip.SeqDiff(end, out.end) <= 0 && seg.WireLen > 0:
			for _, cs := range [2]*connState{snd, rcv} {
				if cs != nil {
					cs.c.Retransmits++
				}
			}
		case tcpip.SeqDiff(end, out.end) > 0:
			out.end, fresh = end, true
		}
		if fresh && snd != nil && out.hasBase && seg.WireLen > 0 {
			if out.segs == nil {
				out.segs = new(segRing)
			}
			out.segs.add(seg.Seq-out.base, seg.Seq+seg.WireLen-out.base, ts)
		}
	}
	if rcv == nil || seg.Flags&tcpip.ACK == 0 || seg.Flags&tcpip.RST != 0 {
		return
	}
	// The packet acknowledges the receiver's bytes: the traced process at
	// that end gets its ACK.
	in := t.flows[addrPair{t.hostNS, dst, src}]
	if in == nil || !in.hasBase {
		return
	}
	off := seg.Ack - in.base
	if in.hasAcked && tcpip.SeqDiff(off, in.acked) <= 0 {
		return // nothing new
	}
	in.acked, in.ackedAt, in.hasAcked = off, ts, true
	rcv.acked(off, ts)
}

// unmap returns a with an IPv4-mapped IPv6 address as IPv4.
func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// flow returns the state of direction k, creating it.
func (t *tracker) flow(k addrPair, ts uint64) *flow {
	f := t.flows[k]
	if f != nil {
		f.lastTS = ts
		return f
	}
	if t.flows == nil {
		t.flows = map[addrPair]*flow{}
	}
	if len(t.flows) >= maxFlows {
		for k, f := range t.flows {
			if f.lastTS+flowIdleNS < ts && t.byAddrGet(k) == nil && t.byAddrGet(addrPair{k.netns, k.remote, k.local}) == nil {
				delete(t.flows, k)
			}
		}
		if len(t.flows) >= maxFlows {
			clear(t.flows)
		}
	}
	f = &flow{lastTS: ts}
	t.flows[k] = f
	return f
}

// ackedBefore says whether the peer already acknowledged egress stream
// offset end (mod 2^32) of cs, and when: on loopback the ACK of a response
// is often stamped before the write that sent it returns.
func (t *tracker) ackedBefore(cs *connState, end uint64) (uint64, bool) {
	f := t.flows[addrPair{cs.c.NetNS, cs.c.Local, cs.c.Remote}]
	if f == nil || !f.hasAcked || tcpip.SeqDiff(f.acked, uint32(end)) < 0 {
		return 0, false
	}
	return f.ackedAt, true
}

// segmentTime returns when the packet that carried cs's egress byte before
// stream offset end was captured.
func (t *tracker) segmentTime(cs *connState, end uint64) (uint64, bool) {
	f := t.flows[addrPair{cs.c.NetNS, cs.c.Local, cs.c.Remote}]
	if f == nil || f.segs == nil {
		return 0, false
	}
	return f.segs.find(uint32(end))
}

// forgetFlows drops the packet state of a connection that ended.
func (t *tracker) forgetFlows(cs *connState) {
	if t.flows == nil {
		return
	}
	delete(t.flows, addrPair{cs.c.NetNS, cs.c.Local, cs.c.Remote})
	delete(t.flows, addrPair{cs.c.NetNS, cs.c.Remote, cs.c.Local})
}
