// Package tcpip decodes the IP and TCP headers of a captured packet without
// allocating. It is the one decoder of both kinds of packets the replay
// reads: the packets of pcap and pcapng input (any of the link types below)
// and the raw IP packets a recording keeps beside its syscall events. What
// each does with a segment differs: pcap input reassembles the byte
// streams from the payloads (analyze/pcapin), a recording takes them from
// the syscalls and uses packets only for ACKs and retransmissions
// (analyze/packets.go).
package tcpip

import (
	"encoding/binary"
	"net/netip"
)

// Link types Decode reads (pcap LINKTYPE_* values).
const (
	LinkNull     = 0   // BSD loopback: 4-byte address family, host order
	LinkEthernet = 1   // Ethernet II, with optional VLAN tags
	LinkRaw      = 101 // raw IPv4 or IPv6
	LinkRawAlt   = 12  // raw IP on some BSDs (DLT_RAW's old number)
	LinkLoop     = 108 // OpenBSD loopback: 4-byte address family, network order
	LinkSLL      = 113 // Linux cooked capture v1
	LinkIPv4     = 228 // raw IPv4
	LinkIPv6     = 229 // raw IPv6
	LinkSLL2     = 276 // Linux cooked capture v2
)

// TCP header flags.
const (
	FIN = 0x01
	SYN = 0x02
	RST = 0x04
	ACK = 0x10
)

// Segment is one decoded TCP segment. Its slices point into the packet.
type Segment struct {
	Key     FlowKey
	V6      bool // an IPv6 packet (Key's addresses are IPv4-mapped otherwise)
	Seq     uint32
	Ack     uint32
	Flags   uint8
	Payload []byte // the captured part of the TCP payload
	WireLen uint32 // the payload's length on the wire (≥ len(Payload))
}

// Src returns the sender's address and port.
func (s *Segment) Src() netip.AddrPort { return addrPort(s.Key.Src, s.Key.SrcPort, s.V6) }

// Dst returns the receiver's address and port.
func (s *Segment) Dst() netip.AddrPort { return addrPort(s.Key.Dst, s.Key.DstPort, s.V6) }

func addrPort(a [16]byte, port uint16, v6 bool) netip.AddrPort {
	if !v6 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[12:16])), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(a), port)
}

// FlowKey is a directional 4-tuple: IPv4 addresses are stored as
// IPv4-mapped IPv6 so both families share one comparable key.
type FlowKey struct {
	Src, Dst         [16]byte
	SrcPort, DstPort uint16
}

// Reverse returns the key of the other direction.
func (k FlowKey) Reverse() FlowKey {
	return FlowKey{Src: k.Dst, Dst: k.Src, SrcPort: k.DstPort, DstPort: k.SrcPort}
}

// Equal is k == o, read 8 bytes at a time (see decodeIPv4) rather than
// with runtime.memequal's wider loads, and without a call.
func (k *FlowKey) Equal(o *FlowKey) bool {
	le := binary.LittleEndian
	return le.Uint64(k.Src[8:]) == le.Uint64(o.Src[8:]) && le.Uint64(k.Dst[8:]) == le.Uint64(o.Dst[8:]) &&
		k.SrcPort == o.SrcPort && k.DstPort == o.DstPort &&
		le.Uint64(k.Src[:8]) == le.Uint64(o.Src[:8]) && le.Uint64(k.Dst[:8]) == le.Uint64(o.Dst[:8])
}

// SeqDiff returns a - b in sequence space: negative when a comes before b.
func SeqDiff(a, b uint32) int32 { return int32(a - b) }

// maxWire bounds the length on the wire a capture may claim for a packet
// whose IP header gives none: BIG TCP packets reach 512 KiB; a capture's
// damaged length must not become a 4 GiB segment.
const maxWire = 16 << 20

// Result says whether a packet gave a segment, and why not.
type Result uint8

const (
	TCP      Result = iota // a TCP segment
	Other                  // not IP, or IP but not TCP
	Fragment               // an IP fragment: not reassembled
	Bad                    // cut or malformed headers
)

// Decode fills seg from a packet of the given link type, without
// allocating. wire is the packet's length on the wire from its link header
// on, as its capture says (pcap's orig_len), or 0 when unknown: an IP
// header that gives no length (a GSO or BIG TCP packet captured on the
// sending host has 0 there) is then taken to end with what was captured,
// and otherwise where wire ends, though the capture was cut shorter.
func Decode(link int, data []byte, wire int, seg *Segment) Result {
	full := len(data)
	var ethertype uint16
	switch link {
	case LinkEthernet:
		if len(data) < 14 {
			return Bad
		}
		ethertype = binary.BigEndian.Uint16(data[12:14])
		data = data[14:]
		for ethertype == 0x8100 || ethertype == 0x88a8 || ethertype == 0x9100 {
			if len(data) < 4 {
				return Bad
			}
			ethertype = binary.BigEndian.Uint16(data[2:4])
			data = data[4:]
		}
	case LinkSLL:
		if len(data) < 16 {
			return Bad
		}
		ethertype = binary.BigEndian.Uint16(data[14:16])
		data = data[16:]
	case LinkSLL2:
		if len(data) < 20 {
			return Bad
		}
		ethertype = binary.BigEndian.Uint16(data[0:2])
		data = data[20:]
	case LinkNull, LinkLoop:
		// The address family's value differs between systems and byte
		// orders; the IP version nibble is unambiguous.
		if len(data) < 4 {
			return Bad
		}
		data = data[4:]
		ethertype = versionType(data)
	case LinkRaw, LinkRawAlt, LinkIPv4, LinkIPv6:
		ethertype = versionType(data)
	default:
		return Other
	}
	// What the wire held from the IP header on, for a header without a
	// length: never less than was captured (a damaged capture length), nor
	// more than maxWire.
	ipWire := len(data)
	if wire > 0 {
		ipWire = min(max(wire-(full-len(data)), len(data)), maxWire)
	}
	switch ethertype {
	case 0x0800:
		return decodeIPv4(data, ipWire, seg)
	case 0x86dd:
		return decodeIPv6(data, ipWire, seg)
	}
	return Other
}

