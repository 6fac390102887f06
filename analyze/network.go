package analyze

import (
	"fmt"
	"net/netip"

	"github.com/rewind-tools/rewind/analyze/tcpip"
	"github.com/rewind-tools/rewind/capture"
)

// Network timing: a server's response is written into the kernel, and the
// client's TCP stack acknowledges its last byte some time later. That delay
// (the response's last byte written → the ACK that covers it) is the
// network's share of the latency the client sees. Sources that see packets
// (pcap input, recordings with packets) emit capture.TCP events of type
// TCPAck, saying how many of a sender's stream bytes its peer acknowledged;
// a server-side exchange waits for the ACK covering its response before it
// is emitted, so its Network timing can be filled in.
//
// The interval starts where packet tools start it (tshark's
// tcp.analysis.ack_rtt): at the packet that carried the response's last
// byte. On pcap input that is the time the exchange's last byte was seen.
// In a recording the write syscall's return is later than its packets (on
// loopback the peer's ACK can even come before it), so the start is the
// captured packet's own timestamp (packets.go remembers the latest data
// segments of each traced sender). A timing that cannot be tied to a
// captured packet, or comes out negative, stays Unknown and is counted by
// reason for the report's warnings: never clamped to 0.

// maxAwaitingAck bounds the exchanges a connection holds back waiting for
// ACKs; beyond it the oldest is emitted without a network timing.
const maxAwaitingAck = 256

// noNetwork says why a server exchange of a capture with packets has no
// network timing.
type noNetwork uint8

const (
	noNetSegment  noNetwork = iota // the packet with the last byte is not in the capture
	noNetAck                       // no ACK of the last byte is in the capture
	noNetNegative                  // the ACK is stamped before the packet it acknowledges
	noNetHeld                      // too many exchanges waited on one connection
	noNetNetNS                     // the connection is in another network namespace than the packets
	noNetReasons
)

func (r noNetwork) String() string {
	switch r {
	case noNetSegment:
		return "the packet that carried the response's last byte was not captured"
	case noNetAck:
		return "no ACK of the response's last byte was captured"
	case noNetNegative:
		return "the ACK is stamped before the packet it acknowledges"
	case noNetNetNS:
		return "the connection ran in another network namespace than the recorder, whose packets were not captured"
	default:
		return fmt.Sprintf("more than %d exchanges waited for ACKs on one connection", maxAwaitingAck)
	}
}

// setNetwork fills in ex's network timing for an ACK at ackTS of egress
// stream offset end, or counts why it cannot.
func (cs *connState) setNetwork(ex *Exchange, end uint64, ackTS uint64, gap bool) {
	start := ex.Response.End
	switch {
	case gap && !cs.t.rawPackets:
		// Pcap input whose last response bytes were never captured: the
		// gap is stamped when it was given up on, not when they were sent.
		cs.t.noNetwork[noNetSegment]++
		return
	case cs.t.rawPackets:
		ts, ok := cs.t.segmentTime(cs, end)
		if !ok {
			cs.t.noNetwork[noNetSegment]++
			return
		}
		start = ts
	}
	if ackTS < start {
		cs.t.noNetwork[noNetNegative]++
		return
	}
	ex.Timings.Network = int64(ackTS - start)
}

// awaitingAck is a finished exchange waiting for the ACK of the egress byte
// stream up to end.
type awaitingAck struct {
	ex  *Exchange
	end uint64
	gap bool // the response ended in bytes the capture does not have
}

// addrPair finds a connection by its addresses within a network namespace
// (0: the capture does not say), so the same 4-tuple in two namespaces is
// two connections.
type addrPair struct {
	netns         uint64
	local, remote netip.AddrPort
}

// addrSlot is an entry of the tracker's cache in front of byAddr: a key and
// what byAddr holds for it (nil included). Every change to byAddr updates
// the slot of its key, so the cache never disagrees with the map.
type addrSlot struct {
	k     addrPair
	cs    *connState
	valid bool
}

// addrSlots is the size of that cache (a power of two): TCP events come a
// few per exchange, and hashing two addresses for each is a visible cost.
const addrSlots = 256

func (k addrPair) slot() int {
	return int(k.local.Port()*31^k.remote.Port()) & (addrSlots - 1)
}

// byAddrGet returns the connection indexed under k, or nil.
func (t *tracker) byAddrGet(k addrPair) *connState {
	s := &t.addrCache[k.slot()]
	if s.valid && s.k == k {
		return s.cs
	}
	cs := t.byAddr[k]
	*s = addrSlot{k: k, cs: cs, valid: true}
	return cs
}

// byAddrs is byAddrGet(addrPair{netns, *local, *remote}) that compares a
// cached slot with the addresses where they are, rather than build the
// key on the stack first and copy it: TCP events, a few per exchange,
// nearly all hit the cache.
func (t *tracker) byAddrs(netns uint64, local, remote *netip.AddrPort) *connState {
	s := &t.addrCache[int(local.Port()*31^remote.Port())&(addrSlots-1)]
	if s.valid && s.k.netns == netns && s.k.local == *local && s.k.remote == *remote {
		return s.cs
	}
	return t.byAddrGet(addrPair{netns, *local, *remote})
}

