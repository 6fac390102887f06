package capture

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// ErrNotCapture means the input does not start with the capture magic.
var ErrNotCapture = errors.New("not a rewind capture (no capture magic at the start)")

// NewerVersionError is returned by [NewReader] for a file written in a format
// version newer than this package reads.
type NewerVersionError struct {
	Version int
}

func (e *NewerVersionError) Error() string {
	return fmt.Sprintf("capture format version %d is newer than this rewind reads (up to %d): upgrade rewind to read it",
		e.Version, FormatVersion)
}

// Damage describes a region of a capture that could not be read.
type Damage struct {
	Offset int64  // byte offset where the damage starts
	Length int64  // bytes skipped
	Chunks int    // chunks lost in this region (by sequence number)
	Reason string // what was wrong
	// Cut says the region is the end of the file cutting a chunk short,
	// nothing else: a recording still being written (or copied before it
	// closed) ends so, without being damaged.
	Cut bool `json:"-"`
}

// Stats says what a [Reader] has recovered and skipped so far. After Next
// returns io.EOF, it describes the whole file.
type Stats struct {
	// ChunksRecovered counts intact chunks read, the trailer included.
	ChunksRecovered int
	// ChunksSkipped counts chunks that were damaged or missing: chunks whose
	// payload failed its checksum or could not be decoded, gaps in the chunk
	// sequence, and a chunk cut off at the end of the file.
	ChunksSkipped int
	// BytesSkipped counts file bytes that belonged to no intact chunk.
	BytesSkipped int64
	// Truncated is set when the file ends inside a chunk.
	Truncated bool
	// CleanClose is set once an intact trailer has been read: the recording
	// ended normally and nothing before it is missing.
	CleanClose bool
	// Events counts events returned, by kind.
	Events       uint64
	EventsByKind [256]uint64
	// UnknownKinds counts records of kinds this version does not know (from
	// a newer recorder); they are skipped.
	UnknownKinds uint64
	// BadRecords counts records inside intact chunks that could not be
	// decoded; the rest of such a chunk is skipped.
	BadRecords uint64
	// Lost is the sum of the Loss events read.
	Lost uint64
	// Damage lists the damaged regions in file order. A packet capture's
	// list is bounded (see DamageRegions).
	Damage []Damage
	// DamageRegions counts the damaged regions of a packet capture, listed
	// in Damage or not; 0 for a rewind capture, which lists them all.
	DamageRegions int
	// StreamError says why the compressed stream around a rewind capture
	// (gzip, zstd) could not be read to its end, when it could not: cut
	// short or failing its check (see [StreamError]). Reading stopped
	// there; the damage is also in Damage.
	StreamError string
}

// Salvaged reports whether anything was lost or the file was not closed
// cleanly.
func (s *Stats) Salvaged() bool {
	return !s.CleanClose || s.ChunksSkipped > 0 || s.BytesSkipped > 0 || s.BadRecords > 0 || s.StreamError != ""
}

// Reader reads a capture file event by event, with memory bounded by the
// chunk size. It never fails on damage after the header: it skips damaged
// chunks, finds the next intact one, and records what it skipped in [Stats].
type Reader struct {
	br     *bufio.Reader
	header Header
	off    int64 // file offset of br's next byte
	dec    *zstd.Decoder
	d      decoder

	chunk     []byte // decoded records of the current chunk not yet returned
	raw       []byte // buffer for decoded chunks
	stored    []byte
	section   byte
	nextSeq   uint32
	haveSeq   bool
	trailer   *Trailer
	stats     Stats
	done      bool
	damageAt  int64 // start of the current damaged region, or -1
	damageWhy string
	damageCut bool // the open region began where the file cut a chunk short
	verifyEnd bool // read on after the trailer (see VerifyEnd)
}

