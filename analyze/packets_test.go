package analyze

import (
	"encoding/binary"
	"testing"
)

func TestParseTCP(t *testing.T) {
	b := make([]byte, 20+20+5)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:4], uint16(20+20+300)) // cut by the snaplen
	b[9] = 6
	copy(b[12:16], []byte{127, 0, 0, 1})
	copy(b[16:20], []byte{127, 0, 0, 2})
	binary.BigEndian.PutUint16(b[20:22], 8080)
	binary.BigEndian.PutUint16(b[22:24], 40000)
	binary.BigEndian.PutUint32(b[24:28], 1000)
	binary.BigEndian.PutUint32(b[28:32], 2000)
	b[32] = 5 << 4
	b[33] = tcpACK
	var s tcpSegment
	if !parseTCP(b, &s) {
		t.Fatal("not parsed")
	}
	if s.src.String() != "127.0.0.1:8080" || s.dst.String() != "127.0.0.2:40000" || s.seq != 1000 || s.ack != 2000 || s.payload != 300 || s.flags != tcpACK {
		t.Errorf("got %+v", s)
	}
	if n := testing.AllocsPerRun(100, func() { parseTCP(b, &s) }); n != 0 {
		t.Errorf("%v allocations per packet", n)
	}
	b[6] = 0x00
	b[7] = 0x10 // a later fragment
	if parseTCP(b, &s) {
		t.Error("fragment parsed")
	}
}
