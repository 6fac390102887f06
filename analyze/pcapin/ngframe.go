package pcapin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// pcapng block types whose layout ngFramer checks, and the others it knows
// (a block of a type it does not know is passed on when its framing is
// sound, but never taken as a place to resume after damage).
const (
	ngSectionHeader  = 0x0a0d0d0a
	ngInterface      = 1
	ngObsoletePacket = 2
	ngSimplePacket   = 3
	ngNameResolution = 4
	ngInterfaceStats = 5
	ngEnhancedPacket = 6
	ngSystemdJournal = 9
	ngDecryption     = 10
	ngCustom         = 0xbad
	ngCustomNoCopy   = 0x40000bad
	ngByteOrderMagic = 0x1a2b3c4d

	// ngMaxBlock is the longest block taken; ngMaxResyncBlock the longest
	// taken as the place to resume after damage (a packet block of the
	// largest snaplen tcpdump uses fits easily).
	ngMaxBlock       = 64 << 20
	ngMaxResyncBlock = 1 << 20
)

// ngFramer sits between a pcapng file and gopacket's pcapng reader, which
// stops for good at the first block it cannot parse. The framer checks each
// block's framing before passing it on: a known type, a length that is a
// multiple of 4 and the same at both ends of the block, and for packet
// blocks an interface the section has described and a captured length that
// fits the block. A block that fails is damage: the framer scans on, byte
// by byte, for the next block whose framing is sound (the length repeated
// at a block's end makes that a reliable test), records what it skipped,
// and passes only sound blocks on. A block cut off by the end of the file
// ends the stream at the block before it.
//
// Packet blocks name their interface by its position among the section's
// interface blocks, so a lost interface block shifts the numbering. Nothing
// shows that until a packet names an interface past those described: after
// damage in the section, such a packet is passed on as interface 0's when
// all the interfaces described share one link type (the numbering does not
// matter for decoding it), and dropped as damage otherwise. (Packets of a
// lost interface whose number is still in range are decoded with the link
// type and timestamp resolution of the one that took its place: those of
// another link type fail to decode and are counted as malformed or not TCP,
// and their times are off if the resolutions differ. The file cannot say.)
type ngFramer struct {
	w       window
	big     bool
	ifaces  int    // interface blocks passed on in this section
	link    int    // their link type, or -1 when they differ
	damaged bool   // damage passed over in this section
	out     []byte // the rest of the sound block being passed on
	damage  damageLog
	stopped *damageError // why the stream ended early, if it did
	err     error        // what Read returns once out is empty
}

func newNgFramer(r io.Reader) *ngFramer { return &ngFramer{w: newWindow(r)} }

// Read passes on the file's sound blocks.
func (f *ngFramer) Read(p []byte) (int, error) {
	for len(f.out) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		f.advance()
	}
	n := copy(p, f.out)
	f.out = f.out[n:]
	return n, nil
}

// advance sets out to the next sound block, passing over damage, or sets
// err at the end of the file.
func (f *ngFramer) advance() {
	n, why, err := f.block(f.w.pos == 0, ngMaxBlock)
	var cut *damageError
	switch {
	case errors.As(err, &cut) && cut.Cut && f.w.pos > 0 && f.w.buffered() >= 12:
		// A damaged length can point past the end too: resume at a sound
		// block if one follows; else the file was cut there.
		f.resync("its length runs past the end of the file", cut)
		return
	case err != nil:
		f.end(err)
		return
	case why != "" && n > 0:
		// A block framed soundly but unusable (a packet on an interface
		// the section lacks): skip just this block.
		f.damage.add(f.w.pos, int64(n), why)
		if t := f.u32(f.w.buf[f.w.off:]); t != ngInterfaceStats {
			f.noteDamage() // a skipped statistics block loses no interface
		}
		f.w.consume(n)
		return
	case why != "":
		if f.w.pos == 0 {
			// Not a pcapng at all: let the pcapng reader say so.
			f.err = fmt.Errorf("the first block is not a sound section header (%s)", why)
			return
		}
		f.resync(why, nil)
		return
	}
	f.pass(n)
}

// noteDamage marks the section as damaged, for interface numbering.
func (f *ngFramer) noteDamage() { f.damaged = true }