// NewReader reads the preamble and header from r. It returns [ErrNotCapture]
// for other files, a [*NewerVersionError] for newer formats, and an error
// saying where the file ends when it is cut inside the header.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	pre := make([]byte, preambleSize)
	n, err := io.ReadFull(br, pre)
	if n < len(Magic) || string(pre[:len(Magic)]) != Magic {
		if n >= len(Magic) || (err != nil && !bytes.HasPrefix([]byte(Magic), pre[:n])) || n == 0 {
			return nil, ErrNotCapture
		}
		return nil, fmt.Errorf("capture is cut inside its header (%d bytes): nothing can be recovered", n)
	}
	if err != nil {
		return nil, fmt.Errorf("capture is cut inside its header (%d bytes): nothing can be recovered", n)
	}
	version := int(le.Uint16(pre[8:]))
	if version > FormatVersion {
		return nil, &NewerVersionError{Version: version}
	}
	if version == 0 {
		return nil, fmt.Errorf("capture header says format version 0, which does not exist: the file is damaged")
	}
	hlen := int(le.Uint32(pre[12:]))
	if hlen > maxHeaderSize {
		return nil, fmt.Errorf("capture header length %d is implausible: the file is damaged", hlen)
	}
	rest := make([]byte, hlen+4)
	if n, err := io.ReadFull(br, rest); err != nil {
		var se *StreamError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("capture is cut inside its header (%d bytes; %v): nothing can be recovered", preambleSize+n, se)
		}
		return nil, fmt.Errorf("capture is cut inside its header (%d bytes): nothing can be recovered", preambleSize+n)
	}
	sum := crc32.New(castagnoli)
	sum.Write(pre[len(Magic):])
	sum.Write(rest[:hlen])
	if sum.Sum32() != le.Uint32(rest[hlen:]) {
		return nil, errors.New("capture header fails its checksum: the file is damaged at its start")
	}
	rd := &Reader{br: br, off: int64(preambleSize + hlen + 4), damageAt: -1}
	if err := json.Unmarshal(rest[:hlen], &rd.header); err != nil {
		return nil, fmt.Errorf("decoding capture header: %w", err)
	}
	rd.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxChunkSize))
	if err != nil {
		return nil, fmt.Errorf("creating zstd decoder: %w", err)
	}
	return rd, nil
}

// Header returns the capture's header.
func (r *Reader) Header() Header { return r.header }

// Trailer returns the trailer, or nil when none has been read (yet, or at
// all for a file that was cut off).
func (r *Reader) Trailer() *Trailer { return r.trailer }

// Stats returns what has been recovered and skipped so far.
func (r *Reader) Stats() *Stats { return &r.stats }

// VerifyEnd makes the reader, once it has read the trailer, read the rest
// of its input, so that a compressed stream around the capture that is cut
// short or fails its check in its last bytes is reported
// ([Stats.StreamError]) rather than missed. Use it for a decompressed input
// that ends, not for a file still being written.
func (r *Reader) VerifyEnd() { r.verifyEnd = true }

// InSnapshot reports whether the last event returned came from the snapshot
// section.
func (r *Reader) InSnapshot() bool { return r.section == frameSnapshot }

// Close releases the decoder. It does not close the underlying reader.
func (r *Reader) Close() error {
	if r.dec != nil {
		r.dec.Close()
		r.dec = nil
	}
	return nil
}

// Next returns the next event, or io.EOF after the last one. The event and
// the byte slices in it are valid until the next call; use [Clone] to keep
// them. Damage is skipped and recorded in [Reader.Stats]; Next returns an
// error other than io.EOF only when reading the underlying file fails.
func (r *Reader) Next() (Event, error) {
	for {
		for len(r.chunk) > 0 {
			if len(r.chunk) < recordHeaderSize {
				r.badRecord()
				break
			}
			kind := Kind(r.chunk[0])
			blen := int(le.Uint32(r.chunk[4:]))
			if blen > len(r.chunk)-recordHeaderSize {
				r.badRecord()
				break
			}
			body := r.chunk[recordHeaderSize : recordHeaderSize+blen]
			r.chunk = r.chunk[recordHeaderSize+blen:]
			ev, err := r.d.decode(kind, body)
			if err != nil {
				r.badRecord()
				break
			}
			if ev == nil {
				r.stats.UnknownKinds++
				continue
			}
			r.stats.Events++
			r.stats.EventsByKind[kind]++
			if l, ok := ev.(*Loss); ok {
				r.stats.Lost += l.Count
			}
			return ev, nil
		}
		if r.done {
			return nil, io.EOF
		}
		if err := r.nextChunk(); err != nil {
			return nil, err
		}
	}
}

