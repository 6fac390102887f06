package http2

import (
	"testing"

	"github.com/rewind-tools/rewind/analyze/bytetime"
)

// FuzzHTTP2 feeds random bytes to both wires at random split points, with
// gaps, in every mode: the parser must not panic, and must keep its buffers
// bounded.
func FuzzHTTP2(f *testing.F) {
	w := basicConv(f).writes
	f.Add(concat(w, 0), concat(w, 1), uint16(7), uint8(0))
	f.Add(concat(w, 0)[len(ClientPreface):], concat(w, 1), uint16(100), uint8(1))
	f.Add([]byte(ClientPreface+"\x00\x00\x00\x04\x00\x00\x00\x00\x00"), []byte("\x00\x00\x00\x04\x01\x00\x00\x00\x00"), uint16(3), uint8(2))
	f.Fuzz(func(t *testing.T, a, b []byte, split uint16, mode uint8) {
		opts := Options{ClientWire: int(mode%3) - 1, MidStream: mode&4 != 0, Upgraded: mode&8 != 0, MaxBodyCapture: 64}
		emitted := 0
		c := NewConn(opts, func(s *Stream) {
			emitted++
			_ = summary(s)
		})
		step := int(split%512) + 1
		for i := 0; i < len(a) || i < len(b); i += step {
			if i < len(a) {
				c.Feed(0, a[i:min(i+step, len(a))], bytetime.Times{First: uint64(i), Last: uint64(i)})
			}
			if i < len(b) {
				if mode&16 != 0 && i%3 == 1 {
					c.Gap(1, int64(step), bytetime.Times{First: uint64(i), Last: uint64(i)})
				}
				c.Feed(1, b[i:min(i+step, len(b))], bytetime.Times{First: uint64(i), Last: uint64(i)})
			}
		}
		c.Close(bytetime.Times{First: 1 << 40, Last: 1 << 40})
		for i := range c.wires {
			if len(c.wires[i].buf) != 0 {
				t.Fatal("buffer kept after Close")
			}
		}
		if len(c.streams) != 0 {
			t.Fatal("streams kept after Close")
		}
	})
}