// end ends the stream: io.EOF at the end of the file, with stopped set when
// the file ends inside a block.
func (f *ngFramer) end(err error) {
	var d *damageError
	if errors.As(err, &d) {
		f.stopped = d
		err = io.EOF
	}
	f.err = err
}

// pass hands the n-byte sound block at the window's start to the reader.
func (f *ngFramer) pass(n int) {
	b, _ := f.w.need(n) // block has read it
	switch f.u32(b) {
	case ngSectionHeader:
		f.ifaces, f.damaged = 0, false
	case ngInterface:
		lt := int(f.u16(b[8:]))
		if f.ifaces == 0 {
			f.link = lt
		} else if lt != f.link {
			f.link = -1
		}
		f.ifaces++
	case ngEnhancedPacket:
		if f.renumber(f.u32(b[8:])) {
			f.put32(b[8:], 0)
		}
	case ngObsoletePacket:
		if f.renumber(uint32(f.u16(b[8:]))) {
			f.put16(b[8:], 0)
		}
	}
	f.out = b
	f.w.consume(n)
}

// renumber reports whether a packet on interface id is to be passed on as
// interface 0 (see ngFramer).
func (f *ngFramer) renumber(id uint32) bool {
	return f.damaged && f.link >= 0 && f.ifaces > 0 && int(id) >= f.ifaces
}

// lostInterface says why a packet block on interface id cannot be passed
// on, or "" when it can.
func (f *ngFramer) lostInterface(id uint32) string {
	switch {
	case f.ifaces == 0:
		return "packet before any interface block"
	case int(id) < f.ifaces || f.renumber(id):
		return ""
	case f.damaged:
		return "packet on an interface the section has not described (its interface block was lost to damage)"
	}
	return fmt.Sprintf("packet on interface %d, which the section has not described", id)
}

func (f *ngFramer) u16(b []byte) uint16 {
	if f.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (f *ngFramer) put16(b []byte, v uint16) {
	if f.big {
		binary.BigEndian.PutUint16(b, v)
	} else {
		binary.LittleEndian.PutUint16(b, v)
	}
}

func (f *ngFramer) put32(b []byte, v uint32) {
	if f.big {
		binary.BigEndian.PutUint32(b, v)
	} else {
		binary.LittleEndian.PutUint32(b, v)
	}
}

func (f *ngFramer) u32(b []byte) uint32 {
	if f.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// block checks the block at the window's start and returns its length, or
// why its framing is not sound (n 0), or why a soundly framed block cannot be
// used (n its length). A section header sets the byte order (for
// the rest of the file when the block is passed on, since a damaged one is
// not). err is io.EOF at the end of the file and a *damageError for a
// block cut off by it.
func (f *ngFramer) block(first bool, maxLen int) (n int, why string, err error) {
	at, prev := f.w.pos, f.big
	defer func() {
		if why != "" || err != nil {
			f.big = prev // only a sound section header sets the byte order
		}
	}()
	h, err := f.w.need(12)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = &damageError{Offset: at, Length: int64(f.w.buffered()), Reason: fmt.Sprintf(
				"the file ends inside the block header at byte %d", at), Cut: true}
		}
		return 0, "", err
	}
	if binary.LittleEndian.Uint32(h) == ngSectionHeader {
		switch {
		case binary.BigEndian.Uint32(h[8:]) == ngByteOrderMagic:
			f.big = true
		case binary.LittleEndian.Uint32(h[8:]) == ngByteOrderMagic:
			f.big = false
		default:
			return 0, "section header with an unknown byte order", nil
		}
	} else if first {
		return 0, "no section header", nil
	}
	typ, length := f.u32(h), f.u32(h[4:])
	switch {
	case length < 12 || length%4 != 0:
		return 0, fmt.Sprintf("block length %d", length), nil
	case length > uint32(maxLen):
		return 0, fmt.Sprintf("block length %d over the %d taken", length, maxLen), nil
	}
	b, err := f.w.need(int(length))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = &damageError{Offset: at, Length: int64(f.w.buffered()), Reason: fmt.Sprintf(
				"the file ends inside the block at byte %d (%d of its %d bytes missing)", at, int(length)-f.w.buffered(), length), Cut: true}
		}
		return 0, "", err
	}
	if end := f.u32(b[length-4:]); end != length {
		return 0, fmt.Sprintf("block length %d at its start, %d at its end", length, end), nil
	}
	body := b[8 : length-4]
	switch typ {
	case ngSectionHeader:
		if len(body) < 16 {
			return 0, "section header too short", nil
		}
	case ngInterface:
		if len(body) < 8 {
			return 0, "interface block too short", nil
		}
	case ngEnhancedPacket, ngObsoletePacket:
		if len(body) < 20 {
			return 0, "packet block too short", nil
		}
		id := f.u32(body)
		if typ == ngObsoletePacket {
			id = uint32(f.u16(body)) // a 16-bit id, then a drop count
		}
		if why := f.lostInterface(id); why != "" {
			return int(length), why, nil
		}
		if caplen := f.u32(body[12:]); caplen > uint32(len(body)-20) {
			return 0, fmt.Sprintf("captured length %d over the block's %d", caplen, len(body)-20), nil
		}
	case ngSimplePacket:
		if len(body) < 4 {
			return 0, "simple packet block too short", nil
		}
		if why := f.lostInterface(0); why != "" {
			return int(length), why, nil
		}
	case ngInterfaceStats:
		if len(body) < 12 {
			return 0, "statistics block too short", nil
		}
		if id := int(f.u32(body)); id >= f.ifaces {
			return int(length), fmt.Sprintf("statistics for interface %d, which the section has not described", id), nil
		}
	case ngNameResolution, ngSystemdJournal, ngDecryption, ngCustom, ngCustomNoCopy:
	default:
		if maxLen == ngMaxResyncBlock {
			return 0, fmt.Sprintf("unknown block type %#x", typ), nil
		}
	}
	return int(length), "", nil
}

