package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// pcapRecordEnds returns the offsets where each record of a little-endian
// pcap ends (the file header is 24 bytes, each record header 16).
func pcapRecordEnds(b []byte) []int {
	var ends []int
	for off := 24; off+16 <= len(b); {
		off += 16 + int(binary.LittleEndian.Uint32(b[off+8:]))
		ends = append(ends, off)
	}
	return ends
}

// pcapngBlockEnds returns the offsets where each block of a little-endian
// pcapng ends, and which of them are packets (EPB type 6, SPB 3, PB 2).
func pcapngBlockEnds(b []byte) (ends []int, packet []bool) {
	for off := 0; off+12 <= len(b); {
		typ := binary.LittleEndian.Uint32(b[off:])
		off += int(binary.LittleEndian.Uint32(b[off+4:]))
		ends = append(ends, off)
		packet = append(packet, typ == 6 || typ == 3 || typ == 2)
	}
	return ends, packet
}

type damageProbe struct {
	Packets       uint64
	Damaged       bool
	Damage        string
	DamageRegions []struct {
		Offset, Length int64
		Reason         string
	} `json:"damage_regions"`
}

func probeInfo(t *testing.T, path string) (damageProbe, int) {
	t.Helper()
	code, out, errOut := runCLI(t, "info", "--json", path)
	var p damageProbe
	if code == exitOK {
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("info --json: %v\n%s", err, out)
		}
	} else if !strings.Contains(errOut, path) {
		t.Errorf("info failed without naming the file: %q", errOut)
	}
	return p, code
}

