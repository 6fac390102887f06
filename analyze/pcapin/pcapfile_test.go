package pcapin

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// rawPcap builds a classic pcap file by hand in either byte order and time
// resolution, with the given records (each record's bytes are filled with
// its index).
func rawPcap(big, nanos bool, snaplen uint32, link uint32, sizes []int) []byte {
	var o binary.AppendByteOrder = binary.LittleEndian
	if big {
		o = binary.BigEndian
	}
	magic := uint32(0xa1b2c3d4)
	if nanos {
		magic = 0xa1b23c4d
	}
	b := o.AppendUint32(nil, magic)
	b = o.AppendUint16(b, 2)
	b = o.AppendUint16(b, 4)
	b = o.AppendUint32(b, 0) // thiszone
	b = o.AppendUint32(b, 0) // sigfigs
	b = o.AppendUint32(b, snaplen)
	b = o.AppendUint32(b, link)
	for i, n := range sizes {
		b = o.AppendUint32(b, uint32(1700000000+i))
		b = o.AppendUint32(b, uint32(i*7))
		b = o.AppendUint32(b, uint32(n))
		b = o.AppendUint32(b, uint32(n+3))
		b = append(b, bytes.Repeat([]byte{byte(i)}, n)...)
	}
	return b
}

func TestPcapFileFormats(t *testing.T) {
	sizes := []int{60, 0, 1514, 700 << 10, 42}
	for _, tc := range []struct {
		name       string
		big, nanos bool
	}{{"le-us", false, false}, {"be-us", true, false}, {"le-ns", false, true}, {"be-ns", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			file := rawPcap(tc.big, tc.nanos, 1<<20, 1|0x10000000, sizes)
			// One byte per read: every refill and compaction path runs.
			f, err := newPcapFile(iotest.OneByteReader(bytes.NewReader(file)))
			if err != nil {
				t.Fatal(err)
			}
			for i, n := range sizes {
				data, wire, link, ts, err := f.next()
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if wire != n+3 {
					t.Errorf("record %d: length on the wire %d, want %d", i, wire, n+3)
				}
				if link != 1 {
					t.Errorf("link %d, want 1 (FCS bits dropped)", link)
				}
				frac := uint64(i * 7)
				if !tc.nanos {
					frac *= 1000
				}
				if want := uint64(1700000000+i)*1e9 + frac; ts != want {
					t.Errorf("record %d: ts %d, want %d", i, ts, want)
				}
				if !bytes.Equal(data, bytes.Repeat([]byte{byte(i)}, n)) {
					t.Errorf("record %d: %d bytes, want %d of %d", i, len(data), n, i)
				}
			}
			if _, _, _, _, err := f.next(); err != io.EOF {
				t.Errorf("after the last record: %v, want io.EOF", err)
			}
		})
	}
}

// TestPcapFileCutEverywhere cuts a file at every offset: the complete
// records are read, then io.EOF at a record boundary or
// io.ErrUnexpectedEOF inside a record.
func TestPcapFileCutEverywhere(t *testing.T) {
	sizes := []int{10, 0, 33, 5}
	file := rawPcap(false, false, 65535, 1, sizes)
	var ends []int // offset after each record
	off := 24
	for _, n := range sizes {
		off += 16 + n
		ends = append(ends, off)
	}
	for cut := 0; cut <= len(file); cut++ {
		f, err := newPcapFile(bytes.NewReader(file[:cut]))
		if cut < 24 {
			if err == nil {
				t.Fatalf("cut %d: header accepted", cut)
			}
			continue
		}
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		complete := 0
		for _, e := range ends {
			if e <= cut {
				complete++
			}
		}
		got := 0
		for {
			_, _, _, _, err = f.next()
			if err != nil {
				break
			}
			got++
		}
		wantErr := io.ErrUnexpectedEOF
		if cut == 24 || (complete > 0 && ends[complete-1] == cut) {
			wantErr = io.EOF
		}
		if got != complete || !errors.Is(err, wantErr) {
			t.Errorf("cut %d: %d records then %v, want %d then %v", cut, got, err, complete, wantErr)
		}
	}
}

func TestPcapFileDamage(t *testing.T) {
	file := rawPcap(false, false, 65535, 1, []int{10})
	bad := append([]byte(nil), file...)
	binary.LittleEndian.PutUint32(bad[24+8:], 1<<30) // captured length
	f, err := newPcapFile(bytes.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := f.next(); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("huge captured length: %v", err)
	}
	bad = append([]byte(nil), file...)
	binary.LittleEndian.PutUint32(bad[24+12:], 5) // original < captured
	f, _ = newPcapFile(bytes.NewReader(bad))
	if _, _, _, _, err := f.next(); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("captured > original: %v", err)
	}
	bad = append([]byte(nil), file...)
	binary.LittleEndian.PutUint16(bad[4:], 3)
	if _, err := newPcapFile(bytes.NewReader(bad)); !errors.Is(err, errPcapVersion) {
		t.Errorf("version 3: %v", err)
	}
	if _, err := newPcapFile(bytes.NewReader(make([]byte, 24))); !errors.Is(err, errPcapMagic) {
		t.Errorf("zero magic: %v", err)
	}
}

func BenchmarkPcapFile(b *testing.B) {
	sizes := make([]int, 10000)
	for i := range sizes {
		sizes[i] = 60 + i%1400
	}
	file := rawPcap(false, false, 65535, 1, sizes)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := newPcapFile(bytes.NewReader(file))
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, _, _, _, err := f.next(); err != nil {
				break
			}
		}
	}
}
