//go:build linux

package record

import (
	"encoding/binary"
	"sync"

	"github.com/rewind-tools/rewind/bpf"
	"github.com/rewind-tools/rewind/capture"
)

// Packet capture during a recording: the tracer's packet socket filter
// writes the traced ports' TCP packets, cut after their headers plus
// bpf.DefaultPacketPayload bytes, into the same ring as the syscall events
// (bpf.EventPacket), stamped with the kernel's monotonic clock like them.
// The session turns each into a Packet event; there is no socket to read
// and no clock to map.

// linkTypeRaw is pcap's LINKTYPE_RAW: the packet starts at its IP header.
const linkTypeRaw = 101

// packetCapture is the packet socket that keeps the filter running.
type packetCapture struct {
	sock      *bpf.PacketSocket
	closeOnce sync.Once
	closeErr  error
}

// startPackets attaches the packet filter.
func startPackets(tr *bpf.Tracer, iface string) (*packetCapture, error) {
	sock, err := tr.OpenPackets(iface)
	if err != nil {
		return nil, err
	}
	return &packetCapture{sock: sock}, nil
}

// close stops packet capture; later calls return the first call's error.
func (pc *packetCapture) close() error {
	pc.closeOnce.Do(func() { pc.closeErr = pc.sock.Close() })
	return pc.closeErr
}

// packetEvent converts a decoded packet record; the event is reused and
// its bytes alias the record's (see [session.event]).
func (s *session) packetEvent(rec *bpf.Record) capture.Event {
	p := &rec.Packet
	if len(rec.Payload) == 0 || s.packets == nil {
		return nil
	}
	dir := capture.Ingress
	if p.PktType == bpf.PacketOutgoing {
		dir = capture.Egress
	}
	s.evPacket = capture.Packet{
		Timestamp: p.TsNs,
		Ifindex:   p.Ifindex,
		Dir:       dir,
		OrigLen:   ipLength(rec.Payload, int(p.Len)),
		LinkType:  linkTypeRaw,
		Data:      rec.Payload,
	}
	return &s.evPacket
}

// ipLength returns the packet's length from its IP header (the filter cut
// the rest), or n when the header does not say.
func ipLength(b []byte, n int) uint32 {
	if len(b) >= 20 && b[0]>>4 == 4 {
		if l := binary.BigEndian.Uint16(b[2:4]); l >= 20 {
			return uint32(l)
		}
	}
	if len(b) >= 40 && b[0]>>4 == 6 {
		if l := binary.BigEndian.Uint16(b[4:6]); l > 0 { // 0: a jumbogram or BIG TCP
			return 40 + uint32(l)
		}
	}
	return uint32(n)
}
