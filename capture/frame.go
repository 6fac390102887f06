package capture

import (
	"hash/crc32"
)

// Magic is the first eight bytes of every capture file. Like PNG's, it holds a
// high-bit byte, CR LF, ^Z and LF so that text-mode transfers that mangle the
// file are detected at once.
const Magic = "\x89RWD\r\n\x1a\n"

// preambleSize is magic (8) + version (2) + reserved (2) + header length (4).
const preambleSize = 16

// maxHeaderSize bounds the JSON header a reader accepts.
const maxHeaderSize = 1 << 20

// frameMagic starts every frame (chunk) so a reader can find the next one
// after damage.
const frameMagic = "RWCK"

// frameHeaderSize is the fixed size of a frame header; see FORMAT.md.
const frameHeaderSize = 32

// MaxChunkSize bounds a chunk's stored and decoded size. Readers treat larger
// lengths as damage, which keeps their memory bounded.
const MaxChunkSize = 32 << 20

// Frame types.
const (
	frameSnapshot byte = 'S'
	frameEvents   byte = 'E'
	frameTrailer  byte = 'T'
)

// Codecs of a frame's payload.
const (
	codecNone byte = 0
	codecZstd byte = 1
	codecS2   byte = 2 // S2 block format (format version 2)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameHeader is the decoded form of the 32-byte header in front of each
// chunk's payload.
type frameHeader struct {
	typ       byte
	codec     byte
	seq       uint32
	storedLen uint32
	rawLen    uint32
	events    uint32
	crc       uint32 // CRC-32C of the stored payload
}

func (h *frameHeader) put(b []byte) {
	copy(b[0:4], frameMagic)
	b[4] = h.typ
	b[5] = h.codec
	b[6], b[7] = 0, 0
	le.PutUint32(b[8:], h.seq)
	le.PutUint32(b[12:], h.storedLen)
	le.PutUint32(b[16:], h.rawLen)
	le.PutUint32(b[20:], h.events)
	le.PutUint32(b[24:], h.crc)
	le.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
}

// parseFrameHeader decodes b (frameHeaderSize bytes) and reports whether it is
// an intact frame header.
func parseFrameHeader(b []byte) (frameHeader, bool) {
	if string(b[0:4]) != frameMagic || crc32.Checksum(b[:28], castagnoli) != le.Uint32(b[28:]) {
		return frameHeader{}, false
	}
	h := frameHeader{
		typ:       b[4],
		codec:     b[5],
		seq:       le.Uint32(b[8:]),
		storedLen: le.Uint32(b[12:]),
		rawLen:    le.Uint32(b[16:]),
		events:    le.Uint32(b[20:]),
		crc:       le.Uint32(b[24:]),
	}
	if h.storedLen > MaxChunkSize || h.rawLen > MaxChunkSize {
		return frameHeader{}, false
	}
	return h, true
}