func (r *Reader) badRecord() {
	r.stats.BadRecords++
	r.chunk = nil
}

// beginDamage marks the start of an unreadable region at the current offset.
func (r *Reader) beginDamage(why string) { r.beginDamageAt(r.off, why, false) }

// beginDamageAt opens a damaged region at offset at, unless one is open
// already (then the damage began earlier); cut says the file ends inside a
// chunk there ([Damage.Cut]).
func (r *Reader) beginDamageAt(at int64, why string, cut bool) {
	if r.damageAt < 0 {
		r.damageAt, r.damageWhy, r.damageCut = at, why, cut
	}
}

// endDamage closes the current damaged region (if any) at the current offset.
func (r *Reader) endDamage(lostChunks int) {
	if r.damageAt < 0 {
		r.stats.ChunksSkipped += lostChunks
		if lostChunks > 0 {
			r.stats.Damage = append(r.stats.Damage, Damage{Offset: r.off, Chunks: lostChunks, Reason: "chunks missing from the sequence"})
		}
		return
	}
	length := r.off - r.damageAt
	r.stats.BytesSkipped += length
	r.stats.ChunksSkipped += lostChunks
	r.stats.Damage = append(r.stats.Damage, Damage{Offset: r.damageAt, Length: length, Chunks: lostChunks, Reason: r.damageWhy, Cut: r.damageCut})
	r.damageAt = -1
	r.damageCut = false
}

func (r *Reader) discard(n int) error {
	m, err := r.br.Discard(n)
	r.off += int64(m)
	return err
}

// nextChunk reads frames until it has a chunk of events or reaches the end.
func (r *Reader) nextChunk() error {
	for {
		hdr, err := r.br.Peek(frameHeaderSize)
		if len(hdr) == 0 && errors.Is(err, io.EOF) {
			r.finish(0)
			return nil
		}
		var se *StreamError
		if errors.As(err, &se) {
			// The compressed stream ends before the next chunk header is
			// whole: at least that chunk (the trailer, if no other) is lost.
			r.stats.StreamError = se.Error()
			r.beginDamage(se.Error())
			r.discard(len(hdr))
			r.finish(1)
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("reading capture at byte %d: %w", r.off, err)
		}
		if len(hdr) < frameHeaderSize {
			// The file ends inside a frame header.
			r.beginDamageAt(r.off, "file ends inside a chunk header", true)
			r.discard(len(hdr))
			r.finish(1)
			return nil
		}
		fh, ok := parseFrameHeader(hdr)
		if !ok {
			r.beginDamage("damaged chunk header")
			if err := r.resync(); err != nil {
				return err
			}
			continue
		}
		start := r.off
		r.discard(frameHeaderSize)
		r.stored = grow(r.stored, int(fh.storedLen))
		n, err := io.ReadFull(r.br, r.stored)
		r.off += int64(n)
		// Chunks lost between the previous intact chunk and this one.
		lost := 0
		if r.haveSeq && fh.seq > r.nextSeq {
			lost = int(fh.seq - r.nextSeq)
		} else if !r.haveSeq && fh.seq > 0 {
			lost = int(fh.seq)
		}
		if err != nil {
			if errors.As(err, &se) {
				r.stats.StreamError = se.Error()
				r.beginDamageAt(start, fmt.Sprintf("chunk %d is cut off: %v", fh.seq, se), false)
				r.finish(lost + 1)
				return nil
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				r.beginDamageAt(start, fmt.Sprintf("file ends inside chunk %d", fh.seq), true)
				r.finish(lost + 1)
				return nil
			}
			return fmt.Errorf("reading capture chunk at byte %d: %w", start, err)
		}
		if crc32.Checksum(r.stored, castagnoli) != fh.crc {
			// The header is intact, so the frame's extent is known: skip it.
			if r.damageAt < 0 {
				r.damageAt = start
				r.damageWhy = fmt.Sprintf("chunk %d fails its checksum", fh.seq)
			}
			r.endDamage(lost + 1)
			r.advanceSeq(fh.seq)
			continue
		}
		raw, err := r.decodePayload(fh)
		if err != nil {
			if r.damageAt < 0 {
				r.damageAt = start
				r.damageWhy = fmt.Sprintf("chunk %d cannot be decoded: %v", fh.seq, err)
			}
			r.endDamage(lost + 1)
			r.advanceSeq(fh.seq)
			continue
		}
		// The region before this frame, if damaged, ends here.
		saved := r.off
		r.off = start
		r.endDamage(lost)
		r.off = saved
		r.advanceSeq(fh.seq)
		r.stats.ChunksRecovered++
		switch fh.typ {
		case frameTrailer:
			var t Trailer
			if err := json.Unmarshal(raw, &t); err == nil {
				r.trailer = &t
				r.stats.CleanClose = true
			}
			// Anything after a trailer is not part of the recording.
			r.finish(0)
			if r.verifyEnd {
				r.checkEnd()
			}
			return nil
		case frameSnapshot, frameEvents:
			r.section = fh.typ
			r.chunk = raw
			return nil
		default:
			// A frame type from a newer writer: skip it whole.
			continue
		}
	}
}