func versionType(data []byte) uint16 {
	if len(data) == 0 {
		return 0
	}
	switch data[0] >> 4 {
	case 4:
		return 0x0800
	case 6:
		return 0x86dd
	}
	return 0
}

// v4InV6High is bytes 8 to 15 of an IPv4-mapped IPv6 address (::ffff:a.b.c.d)
// but the IPv4 address, read as a little-endian uint64.
const v4InV6High = 0xffff << 16

func decodeIPv4(data []byte, ipWire int, seg *Segment) Result {
	if len(data) < 20 || data[0]>>4 != 4 {
		return Bad
	}
	ihl := int(data[0]&0x0f) * 4
	if ihl < 20 || len(data) < ihl {
		return Bad
	}
	if data[9] != 6 {
		return Other
	}
	if frag := binary.BigEndian.Uint16(data[6:8]); frag&0x3fff != 0 {
		return Fragment // more-fragments set or a non-zero offset
	}
	total := int(binary.BigEndian.Uint16(data[2:4]))
	if total == 0 {
		// TSO/GSO segments captured on the sending host may carry 0.
		total = ipWire
	}
	if total < ihl {
		return Bad
	}
	// The IPv4-mapped form, 8 bytes at a time: lookup's loads of the key
	// then each read what one store wrote, which the CPU forwards; a load
	// over the parts of several stores waits for them to retire.
	binary.LittleEndian.PutUint64(seg.Key.Src[:8], 0)
	binary.LittleEndian.PutUint64(seg.Key.Src[8:], v4InV6High|uint64(binary.LittleEndian.Uint32(data[12:16]))<<32)
	binary.LittleEndian.PutUint64(seg.Key.Dst[:8], 0)
	binary.LittleEndian.PutUint64(seg.Key.Dst[8:], v4InV6High|uint64(binary.LittleEndian.Uint32(data[16:20]))<<32)
	seg.V6 = false
	return decodeTCP(data[ihl:], total-ihl, seg)
}

func decodeIPv6(data []byte, ipWire int, seg *Segment) Result {
	if len(data) < 40 || data[0]>>4 != 6 {
		return Bad
	}
	plen := int(binary.BigEndian.Uint16(data[4:6]))
	next := data[6]
	copy(seg.Key.Src[:], data[8:24])
	copy(seg.Key.Dst[:], data[24:40])
	seg.V6 = true
	data = data[40:]
	if plen == 0 {
		plen = max(ipWire-40, 0) // jumbogram or GSO
	}
	// Skip extension headers; each shortens the payload length.
	for i := 0; i < 16; i++ {
		var hlen int
		switch next {
		case 6:
			return decodeTCP(data, plen, seg)
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(data) < 8 {
				return Bad
			}
			hlen = (int(data[1]) + 1) * 8
		case 44: // fragment
			if len(data) < 8 {
				return Bad
			}
			if binary.BigEndian.Uint16(data[2:4])&0xfff9 != 0 {
				return Fragment // an offset or more-fragments
			}
			hlen = 8
		case 51: // authentication header
			if len(data) < 8 {
				return Bad
			}
			hlen = (int(data[1]) + 2) * 4
		default:
			return Other
		}
		if len(data) < hlen || plen < hlen {
			return Bad
		}
		next = data[0]
		data = data[hlen:]
		plen -= hlen
	}
	return Bad
}

// decodeTCP decodes a TCP header; wire is the segment's length on the wire
// (header included) from the IP header, data what was captured of it.
func decodeTCP(data []byte, wire int, seg *Segment) Result {
	if len(data) < 20 {
		return Bad
	}
	off := int(data[12]>>4) * 4
	if off < 20 || len(data) < off || wire < off {
		return Bad
	}
	seg.Key.SrcPort = binary.BigEndian.Uint16(data[0:2])
	seg.Key.DstPort = binary.BigEndian.Uint16(data[2:4])
	seg.Seq = binary.BigEndian.Uint32(data[4:8])
	seg.Ack = binary.BigEndian.Uint32(data[8:12])
	seg.Flags = data[13]
	payload := data[off:]
	n := wire - off
	if len(payload) > n {
		payload = payload[:n] // link-layer padding
	}
	seg.Payload = payload
	seg.WireLen = uint32(n)
	return TCP
}
