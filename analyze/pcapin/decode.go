package pcapin

import (
	"encoding/binary"
)

// Link types this package decodes (pcap LINKTYPE_* values).
const (
	linkNull     = 0   // BSD loopback: 4-byte address family, host order
	linkEthernet = 1   // Ethernet II, with optional VLAN tags
	linkRaw      = 101 // raw IPv4 or IPv6
	linkRawAlt   = 12  // raw IP on some BSDs (DLT_RAW's old number)
	linkLoop     = 108 // OpenBSD loopback: 4-byte address family, network order
	linkSLL      = 113 // Linux cooked capture v1
	linkIPv4     = 228 // raw IPv4
	linkIPv6     = 229 // raw IPv6
	linkSLL2     = 276 // Linux cooked capture v2
)

// TCP flags.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagACK = 0x10
)

// segment is one decoded TCP segment. Its slices point into the packet.
type segment struct {
	key     flowKey
	v6      bool
	seq     uint32
	ack     uint32
	flags   uint8
	payload []byte // the captured part of the TCP payload
	wireLen uint32 // the payload's length on the wire (≥ len(payload))
}

// flowKey is a directional 4-tuple: IPv4 addresses are stored as IPv4-mapped
// IPv6 so both families share one comparable key.
type flowKey struct {
	src, dst     [16]byte
	sport, dport uint16
}

// decodeResult says why a packet gave no segment.
type decodeResult uint8

const (
	decodedTCP      decodeResult = iota
	decodedOther                 // not IP, or IP but not TCP
	decodedFragment              // an IP fragment: not reassembled
	decodedBad                   // cut or malformed headers
)

// decode fills seg from a packet of the given link type, without allocating.
func decode(link int, data []byte, seg *segment) decodeResult {
	var ethertype uint16
	switch link {
	case linkEthernet:
		if len(data) < 14 {
			return decodedBad
		}
		ethertype = binary.BigEndian.Uint16(data[12:14])
		data = data[14:]
		for ethertype == 0x8100 || ethertype == 0x88a8 || ethertype == 0x9100 {
			if len(data) < 4 {
				return decodedBad
			}
			ethertype = binary.BigEndian.Uint16(data[2:4])
			data = data[4:]
		}
	case linkSLL:
		if len(data) < 16 {
			return decodedBad
		}
		ethertype = binary.BigEndian.Uint16(data[14:16])
		data = data[16:]
	case linkSLL2:
		if len(data) < 20 {
			return decodedBad
		}
		ethertype = binary.BigEndian.Uint16(data[0:2])
		data = data[20:]
	case linkNull, linkLoop:
		// The address family's value differs between systems and byte
		// orders; the IP version nibble is unambiguous.
		if len(data) < 4 {
			return decodedBad
		}
		data = data[4:]
		ethertype = versionType(data)
	case linkRaw, linkRawAlt, linkIPv4, linkIPv6:
		ethertype = versionType(data)
	default:
		return decodedOther
	}
	switch ethertype {
	case 0x0800:
		return decodeIPv4(data, seg)
	case 0x86dd:
		return decodeIPv6(data, seg)
	}
	return decodedOther
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

func decodeIPv4(data []byte, seg *segment) decodeResult {
	if len(data) < 20 || data[0]>>4 != 4 {
		return decodedBad
	}
	ihl := int(data[0]&0x0f) * 4
	if ihl < 20 || len(data) < ihl {
		return decodedBad
	}
	if data[9] != 6 {
		return decodedOther
	}
	if frag := binary.BigEndian.Uint16(data[6:8]); frag&0x3fff != 0 {
		return decodedFragment // more-fragments set or a non-zero offset
	}
	total := int(binary.BigEndian.Uint16(data[2:4]))
	if total == 0 {
		// TSO/GSO segments captured on the sending host may carry 0.
		total = len(data)
	}
	if total < ihl {
		return decodedBad
	}
	// The IPv4-mapped form, 8 bytes at a time: lookup's loads of the key
	// then each read what one store wrote, which the CPU forwards; a load
	// over the parts of several stores waits for them to retire.
	binary.LittleEndian.PutUint64(seg.key.src[:8], 0)
	binary.LittleEndian.PutUint64(seg.key.src[8:], v4InV6High|uint64(binary.LittleEndian.Uint32(data[12:16]))<<32)
	binary.LittleEndian.PutUint64(seg.key.dst[:8], 0)
	binary.LittleEndian.PutUint64(seg.key.dst[8:], v4InV6High|uint64(binary.LittleEndian.Uint32(data[16:20]))<<32)
	seg.v6 = false
	return decodeTCP(data[ihl:], total-ihl, seg)
}

func decodeIPv6(data []byte, seg *segment) decodeResult {
	if len(data) < 40 || data[0]>>4 != 6 {
		return decodedBad
	}
	plen := int(binary.BigEndian.Uint16(data[4:6]))
	next := data[6]
	copy(seg.key.src[:], data[8:24])
	copy(seg.key.dst[:], data[24:40])
	seg.v6 = true
	data = data[40:]
	if plen == 0 {
		plen = len(data) // jumbogram or GSO: trust what was captured
	}
	// Skip extension headers; each shortens the payload length.
	for i := 0; i < 16; i++ {
		var hlen int
		switch next {
		case 6:
			return decodeTCP(data, plen, seg)
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(data) < 8 {
				return decodedBad
			}
			hlen = (int(data[1]) + 1) * 8
		case 44: // fragment
			if len(data) < 8 {
				return decodedBad
			}
			if binary.BigEndian.Uint16(data[2:4])&0xfff9 != 0 {
				return decodedFragment // an offset or more-fragments
			}
			hlen = 8
		case 51: // authentication header
			if len(data) < 8 {
				return decodedBad
			}
			hlen = (int(data[1]) + 2) * 4
		default:
			return decodedOther
		}
		if len(data) < hlen || plen < hlen {
			return decodedBad
		}
		next = data[0]
		data = data[hlen:]
		plen -= hlen
	}
	return decodedBad
}

// decodeTCP decodes a TCP header; wire is the segment's length on the wire
// (header included) from the IP header, data what was captured of it.
func decodeTCP(data []byte, wire int, seg *segment) decodeResult {
	if len(data) < 20 {
		return decodedBad
	}
	off := int(data[12]>>4) * 4
	if off < 20 || len(data) < off || wire < off {
		return decodedBad
	}
	seg.key.sport = binary.BigEndian.Uint16(data[0:2])
	seg.key.dport = binary.BigEndian.Uint16(data[2:4])
	seg.seq = binary.BigEndian.Uint32(data[4:8])
	seg.ack = binary.BigEndian.Uint32(data[8:12])
	seg.flags = data[13]
	payload := data[off:]
	n := wire - off
	if len(payload) > n {
		payload = payload[:n] // link-layer padding
	}
	seg.payload = payload
	seg.wireLen = uint32(n)
	return decodedTCP
}
