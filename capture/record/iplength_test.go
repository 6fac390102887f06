//go:build linux

package record

import "testing"

// TestIPLength checks the length a packet record says it had: the IP
// header's when it gives one, else the packet's (a GSO or BIG TCP packet
// has 0 there).
func TestIPLength(t *testing.T) {
	v4 := make([]byte, 40)
	v4[0], v4[2], v4[3] = 0x45, 0x05, 0xdc // total length 1500
	v6 := make([]byte, 60)
	v6[0], v6[4], v6[5] = 0x60, 0x00, 0x14 // payload length 20
	for _, c := range []struct {
		name string
		b    []byte
		n    int
		want uint32
	}{
		{"IPv4", v4, 9000, 1500},
		{"IPv4 without a length", append([]byte{0x45, 0, 0, 0}, v4[4:]...), 70000, 70000},
		{"IPv6", v6, 9000, 60},
		{"IPv6 without a length", append([]byte{0x60, 0, 0, 0, 0, 0}, v6[6:]...), 200000, 200000},
		{"too short", v4[:10], 77, 77},
	} {
		if got := ipLength(c.b, c.n); got != c.want {
			t.Errorf("%s: ipLength = %d, want %d", c.name, got, c.want)
		}
	}
}