// resync passes over the unsound block at the window's start and every
// byte after it up to the next sound block of a known type, and records
// the region skipped. When none follows, the stream ends with cut if it is
// set (the block was cut off by the end of the file), else with the
// damage to the end.
func (f *ngFramer) resync(why string, cut *damageError) {
	at := f.w.pos
	f.w.consume(1)
	for {
		if h, err := f.w.need(8); err == nil && !f.maybeBlock(h) {
			f.w.consume(1)
			continue
		}
		n, _, err := f.block(false, ngMaxResyncBlock)
		var last *damageError
		switch {
		case errors.As(err, &last) && !last.Cut:
			// The compressed stream failed: nothing more can be read.
			f.damage.add(at, f.w.pos-at, fmt.Sprintf("damaged block (%s)", why))
			f.end(last)
			return
		case errors.As(err, &last) && f.w.buffered() >= 12:
			// A candidate whose length runs past the end of the file:
			// not a block.
		case errors.As(err, &last) || errors.Is(err, io.EOF):
			if cut != nil {
				f.end(cut)
				return
			}
			skipped := f.w.pos - at + int64(f.w.buffered())
			f.end(&damageError{Offset: at, Length: skipped, Reason: fmt.Sprintf(
				"damaged block at byte %d (%s); no intact block after it, %d bytes skipped to the end", at, why, skipped)})
			return
		case err != nil:
			f.end(err)
			return
		}
		if n > 0 {
			// A sound frame: resume here (advance passes the block on,
			// or skips it if it cannot be used).
			f.damage.add(at, f.w.pos-at, fmt.Sprintf("damaged block (%s), resumed at byte %d", why, f.w.pos))
			f.noteDamage()
			return
		}
		f.w.consume(1)
	}
}

// maybeBlock is the scan's cheap first test of a place to resume: a known
// block type and a plausible length (block tests the rest).
func (f *ngFramer) maybeBlock(h []byte) bool {
	if binary.LittleEndian.Uint32(h) == ngSectionHeader {
		return true // its byte order is in the block
	}
	switch f.u32(h) {
	case ngInterface, ngObsoletePacket, ngSimplePacket, ngNameResolution, ngInterfaceStats, ngEnhancedPacket,
		ngSystemdJournal, ngDecryption, ngCustom, ngCustomNoCopy:
	default:
		return false
	}
	n := f.u32(h[4:])
	return n >= 12 && n%4 == 0 && n <= ngMaxResyncBlock
}

func (f *ngFramer) skipped() *damageLog { return &f.damage }
