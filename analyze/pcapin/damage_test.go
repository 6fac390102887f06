package pcapin

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/rewind-tools/rewind/analyze/tcpip"
)

// damagePackets is a capture of 24 packets, enough to damage one in the
// middle and read on.
func damagePackets() []pkt {
	var pkts []pkt
	for range 3 {
		pkts = append(pkts, conversation()...)
	}
	return pkts
}

// pcapRecords returns where each record of a little-endian pcap starts.
func pcapRecords(b []byte) []int {
	var at []int
	for off := 24; off+16 <= len(b); off += 16 + int(binary.LittleEndian.Uint32(b[off+8:])) {
		at = append(at, off)
	}
	return at
}

// ngBlocks returns where each block of a little-endian pcapng starts.
func ngBlocks(b []byte) []int {
	var at []int
	for off := 0; off+12 <= len(b); off += int(binary.LittleEndian.Uint32(b[off+4:])) {
		at = append(at, off)
	}
	return at
}

func insert(b []byte, at int, junk []byte) []byte {
	return slices.Concat(b[:at], junk, b[at:])
}

// junk is deterministic noise that is not a record header.
func junk(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func readCounts(t *testing.T, b []byte) Counts {
	t.Helper()
	_, c := summarize(t, b)
	return c
}

// TestPcapResync damages a classic pcap in the ways files get damaged and
// checks that every intact record is read and the damage is reported with
// its offset and size (#19 item 6).
func TestPcapResync(t *testing.T) {
	pkts := damagePackets()
	file := writePcap(t, tcpip.LinkEthernet, pkts, false)
	rec := pcapRecords(file)
	n := uint64(len(rec))
	k := rec[9]
	lenK := 16 + int(binary.LittleEndian.Uint32(file[k+8:]))
	for _, tc := range []struct {
		name     string
		file     []byte
		packets  uint64
		at, skip int64
		stopped  bool
	}{
		{"huge-length", put32(file, k+8, 0x7fff0000), n - 1, int64(k), int64(lenK), false},
		{"captured-over-original", put32(file, k+12, 1), n - 1, int64(k), int64(lenK), false},
		{"first-record", put32(file, rec[0]+8, 0x7fff0000), n - 1, int64(rec[0]), int64(rec[1] - rec[0]), false},
		{"noise-between-records", insert(file, k, junk(37)), n, int64(k), 37, false},
		{"zeros-between-records", insert(file, k, make([]byte, 4096)), n, int64(k), 4096, false},
		{"noise-inside-a-record", insert(file, k+20, junk(300)), n, -1, -1, false},
		{"length-past-the-end", put32(put32(file, k+8, 200000), k+12, 200000), n - 1, int64(k), int64(lenK), false},
		{"last-record", put32(file, rec[n-1]+8, 0x7fff0000), n - 1, int64(rec[n-1]), int64(len(file) - rec[n-1]), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := readCounts(t, tc.file)
			if c.Packets != tc.packets || len(c.Damage) != 1 || c.DamagedRegions != 1 {
				t.Fatalf("%d packets, damage %+v; want %d packets, one region", c.Packets, c.Damage, tc.packets)
			}
			d := c.Damage[0]
			if tc.at >= 0 && (d.Offset != tc.at || d.Length != tc.skip) {
				t.Errorf("damage %+v; want offset %d, %d bytes", d, tc.at, tc.skip)
			}
			if (c.ReadError != "") != tc.stopped || !strings.Contains(d.Reason, "damaged record header") {
				t.Errorf("read error %q, damage %q", c.ReadError, d.Reason)
			}
		})
	}
	// A file with no damage reports none.
	if c := readCounts(t, file); c.Packets != n || len(c.Damage) != 0 || c.ReadError != "" {
		t.Errorf("intact file: %+v", c)
	}
}

func put32(b []byte, at int, v uint32) []byte {
	out := append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(out[at:], v)
	return out
}

// oneInterfacePcapng writes the packets on a single Ethernet interface.
func oneInterfacePcapng(t *testing.T, pkts []pkt) []byte {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "lo", LinkType: layers.LinkTypeEthernet,
		SnapLength: 65535, TimestampResolution: 9}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		data := frame(tcpip.LinkEthernet, ipv4TCP(p))
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts(i), CaptureLength: len(data), Length: len(data)}, data); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	return buf.Bytes()
}

