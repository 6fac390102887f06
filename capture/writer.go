package capture

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// DefaultChunkSize is the uncompressed size at which a [Writer] closes a chunk.
// Larger chunks compress better; smaller ones lose less when a file is damaged.
const DefaultChunkSize = 1 << 20

// WriterOptions tune a [Writer]. The zero value is ready to use.
type WriterOptions struct {
	// ChunkSize is the uncompressed size at which a chunk is closed
	// (default DefaultChunkSize, at most MaxChunkSize/2).
	ChunkSize int
	// Codec compresses the chunks (default CodecZstd).
	Codec Codec
	// Level is the zstd level (default zstd.SpeedFastest); CodecS2 has none.
	Level zstd.EncoderLevel
}

// Codec is how a [Writer] compresses its chunks.
type Codec int

const (
	// CodecZstd (zstd at SpeedFastest) gives the smaller files, readable by
	// every rewind (format version 1).
	CodecZstd Codec = iota
	// CodecS2 (the S2 block format) costs about a third of zstd's CPU per
	// byte for files about twice as large; a recorder on a busy host
	// spends most of its user-space time compressing, so this is what
	// `rewind record` uses unless told otherwise. Format version 2.
	CodecS2
)

// ParseCodec reads a codec's name as the CLI takes it: "s2" or "zstd".
func ParseCodec(name string) (Codec, error) {
	switch name {
	case "zstd":
		return CodecZstd, nil
	case "s2":
		return CodecS2, nil
	}
	return 0, fmt.Errorf("unknown compression %q: use s2 (less CPU) or zstd (smaller files)", name)
}

// String returns the codec's name, as [ParseCodec] reads it.
func (c Codec) String() string {
	if c == CodecS2 {
		return "s2"
	}
	return "zstd"
}

// ErrWriterClosed is returned by writes after [Writer.Close].
var ErrWriterClosed = errors.New("capture writer is closed")

// Writer writes a capture file: the header, snapshot chunks, event chunks and
// a trailer. Each chunk is compressed on its own and written with a single
// Write call, so a file cut at any point keeps every chunk before the cut.
//
// A Writer is not safe for concurrent use. Call [Writer.Flush] to push the
// current chunk out (the recorder does so at least once a second) and
// [Writer.Close] to write the trailer; Close does not close the underlying
// io.Writer, which the caller closes afterwards.
type Writer struct {
	w         io.Writer
	enc       *zstd.Encoder // nil with CodecS2
	codec     Codec
	header    Header
	chunkSize int

	raw      []byte // records of the open chunk
	stored   []byte // scratch for frame header + compressed payload
	nEvents  uint32
	section  byte // frameSnapshot until the first Write, then frameEvents
	seq      uint32
	byKind   [256]uint64
	events   uint64
	lost     uint64
	lostBy   map[string]uint64
	maxTime  uint64
	size     int64
	stop     string
	err      error
	closed   bool
	rawBytes int64
}

// NewWriter writes the file preamble and header to w and returns a Writer for
// the rest. h.FormatVersion is set to [FormatVersion].
func NewWriter(w io.Writer, h Header, opts WriterOptions) (*Writer, error) {
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.ChunkSize > MaxChunkSize/2 {
		opts.ChunkSize = MaxChunkSize / 2
	}
	if opts.Level == 0 {
		opts.Level = zstd.SpeedFastest
	}
	var enc *zstd.Encoder
	h.FormatVersion = 2
	switch opts.Codec {
	case CodecZstd:
		var err error
		enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(opts.Level), zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true))
		if err != nil {
			return nil, fmt.Errorf("creating zstd encoder: %w", err)
		}
		h.FormatVersion = 1
	case CodecS2:
	default:
		return nil, fmt.Errorf("capture writer: unknown codec %d", opts.Codec)
	}
	js, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encoding capture header: %w", err)
	}
	pre := make([]byte, 0, preambleSize+len(js)+4)
	pre = append(pre, Magic...)
	pre = le.AppendUint16(pre, FormatVersion)
	pre = le.AppendUint16(pre, 0)
	pre = le.AppendUint32(pre, uint32(len(js)))
	pre = append(pre, js...)
	pre = le.AppendUint32(pre, crc32.Checksum(pre[len(Magic):], castagnoli))
	if _, err := w.Write(pre); err != nil {
		return nil, fmt.Errorf("writing capture header: %w", err)
	}
	return &Writer{
		w:         w,
		enc:       enc,
		codec:     opts.Codec,
		header:    h,
		chunkSize: opts.ChunkSize,
		raw:       make([]byte, 0, opts.ChunkSize+64<<10),
		section:   frameSnapshot,
		lostBy:    map[string]uint64{},
		size:      int64(len(pre)),
	}, nil
}

// Header returns the header as written.
func (w *Writer) Header() Header { return w.header }

