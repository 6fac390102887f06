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

// packetChunk is the size of the slabs packet bytes are copied into.
const packetChunk = 256 << 10

// packetCapture is the packet socket that keeps the filter running.
type packetCapture struct {
	sock      *bpf.PacketSocket
	closeOnce sync.Once
	closeErr  error
	slab      []byte
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

// packetEvent converts a packet record; its bytes are copied into a slab
// shared by many packets (one allocation per few thousand packets).
func (s *session) packetEvent(rec *bpf.Record) capture.Event {
	p := &rec.Packet
	if len(rec.Payload) == 0 || s.packets == nil {
		return nil
	}
	pc := s.packets
	if len(pc.slab) < len(rec.Payload) {
		pc.slab = make([]byte, packetChunk)
	}
	data := pc.slab[:len(rec.Payload):len(rec.Payload)]
	pc.slab = pc.slab[len(rec.Payload):]
	copy(data, rec.Payload)
	dir := capture.Ingress
	if p.PktType == bpf.PacketOutgoing {
		dir = capture.Egress
	}
	return &capture.Packet{
		Timestamp: p.TsNs,
		Ifindex:   p.Ifindex,
		Dir:       dir,
		OrigLen:   ipLength(data, int(p.Len)),
		LinkType:  linkTypeRaw,
		Data:      data,
	}
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
		return 40 + uint32(binary.BigEndian.Uint16(b[4:6]))
	}
	return uint32(n)
}
