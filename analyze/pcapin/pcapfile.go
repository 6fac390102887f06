package pcapin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// pcapFile reads the records of a classic pcap file in place: records are
// returned as slices of a large buffer refilled a few hundred KiB at a
// time, so a packet costs no read call and no copy of its own (gopacket's
// pcapgo reader reads each header and each packet separately, through a
// small buffer). The format: a 24-byte file header (magic, version,
// snaplen, link type), then per packet a 16-byte record header (seconds,
// µs or ns, captured length, original length) and the captured bytes, all
// in the byte order the magic shows.
type pcapFile struct {
	r        io.Reader
	buf      []byte
	off, end int // buf[off:end] is read but not consumed
	big      bool
	fracNS   uint64 // ns per unit of the record's fraction field: 1000 or 1
	link     int
	maxLen   uint32 // longest record accepted
	eof      bool
	pos      int64 // file offset of the next record
}

const (
	pcapBufSize = 512 << 10
	// pcapMaxRecord is the longest record taken whatever the snaplen says
	// (tcpdump's own limit is 256 KiB; 64 MiB leaves room for oddities
	// while stopping at a damaged length).
	pcapMaxRecord = 64 << 20
)

var (
	errPcapMagic   = errors.New("not a pcap file (unknown magic number)")
	errPcapVersion = errors.New("unsupported pcap version (want 2.x)")
)

func newPcapFile(r io.Reader) (*pcapFile, error) {
	f := &pcapFile{r: r, buf: make([]byte, pcapBufSize)}
	h, err := f.need(24)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading the pcap file header: %w", err)
	}
	switch binary.LittleEndian.Uint32(h) {
	case 0xa1b2c3d4:
		f.fracNS = 1000
	case 0xd4c3b2a1:
		f.big, f.fracNS = true, 1000
	case 0xa1b23c4d:
		f.fracNS = 1
	case 0x4d3cb2a1:
		f.big, f.fracNS = true, 1
	default:
		return nil, errPcapMagic
	}
	if f.u16(h[4:]) != 2 {
		return nil, errPcapVersion
	}
	snaplen := f.u32(h[16:])
	f.maxLen = max(snaplen, 256<<10)
	if f.maxLen > pcapMaxRecord {
		f.maxLen = pcapMaxRecord
	}
	// The link type's upper bits may carry FCS information; the type is
	// the low 16 bits.
	f.link = int(f.u32(h[20:]) & 0xffff)
	f.off += 24
	f.pos = 24
	return f, nil
}

func (f *pcapFile) u16(b []byte) uint16 {
	if f.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (f *pcapFile) u32(b []byte) uint32 {
	if f.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// next returns the next packet's captured bytes (valid until the next
// call), its link type and its time in ns since the Unix epoch. It returns
// io.EOF at the end of the file, io.ErrUnexpectedEOF for a record cut off,
// and an error naming the problem for a damaged record header.
func (f *pcapFile) next() (data []byte, link int, ts uint64, err error) {
	h, err := f.need(16)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("the file ends inside the record header at byte %d: %w", f.pos, err)
		}
		return nil, 0, 0, err
	}
	sec, frac := uint64(f.u32(h)), uint64(f.u32(h[4:]))
	incl, orig := f.u32(h[8:]), f.u32(h[12:])
	if incl > f.maxLen {
		return nil, 0, 0, fmt.Errorf("capture length %d exceeds the largest record taken (%d): damaged record header at byte %d", incl, f.maxLen, f.pos)
	}
	if incl > orig {
		return nil, 0, 0, fmt.Errorf("capture length %d exceeds original packet length %d: damaged record header at byte %d", incl, orig, f.pos)
	}
	f.off += 16
	data, err = f.need(int(incl))
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, 0, 0, fmt.Errorf("the file ends inside the record at byte %d (%d of its bytes missing): %w", f.pos, int64(incl)-int64(f.end-f.off), err)
		}
		return nil, 0, 0, fmt.Errorf("reading the record at byte %d: %w", f.pos, err)
	}
	f.off += int(incl)
	f.pos += 16 + int64(incl)
	return data, f.link, sec*1e9 + frac*f.fracNS, nil
}

// need returns the next n unconsumed bytes, reading more as needed. At the
// end of the input it returns io.EOF when no byte is left, and
// io.ErrUnexpectedEOF when fewer than n are.
func (f *pcapFile) need(n int) ([]byte, error) {
	if f.end-f.off >= n {
		return f.buf[f.off : f.off+n], nil
	}
	if f.off > 0 {
		f.end = copy(f.buf, f.buf[f.off:f.end])
		f.off = 0
	}
	if n > len(f.buf) {
		f.buf = append(f.buf[:f.end], make([]byte, n-f.end)...)
		f.buf = f.buf[:cap(f.buf)]
	}
	for f.end < n && !f.eof {
		m, err := f.r.Read(f.buf[f.end:])
		f.end += m
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return nil, err
			}
			f.eof = true
		}
	}
	if f.end < n {
		if f.end == 0 {
			return nil, io.EOF
		}
		return nil, io.ErrUnexpectedEOF
	}
	return f.buf[:n], nil
}
