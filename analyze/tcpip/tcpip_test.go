package tcpip

import (
	"encoding/binary"
	"testing"
)

// tcpHeader writes a 20-byte TCP header at b.
func tcpHeader(b []byte, sport, dport uint16, seq, ack uint32, flags uint8) {
	binary.BigEndian.PutUint16(b[0:2], sport)
	binary.BigEndian.PutUint16(b[2:4], dport)
	binary.BigEndian.PutUint32(b[4:8], seq)
	binary.BigEndian.PutUint32(b[8:12], ack)
	b[12] = 5 << 4
	b[13] = flags
}

// ipv4 is a raw IPv4 packet of a segment with 300 payload bytes, cut by a
// snaplen after 5 of them.
func ipv4() []byte {
	b := make([]byte, 20+20+5)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:4], uint16(20+20+300))
	b[9] = 6
	copy(b[12:16], []byte{127, 0, 0, 1})
	copy(b[16:20], []byte{127, 0, 0, 2})
	tcpHeader(b[20:], 8080, 40000, 1000, 2000, ACK)
	return b
}

func TestDecodeIPv4(t *testing.T) {
	b := ipv4()
	var s Segment
	if r := Decode(LinkRaw, b, 0, &s); r != TCP {
		t.Fatalf("result %d", r)
	}
	if s.Src().String() != "127.0.0.1:8080" || s.Dst().String() != "127.0.0.2:40000" || s.Seq != 1000 || s.Ack != 2000 ||
		s.WireLen != 300 || len(s.Payload) != 5 || s.Flags != ACK || s.V6 {
		t.Errorf("got %+v", s)
	}
	if r, rr := s.Key.Reverse(), s.Key.Reverse().Reverse(); rr != s.Key || r.SrcPort != 40000 || !rr.Equal(&s.Key) || r.Equal(&s.Key) {
		t.Errorf("reverse %+v of %+v", r, s.Key)
	}
	if n := testing.AllocsPerRun(100, func() { Decode(LinkRaw, b, 0, &s) }); n != 0 {
		t.Errorf("%v allocations per packet", n)
	}
	for _, frag := range []uint16{0x0010, 0x2000} { // a later fragment; the first, more to come
		f := ipv4()
		binary.BigEndian.PutUint16(f[6:8], frag)
		if r := Decode(LinkRaw, f, 0, &s); r != Fragment {
			t.Errorf("fragment %#x: result %d", frag, r)
		}
	}
	udp := ipv4()
	udp[9] = 17
	if r := Decode(LinkRaw, udp, 0, &s); r != Other {
		t.Errorf("UDP: result %d", r)
	}
	for _, n := range []int{0, 19, 39} {
		if r := Decode(LinkRaw, b[:n], 0, &s); r != Bad && !(n == 0 && r == Other) {
			t.Errorf("cut at %d: result %d", n, r)
		}
	}
}

// TestDecodeNoLength checks a GSO segment captured on the sending host,
// whose IP header gives no length, cut by the snaplen: its length on the
// wire comes from the capture's, not from what was captured.
func TestDecodeNoLength(t *testing.T) {
	b := ipv4()
	b[2], b[3] = 0, 0
	eth := append(make([]byte, 14), b...)
	eth[12], eth[13] = 0x08, 0x00
	var s Segment
	if r := Decode(LinkEthernet, eth, 14+20+20+70000, &s); r != TCP || s.WireLen != 70000 || len(s.Payload) != 5 {
		t.Errorf("with the wire length: %d, %+v", r, s)
	}
	if r := Decode(LinkEthernet, eth, 0, &s); r != TCP || s.WireLen != 5 {
		t.Errorf("without: %d, %+v", r, s)
	}
	// A damaged capture length: less than was captured, or absurdly large.
	if r := Decode(LinkEthernet, eth, 30, &s); r != TCP || s.WireLen != 5 {
		t.Errorf("a wire length shorter than the capture: %d, %+v", r, s)
	}
	if r := Decode(LinkEthernet, eth, 1<<33+42, &s); r != TCP || s.WireLen != maxWire-40 {
		t.Errorf("a wire length of 8 GiB: %d, WireLen %d", r, s.WireLen)
	}
}

func TestDecodeIPv6(t *testing.T) {
	// An IPv6 packet from an IPv4-mapped address, with a destination
	// options header before the TCP header and 7 payload bytes.
	b := make([]byte, 40+8+20+7)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:6], 8+20+7)
	b[6] = 60
	copy(b[8:24], []byte{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: 2, 15: 1})
	b[39] = 1 // ::1
	b[40] = 6 // next: TCP; length 0: 8 bytes
	tcpHeader(b[48:], 443, 50000, 7, 9, SYN|ACK)
	var s Segment
	if r := Decode(LinkIPv6, b, 0, &s); r != TCP {
		t.Fatalf("result %d", r)
	}
	if s.Src().String() != "[::ffff:192.0.2.1]:443" || s.Dst().String() != "[::1]:50000" || !s.V6 ||
		s.WireLen != 7 || string(s.Payload) != "\x00\x00\x00\x00\x00\x00\x00" || s.Flags != SYN|ACK {
		t.Errorf("got %+v", s)
	}
}

func TestSeqDiff(t *testing.T) {
	if SeqDiff(5, 0xfffffff0) != 21 || SeqDiff(0xfffffff0, 5) != -21 || SeqDiff(3, 3) != 0 {
		t.Error("sequence numbers do not wrap")
	}
}

// FuzzDecode checks, for any bytes, link type and wire length, that Decode
// neither panics nor reads outside the packet, and that what it reports
// holds together.
func FuzzDecode(f *testing.F) {
	f.Add(LinkRaw, ipv4(), 0)
	f.Add(LinkEthernet, append([]byte{12: 0x08, 13: 0x00}, ipv4()...), 400)
	f.Add(LinkIPv6, make([]byte, 75), 0)
	f.Add(LinkSLL2, make([]byte, 80), 1500)
	f.Fuzz(func(t *testing.T, link int, data []byte, wire int) {
		var s Segment
		if Decode(link, data, wire, &s) != TCP {
			return
		}
		if uint32(len(s.Payload)) > s.WireLen {
			t.Fatalf("%d payload bytes captured of %d on the wire", len(s.Payload), s.WireLen)
		}
		if len(s.Payload) > 0 {
			off := cap(data) - cap(s.Payload) // where the payload starts in data
			if off < 0 || off+len(s.Payload) > len(data) || &data[off] != &s.Payload[0] {
				t.Fatal("the payload is not a part of the packet")
			}
		}
		if link == LinkRaw && s.V6 != (data[0]>>4 == 6) {
			t.Fatalf("V6 %v for IP version %d", s.V6, data[0]>>4)
		}
	})
}