func (r *Reader) advanceSeq(seq uint32) {
	if !r.haveSeq || seq >= r.nextSeq {
		r.nextSeq = seq + 1
		r.haveSeq = true
	}
}

func (r *Reader) decodePayload(fh frameHeader) ([]byte, error) {
	switch fh.codec {
	case codecNone:
		if len(r.stored) != int(fh.rawLen) {
			return nil, fmt.Errorf("stored length %d differs from decoded length %d", len(r.stored), fh.rawLen)
		}
		return r.stored, nil
	case codecZstd:
		out, err := r.dec.DecodeAll(r.stored, r.raw[:0])
		if err != nil {
			return nil, err
		}
		r.raw = out
		if len(out) != int(fh.rawLen) {
			return nil, fmt.Errorf("decoded %d bytes, header says %d", len(out), fh.rawLen)
		}
		return out, nil
	case codecS2:
		n, err := s2.DecodedLen(r.stored)
		if err != nil {
			return nil, err
		}
		if n != int(fh.rawLen) {
			return nil, fmt.Errorf("S2 block holds %d bytes, header says %d", n, fh.rawLen)
		}
		if cap(r.raw) < n {
			r.raw = make([]byte, n)
		}
		out, err := s2.Decode(r.raw[:n], r.stored)
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown codec %d", fh.codec)
}

// resync skips at least one byte and then up to the next frame magic.
func (r *Reader) resync() error {
	if err := r.discard(1); err != nil {
		return nil // EOF: the next Peek sees it
	}
	magic := []byte(frameMagic)
	for {
		buf, err := r.br.Peek(r.br.Size())
		if i := bytes.Index(buf, magic); i >= 0 {
			r.discard(i)
			return nil
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			// No more data beyond buf, so no magic either.
			r.discard(len(buf))
			var se *StreamError
			if errors.Is(err, io.EOF) || errors.As(err, &se) {
				return nil // the next Peek sees it
			}
			return fmt.Errorf("reading capture at byte %d: %w", r.off, err)
		}
		// Keep the last bytes in case the magic straddles the boundary.
		r.discard(len(buf) - (len(magic) - 1))
	}
}

// checkEnd reads what follows the trailer, for [Reader.VerifyEnd]: a
// compressed stream that then fails is damage at the trailer's end.
func (r *Reader) checkEnd() {
	_, err := io.Copy(io.Discard, r.br)
	var se *StreamError
	if errors.As(err, &se) {
		r.stats.StreamError = se.Error()
		r.stats.Damage = append(r.stats.Damage, Damage{Offset: r.off, Reason: se.Error()})
	}
}

// finish ends reading. lost counts chunks known to be lost at the end (a
// chunk cut off by the end of the file).
func (r *Reader) finish(lost int) {
	if r.done {
		return
	}
	r.done = true
	if lost > 0 {
		r.stats.Truncated = true
		r.beginDamageAt(r.off, "file ends inside a chunk", true)
	}
	if r.damageAt >= 0 && lost == 0 {
		// A damaged region running to the end of the file held at least
		// one chunk whose header was unreadable.
		lost = 1
	}
	if r.damageAt >= 0 || lost > 0 {
		r.endDamage(lost)
	}
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
