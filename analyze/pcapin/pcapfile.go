package pcapin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// pcapFile reads the records of a classic pcap file in place, as slices of
// a [window] (gopacket's pcapgo reader reads each header and each packet
// separately, through a small buffer). The format: a 24-byte file header
// (magic, version, snaplen, link type), then per packet a 16-byte record
// header (seconds, µs or ns, captured length, original length) and the
// captured bytes, all in the byte order the magic shows.
//
// A record header that cannot be right (a captured length over the
// snaplen or over the original length, or an empty record) is damage: the
// reader scans on, byte by byte, for the next place where two records in a
// row look sound, and resumes there. The format has no sync marker, so
// "sound" is judged as the pcapfix tool does: lengths within bounds, a
// fraction below one second and, once a record has been read, a time within
// a week of the last good record's.
type pcapFile struct {
	w       window
	big     bool
	fracNS  uint64 // ns per unit of the record's fraction field: 1000 or 1
	link    int
	maxLen  uint32 // longest record accepted
	lastSec uint32 // seconds of the last good record; 0 before the first
	damage  damageLog
}

const (
	// pcapMaxRecord is the longest record taken whatever the snaplen says
	// (tcpdump's own limit is 256 KiB; 64 MiB leaves room for oddities
	// while stopping at a damaged length).
	pcapMaxRecord = 64 << 20
	// resyncMaxJump is how far from the last good record's time a record
	// found while resynchronising may lie.
	resyncMaxJump = 7 * 24 * 3600
)

var (
	errPcapMagic   = errors.New("not a pcap file (unknown magic number)")
	errPcapVersion = errors.New("unsupported pcap version (want 2.x)")
)

func newPcapFile(r io.Reader) (*pcapFile, error) {
	f := &pcapFile{w: newWindow(r)}
	h, err := f.w.need(24)
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
	f.w.consume(24)
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
// io.EOF at the end of the file and a *damageError where reading has to
// stop (a record cut off, or damage with no sound record after it).
// Damage it could resume after is in skipped.
func (f *pcapFile) next() (data []byte, wire int, link int, ts uint64, err error) {
	for {
		h, err := f.w.need(16)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = &damageError{Offset: f.w.pos, Reason: fmt.Sprintf("the file ends inside the record header at byte %d", f.w.pos), Cut: true}
			}
			return nil, 0, 0, 0, err
		}
		incl, why := f.check(h)
		if why != "" {
			if err := f.resync(why); err != nil {
				return nil, 0, 0, 0, err
			}
			continue
		}
		data, err = f.w.need(16 + int(incl))
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				cut := &damageError{Offset: f.w.pos, Reason: fmt.Sprintf(
					"the file ends inside the record at byte %d (%d of its bytes missing)", f.w.pos, 16+int64(incl)-int64(f.w.buffered())), Cut: true}
				// A damaged length can point past the end too: resume at
				// a sound record if one follows; else the file was cut.
				if f.resync(fmt.Sprintf("capture length %d runs past the end of the file", incl)) != nil {
					return nil, 0, 0, 0, cut
				}
				continue
			}
			return nil, 0, 0, 0, fmt.Errorf("reading the record at byte %d: %w", f.w.pos, err)
		}
		f.lastSec = f.u32(data)
		ts = uint64(f.lastSec)*1e9 + uint64(f.u32(data[4:]))*f.fracNS
		wire = int(f.u32(data[12:]))
		f.w.consume(16 + int(incl))
		return data[16:], wire, f.link, ts, nil
	}
}

// check returns a record header's captured length, or why the header
// cannot be right.
func (f *pcapFile) check(h []byte) (incl uint32, why string) {
	incl, orig := f.u32(h[8:]), f.u32(h[12:])
	switch {
	case incl > f.maxLen:
		return 0, fmt.Sprintf("capture length %d exceeds the largest record taken (%d)", incl, f.maxLen)
	case incl > orig:
		return 0, fmt.Sprintf("capture length %d exceeds original packet length %d", incl, orig)
	case orig == 0:
		return 0, "empty record (original length 0)"
	}
	return incl, ""
}

// sound reports whether the record header h, met while resynchronising,
// looks like one a capture program wrote.
func (f *pcapFile) sound(h []byte) (incl uint32, ok bool) {
	incl, orig := f.u32(h[8:]), f.u32(h[12:])
	if incl == 0 || incl > f.maxLen || incl > orig || orig > pcapMaxRecord {
		return 0, false
	}
	if uint64(f.u32(h[4:]))*f.fracNS >= 1e9 {
		return 0, false
	}
	if sec := f.u32(h); f.lastSec != 0 && (sec+resyncMaxJump < f.lastSec || sec > f.lastSec+resyncMaxJump) {
		return 0, false
	}
	return incl, true
}

// resync passes over the damaged record header at the window's start and
// every byte after it up to the first place where a sound record is
// followed by another sound record (or by the end of the file). It records
// the region skipped, or returns a *damageError when no such place is left.
func (f *pcapFile) resync(why string) error {
	at := f.w.pos
	f.w.consume(1)
	for {
		h, err := f.w.need(16)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				skipped := f.w.pos - at + int64(f.w.buffered())
				return &damageError{Offset: at, Length: skipped, Reason: fmt.Sprintf(
					"damaged record header at byte %d (%s); no intact record after it, %d bytes skipped to the end", at, why, skipped)}
			}
			return err
		}
		if incl, ok := f.sound(h); ok {
			n := 16 + int(incl)
			b, err := f.w.need(n + 16)
			if err == nil {
				_, ok = f.sound(b[n:])
			} else if errors.Is(err, io.ErrUnexpectedEOF) {
				ok = f.w.buffered() == n // the last record of the file
			} else {
				return err
			}
			if ok {
				f.damage.add(at, f.w.pos-at, fmt.Sprintf("damaged record header (%s), resumed at byte %d", why, f.w.pos))
				return nil
			}
		}
		f.w.consume(1)
	}
}

func (f *pcapFile) skipped() *damageLog { return &f.damage }