// TestPcapngResync damages a pcapng's blocks: a damaged block is passed
// over up to the next sound one, and a lost interface block costs only
// the packets whose interface it leaves unknown.
func TestPcapngResync(t *testing.T) {
	pkts := damagePackets()
	one := oneInterfacePcapng(t, pkts)
	blk := ngBlocks(one) // SHB, IDB, 24 EPBs
	n := uint64(len(pkts))
	k := blk[12]
	two := writePcapng(t, pkts)
	blk2 := ngBlocks(two) // SHB, IDB (Ethernet), IDB (SLL2), 24 EPBs alternating
	for _, tc := range []struct {
		name      string
		file      []byte
		packets   uint64
		nonTCP    uint64
		at, skip  int64
		regions   int
		stopped   bool
		inReasons string
	}{
		{"huge-length", put32(one, k+4, 0x7fff0000), n - 1, 0, int64(k), int64(blk[13] - k), 1, false, "over the"},
		{"length-mismatch", put32(one, k+4, uint32(blk[13]-k+8)), n - 1, 0, int64(k), int64(blk[13] - k), 1, false, "block length"},
		{"noise-between-blocks", insert(one, k, junk(41)), n, 0, int64(k), 41, 1, false, "damaged block"},
		{"zeros-between-blocks", insert(one, k, make([]byte, 4096)), n, 0, int64(k), 4096, 1, false, "damaged block"},
		{"bad-interface-id", put32(one, k+8, 7), n - 1, 0, int64(k), int64(blk[13] - k), 1, false, "interface 7"},
		{"length-past-the-end", put32(one, k+4, uint32(len(one)+64)&^3), n - 1, 0, int64(k), int64(blk[13] - k), 1, false, "runs past the end"},
		{"last-block", put32(one, blk[len(blk)-1]+4, 0x7fff0000), n - 1, 0, int64(blk[len(blk)-1]), int64(len(one) - blk[len(blk)-1]), 1, true, "no intact block"},
		// The only interface block lost: no packet can be decoded.
		{"only-interface", put32(one, blk[1]+4, 0x7fff0000), 0, 0, int64(blk[1]), -1, 2, false, "before any interface"},
		// Interface 1 (SLL2) lost: its packets are read as interface 0's
		// (Ethernet), do not decode, and are counted as not TCP.
		{"second-interface", put32(two, blk2[2]+4, 0x7fff0000), n, n / 2, int64(blk2[2]), int64(blk2[3] - blk2[2]), 1, false, "damaged block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := readCounts(t, tc.file)
			if c.Packets != tc.packets || len(c.Damage) != tc.regions || c.DamagedRegions != tc.regions || c.NonTCP != tc.nonTCP {
				t.Fatalf("%d packets (%d not TCP), damage %+v; want %d packets (%d not TCP), %d regions",
					c.Packets, c.NonTCP, c.Damage, tc.packets, tc.nonTCP, tc.regions)
			}
			d := c.Damage[0]
			if d.Offset != tc.at || (tc.skip >= 0 && d.Length != tc.skip) {
				t.Errorf("damage %+v; want offset %d, %d bytes", d, tc.at, tc.skip)
			}
			var reasons []string
			for _, d := range c.Damage {
				reasons = append(reasons, d.Reason)
			}
			if (c.ReadError != "") != tc.stopped || !strings.Contains(strings.Join(reasons, "; "), tc.inReasons) {
				t.Errorf("read error %q, damage %q; want %q", c.ReadError, reasons, tc.inReasons)
			}
		})
	}
	if c := readCounts(t, one); c.Packets != n || len(c.Damage) != 0 || c.ReadError != "" {
		t.Errorf("intact file: %+v", c)
	}
}

// TestResyncOverNoise times the scan over 16 MiB of noise and zeros in
// each format: it must stay linear in the bytes passed over.
func TestResyncOverNoise(t *testing.T) {
	pkts := damagePackets()
	noise := slices.Concat(junk(8<<20), make([]byte, 8<<20))
	for name, file := range map[string][]byte{
		"pcap":   writePcap(t, tcpip.LinkEthernet, pkts, false),
		"pcapng": oneInterfacePcapng(t, pkts),
	} {
		var at int
		if name == "pcapng" {
			at = ngBlocks(file)[7]
		} else {
			at = pcapRecords(file)[5]
		}
		start := time.Now()
		c := readCounts(t, insert(file, at, noise))
		took := time.Since(start)
		if c.Packets != uint64(len(pkts)) || c.DamagedBytes != int64(len(noise)) || took > raceSlowdown*5*time.Second {
			t.Errorf("%s: %d packets, %d bytes passed over in %v; want %d, %d, well under %d s",
				name, c.Packets, c.DamagedBytes, took, len(pkts), len(noise), raceSlowdown*5)
		}
		t.Logf("%s: 16 MiB passed over in %v", name, took)
	}
}