// TestCutAndCorruptPcaps cuts a pcap and a pcapng at every offset and
// corrupts each record's length: damage is always reported with its offset
// (by info and as a warning of analyze, which then fails an SLO gate), and
// every packet before a cut and every intact packet around a corrupted
// record still counts (#19 item 6).
func TestCutAndCorruptPcaps(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"conversation.pcap", "conversation.pcapng"} {
		whole, err := os.ReadFile(filepath.Join("../../analyze/pcapin/testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		var ends []int
		var isPacket []bool
		first := 24 // smallest prefix that is still recognisably a pcap
		if strings.HasSuffix(name, ".pcapng") {
			ends, isPacket = pcapngBlockEnds(whole)
			first = ends[0] // the section header block
		} else {
			ends = pcapRecordEnds(whole)
			isPacket = make([]bool, len(ends))
			for i := range isPacket {
				isPacket[i] = true
			}
		}
		if ends[len(ends)-1] != len(whole) {
			t.Fatalf("%s: records end at %d, file is %d bytes", name, ends[len(ends)-1], len(whole))
		}
		// packetsBefore counts the packets whose records end at or before n.
		packetsBefore := func(n int) (uint64, bool) {
			var k uint64
			boundary := n == first
			for i, e := range ends {
				if e <= n && isPacket[i] {
					k++
				}
				boundary = boundary || e == n
			}
			return k, boundary
		}
		path := filepath.Join(dir, name)
		for n := first; n < len(whole); n++ {
			os.WriteFile(path, whole[:n], 0o600)
			p, code := probeInfo(t, path)
			want, boundary := packetsBefore(n)
			if code != exitOK || p.Packets != want || p.Damaged == boundary {
				t.Errorf("%s cut at %d: exit %d, %d packets, damaged %v (%q); want %d packets, damaged %v",
					name, n, code, p.Packets, p.Damaged, p.Damage, want, !boundary)
			}
		}
		// A record header claiming a huge length, at each record.
		start := first
		for i, e := range ends {
			if strings.HasSuffix(name, ".pcapng") && i == 0 {
				start = e
				continue
			}
			bad := append([]byte(nil), whole...)
			lenAt := start + 8 // pcap: caplen
			if strings.HasSuffix(name, ".pcapng") {
				lenAt = start + 4 // block total length
			}
			binary.LittleEndian.PutUint32(bad[lenAt:], 0x7fff0000)
			os.WriteFile(path, bad, 0o600)
			p, code := probeInfo(t, path)
			// Reading resumes at the next record: only the corrupted one
			// is lost. (A corrupted interface block of this two-interface
			// pcapng leaves the other's link type for every packet.)
			want, _ := packetsBefore(len(whole))
			if isPacket[i] {
				want--
			}
			if code != exitOK || !p.Damaged || p.Packets != want || len(p.DamageRegions) == 0 || p.DamageRegions[0].Offset != int64(start) {
				t.Errorf("%s, record %d corrupted: exit %d, %d packets, damaged %v %+v; want %d packets, damaged at byte %d",
					name, i, code, p.Packets, p.Damaged, p.DamageRegions, want, start)
			}
			rep := filepath.Join(dir, "r.json")
			code, _, errOut := runCLI(t, "analyze", path, "--report", "json", "-o", rep, "--slo", "availability>=99%")
			var r struct {
				Capture struct {
					Exchanges int
					Warnings  []string
				}
				Objectives []struct{ Status string }
			}
			b, _ := os.ReadFile(rep)
			json.Unmarshal(b, &r)
			// The exchanges before the damage are measured; with no
			// response among them the objective has no data and the gate
			// fails.
			wantCode := exitOK
			if len(r.Objectives) != 1 || r.Objectives[0].Status != "met" {
				wantCode = exitSLO
			}
			if code != wantCode || !strings.Contains(errOut, "the input is damaged") || len(r.Capture.Warnings) == 0 {
				t.Errorf("%s, record %d corrupted: analyze --slo exit %d (want %d, %d exchanges), warnings %q, stderr %q; want the damage named",
					name, i, code, wantCode, r.Capture.Exchanges, r.Capture.Warnings, errOut)
			}
			start = e
		}
	}
}

// compressed returns b gzip- or zstd-compressed.
func compressed(t *testing.T, codec string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch codec {
	case "gz":
		w = gzip.NewWriter(&buf)
	case "zst":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCutCompressed cuts gzip- and zstd-compressed pcaps, pcapngs and
// captures at many offsets, the last bytes (the gzip trailer, the zstd
// checksum) among them, and corrupts a gzip checksum: whether the cut
// falls inside a record or between two, the damage is named (info, and a
// warning of analyze in its report and on stderr), or when nothing can be
// read the failure says the stream is cut short. A cut after the content
// loses no packet (#19 item 6).
func TestCutCompressed(t *testing.T) {
	dir := t.TempDir()
	const td = "../../analyze/pcapin/testdata/"
	for _, name := range []string{td + "conversation.pcap", td + "conversation.pcapng", "../../testdata/sample.rwd"} {
		plain, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		isRwd := strings.HasSuffix(name, ".rwd")
		whole, _ := probeInfo(t, name)
		for _, codec := range []string{"gz", "zst"} {
			z := compressed(t, codec, plain)
			path := filepath.Join(dir, filepath.Base(name)+"."+codec)
			check := func(what string, b []byte, allContent bool) {
				t.Helper()
				os.WriteFile(path, b, 0o600)
				code, out, errOut := runCLI(t, "info", "--json", path)
				var j struct {
					Packets     uint64
					Damaged     bool
					Damage      string
					StreamError string `json:"stream_error"`
					Events      uint64 `json:"events_total"`
				}
				if code == exitOK {
					json.Unmarshal([]byte(out), &j)
				}
				named := j.Damage
				if isRwd {
					named = j.StreamError
				}
				switch {
				case code != exitOK:
					if !strings.Contains(errOut, path) || !strings.Contains(errOut, "stream is cut short") {
						t.Errorf("%s, %s: info exit %d, %q; want the damage named", filepath.Base(path), what, code, errOut)
					}
				case !strings.Contains(named, "stream is"):
					t.Errorf("%s, %s: info does not name the damage: %s", filepath.Base(path), what, out)
				case !isRwd && !j.Damaged:
					t.Errorf("%s, %s: info says not damaged: %s", filepath.Base(path), what, out)
				case allContent && (j.Packets != whole.Packets || isRwd && !strings.Contains(out, `"clean_close": true`)):
					t.Errorf("%s, %s: %d packets, want all %d: %s", filepath.Base(path), what, j.Packets, whole.Packets, out)
				}
				rep := filepath.Join(dir, "r.json")
				os.Remove(rep)
				code, _, errOut = runCLI(t, "analyze", path, "--report", "json", "-o", rep)
				var r struct{ Capture struct{ Warnings []string } }
				b, _ = os.ReadFile(rep)
				json.Unmarshal(b, &r)
				switch {
				case code != exitOK:
					if !strings.Contains(errOut, "stream is cut short") {
						t.Errorf("%s, %s: analyze exit %d, %q; want the damage named", filepath.Base(path), what, code, errOut)
					}
				case !strings.Contains(errOut, "warning: the input is damaged: the "+map[string]string{"gz": "gzip", "zst": "zstd"}[codec]+" stream is") ||
					!strings.Contains(strings.Join(r.Capture.Warnings, "\n"), "stream is"):
					t.Errorf("%s, %s: analyze exit %d, warnings %q, stderr %q; want a warning naming the damage", filepath.Base(path), what, code, r.Capture.Warnings, errOut)
				}
			}
			// The last bytes: gzip's CRC and size, zstd's checksum.
			for n := 1; n <= 8; n++ {
				check(fmt.Sprintf("%d bytes cut", n), z[:len(z)-n], codec == "gz")
			}
			// Anywhere after the gzip header or the zstd frame header.
			step := 1
			if isRwd {
				step = len(z) / 40
			}
			for n := 12; n < len(z)-8; n += step {
				check(fmt.Sprintf("cut at %d of %d", n, len(z)), z[:n], false)
			}
			if codec == "gz" {
				bad := append([]byte(nil), z...)
				bad[len(bad)-6] ^= 1 // the CRC
				check("checksum corrupted", bad, true)
			}
		}
	}
}