func (t *tracker) byAddrSet(k addrPair, cs *connState) {
	if cs == nil {
		delete(t.byAddr, k)
	} else {
		if t.byAddr == nil {
			t.byAddr = map[addrPair]*connState{}
		}
		t.byAddr[k] = cs
	}
	if s := &t.addrCache[k.slot()]; s.valid && s.k == k {
		s.cs = cs
	}
}

// index makes a connection findable by its addresses for TCP events.
func (t *tracker) index(cs *connState) {
	c := cs.c
	if !c.Local.IsValid() || !c.Remote.IsValid() {
		return
	}
	t.byAddrSet(addrPair{c.NetNS, c.Local, c.Remote}, cs)
}

func (t *tracker) unindex(cs *connState) {
	k := addrPair{cs.c.NetNS, cs.c.Local, cs.c.Remote}
	if t.byAddrGet(k) == cs {
		t.byAddrSet(k, nil)
	}
	if t.byAddrGet(addrPair{k.netns, k.remote, k.local}) == nil {
		t.forgetFlows(cs) // neither end is traced any more
	}
}

// tcp applies a TCP event to the connection it belongs to, in the
// recorder's network namespace (like packets, TCP events carry no other).
func (t *tracker) tcp(e *capture.TCP) {
	cs, sender := t.byAddrs(t.hostNS, &e.Local, &e.Remote), true
	if cs == nil {
		cs, sender = t.byAddrs(t.hostNS, &e.Remote, &e.Local), false
	}
	if cs == nil {
		return
	}
	switch e.Type {
	case capture.TCPRetransmit:
		cs.c.Retransmits++
	case capture.TCPAck:
		if sender {
			cs.acked(e.Seq, e.Timestamp)
		}
	}
}

// deliver emits a finished exchange, or holds it until the ACK of its
// response's last byte when the capture has packets and the process is the
// server.
func (cs *connState) deliver(ex *Exchange) {
	t := cs.t
	if t.expectAcks && cs.c.NetNS != t.hostNS && cs.c.Role == capture.RoleServer && ex.Response.Status != 0 {
		// Packets are captured in the recorder's namespace only: no ACK
		// of this connection will come.
		t.noNetwork[noNetNetNS]++
	}
	if !t.expectAcks || cs.c.NetNS != t.hostNS || cs.c.Role != capture.RoleServer || ex.Response.Status == 0 || ex.Response.End == 0 {
		if len(cs.awaiting) == 0 {
			t.emit(cs, ex)
			return
		}
		// Keep the connection's order.
		cs.awaiting = append(cs.awaiting, awaitingAck{ex: ex, end: 0})
		return
	}
	if len(cs.awaiting) == 0 {
		// On loopback the peer's ACK often comes before the write that
		// sent the response returns.
		if at, ok := t.ackedBefore(cs, cs.egressOff); ok {
			cs.setNetwork(ex, cs.egressOff, at, cs.egressGap)
			t.emit(cs, ex)
			return
		}
	}
	if len(cs.awaiting) >= maxAwaitingAck {
		cs.releaseAcked(0, 0, true, 1)
	}
	cs.awaiting = append(cs.awaiting, awaitingAck{ex: ex, end: cs.egressOff, gap: cs.egressGap})
}

// acked records that the peer acknowledged egress bytes up to seq (mod 2^32)
// at time ts, and emits the exchanges that were waiting for it.
func (cs *connState) acked(seq uint32, ts uint64) {
	cs.releaseAcked(seq, ts, false, 0)
}

// releaseAcked emits, in order, the held exchanges covered by an ACK of seq
// (all of them when force is set, or the first n when n > 0).
func (cs *connState) releaseAcked(seq uint32, ts uint64, force bool, n int) {
	i := 0
	for ; i < len(cs.awaiting); i++ {
		a := cs.awaiting[i]
		if force {
			if n > 0 && i >= n {
				break
			}
		} else if a.end != 0 && tcpip.SeqDiff(seq, uint32(a.end)) < 0 {
			break // not covered yet; later ones are not either
		}
		switch {
		case a.end == 0:
		case !force:
			cs.setNetwork(a.ex, a.end, ts, a.gap)
		case n > 0:
			cs.t.noNetwork[noNetHeld]++
		default:
			cs.t.noNetwork[noNetAck]++
		}
		cs.t.emit(cs, a.ex)
	}
	// Keep the array: a keep-alive connection holds one exchange at a time.
	rest := copy(cs.awaiting, cs.awaiting[i:])
	clear(cs.awaiting[rest:])
	cs.awaiting = cs.awaiting[:rest]
}

// flushAwaiting emits every held exchange; their ACKs will not come.
func (cs *connState) flushAwaiting() {
	cs.releaseAcked(0, 0, true, 0)
}