// WriteSnapshot adds a snapshot entry ([*Process] or [*Socket]). Snapshot
// entries must come before the first [Writer.Write].
func (w *Writer) WriteSnapshot(ev Event) error {
	if w.section != frameSnapshot {
		return errors.New("capture writer: snapshot entries must be written before events")
	}
	return w.add(ev)
}

// Write adds an event. The first Write ends the snapshot section.
func (w *Writer) Write(ev Event) error {
	if w.section == frameSnapshot {
		if err := w.flush(); err != nil {
			return err
		}
		w.section = frameEvents
	}
	return w.add(ev)
}

func (w *Writer) add(ev Event) error {
	if w.closed {
		return ErrWriterClosed
	}
	if w.err != nil {
		return w.err
	}
	w.raw = appendEvent(w.raw, ev)
	w.nEvents++
	w.events++
	w.byKind[ev.Kind()]++
	if t := ev.Time(); t > w.maxTime {
		w.maxTime = t
	}
	if l, ok := ev.(*Loss); ok {
		w.lost += l.Count
		w.lostBy[l.Source.String()] += l.Count
	}
	if len(w.raw) >= w.chunkSize {
		return w.flush()
	}
	return nil
}

// Flush writes the open chunk, if any, to the underlying writer.
func (w *Writer) Flush() error {
	if w.closed {
		return ErrWriterClosed
	}
	return w.flush()
}

func (w *Writer) flush() error {
	if w.err != nil {
		return w.err
	}
	if w.nEvents == 0 {
		return nil
	}
	if err := w.writeFrame(w.section, w.raw, w.nEvents); err != nil {
		return err
	}
	w.rawBytes += int64(len(w.raw))
	w.raw = w.raw[:0]
	w.nEvents = 0
	return nil
}

func (w *Writer) writeFrame(typ byte, payload []byte, events uint32) error {
	var out []byte
	codec := codecZstd
	if w.enc != nil {
		out = w.enc.EncodeAll(payload, append(w.stored[:0], make([]byte, frameHeaderSize)...))
	} else {
		codec = codecS2
		if n := frameHeaderSize + s2.MaxEncodedLen(len(payload)); cap(w.stored) < n {
			w.stored = make([]byte, n)
		}
		out = w.stored[:frameHeaderSize]
		out = out[:frameHeaderSize+len(s2.Encode(w.stored[frameHeaderSize:cap(w.stored)], payload))]
	}
	if len(out)-frameHeaderSize >= len(payload) {
		// Incompressible: store as is, and save the reader a decode.
		out = append(out[:frameHeaderSize], payload...)
		codec = codecNone
	}
	fh := frameHeader{
		typ:       typ,
		codec:     codec,
		seq:       w.seq,
		storedLen: uint32(len(out) - frameHeaderSize),
		rawLen:    uint32(len(payload)),
		events:    events,
		crc:       crc32.Checksum(out[frameHeaderSize:], castagnoli),
	}
	fh.put(out)
	w.stored = out
	n, err := w.w.Write(out)
	w.size += int64(n)
	if err != nil {
		w.err = fmt.Errorf("writing capture chunk %d: %w", w.seq, err)
		return w.err
	}
	w.seq++
	return nil
}

// Size returns the bytes written to the underlying writer so far; the open
// chunk is not counted until it is flushed.
func (w *Writer) Size() int64 { return w.size }

// Pending returns the uncompressed bytes of the open chunk.
func (w *Writer) Pending() int { return len(w.raw) }

// Events returns the number of events written so far, snapshot included.
func (w *Writer) Events() uint64 { return w.events }

// Lost returns the total count of Loss events written so far.
func (w *Writer) Lost() uint64 { return w.lost }

// SetStopReason records why recording ended, for the trailer.
func (w *Writer) SetStopReason(reason string) { w.stop = reason }

// Close flushes the open chunk and writes the trailer. It does not close the
// underlying writer: close that after Close returns.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	if err := w.flush(); err != nil {
		w.closed = true
		return err
	}
	w.closed = true
	t := Trailer{
		EndMonoNS:    w.maxTime,
		Events:       w.events,
		EventsByKind: map[string]uint64{},
		Chunks:       uint64(w.seq),
		Lost:         w.lost,
		LostByKind:   w.lostBy,
		StopReason:   w.stop,
	}
	if w.maxTime != 0 {
		t.EndWallNS = w.header.Clock.Wall(w.maxTime).UnixNano()
	}
	if t.StopReason == "" {
		t.StopReason = "closed"
	}
	for k, n := range w.byKind {
		if n > 0 {
			t.EventsByKind[Kind(k).String()] = n
		}
	}
	js, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encoding capture trailer: %w", err)
	}
	return w.writeFrame(frameTrailer, js, 0)
}
