package pcapin

import (
	"errors"
	"io"

	"github.com/rewind-tools/rewind/capture"
)

// window is a read buffer over a file that hands out its next bytes in
// place: need(n) returns a slice of the buffer, refilled a few hundred KiB at
// a time, so a record costs no read call and no copy of its own. It tracks
// the file offset of its first unconsumed byte, for damage reports.
//
// Over a readAhead the buffer is readAhead's current block itself: the
// bytes not consumed yet when the next block is needed (the start of a
// record the block boundary cut) are copied in front of the next block's
// bytes, into the room it leaves there, and nothing else is copied. Only
// when more is left than that room holds are the bytes joined in a buffer
// of the window's own.
type window struct {
	r        io.Reader
	blocks   *readAhead // r, when it is one: its blocks are used in place
	blk      bool       // buf is a block of blocks, to give back
	own      []byte     // the window's own buffer, when it has one
	buf      []byte
	off, end int // buf[off:end] is read but not consumed
	eof      bool
	err      error // the reader's error other than io.EOF, once it has failed
	pos      int64 // file offset of buf[off]
}

const windowSize = 512 << 10

func newWindow(r io.Reader) window {
	if ra, ok := r.(*readAhead); ok {
		return window{r: r, blocks: ra}
	}
	return window{r: r, buf: make([]byte, windowSize)}
}

// need returns the next n unconsumed bytes, reading more as needed; they are
// valid until the next call. At the end of the input it returns io.EOF when
// no byte is left, and io.ErrUnexpectedEOF when fewer than n are (then
// buffered says how many). A compressed stream that fails before n bytes
// (see [capture.StreamError]) is a *damageError that ends the reading.
func (w *window) need(n int) ([]byte, error) {
	if w.end-w.off >= n {
		return w.buf[w.off : w.off+n], nil
	}
	if w.err != nil {
		return nil, w.failure()
	}
	if w.eof {
		// Nothing more to read: do not move what is held (a scan for a
		// resync point asks for more than is left at every step).
		if w.end == w.off {
			return nil, io.EOF
		}
		return nil, io.ErrUnexpectedEOF
	}
	if w.blocks != nil {
		return w.needBlocks(n)
	}
	if w.off > 0 {
		w.end = copy(w.buf, w.buf[w.off:w.end])
		w.off = 0
	}
	if n > len(w.buf) {
		w.buf = append(w.buf[:w.end], make([]byte, n-w.end)...)
		w.buf = w.buf[:cap(w.buf)]
	}
	for w.end < n && !w.eof {
		m, err := w.r.Read(w.buf[w.end:])
		w.end += m
		if err != nil {
			if !errors.Is(err, io.EOF) {
				w.err = err
				break
			}
			w.eof = true
		}
	}
	if w.end < n {
		if w.err != nil {
			return nil, w.failure()
		}
		if w.end == 0 {
			return nil, io.EOF
		}
		return nil, io.ErrUnexpectedEOF
	}
	return w.buf[:n], nil
}

// needBlocks is need over a readAhead, once buf holds fewer than n bytes:
// it takes blocks until n bytes are held or the source ends.
func (w *window) needBlocks(n int) ([]byte, error) {
	for w.end-w.off < n && !w.eof && w.err == nil {
		buf, room, err := w.blocks.nextBlock()
		left := w.buf[w.off:w.end]
		switch {
		case buf == nil:
		case len(left) <= room:
			copy(buf[room-len(left):room], left)
			w.giveBack()
			w.buf, w.blk = buf, true
			w.off, w.end = room-len(left), len(buf)
		default:
			// More left than the room (a long record): join it and the
			// block's bytes in the window's own buffer.
			own := w.own[:0]
			if !w.blk {
				own = w.buf[:0] // left is in it: append moves it down
			}
			own = append(own, left...)
			own = append(own, buf[room:]...)
			w.blocks.release(buf)
			w.giveBack()
			w.buf, w.own = own, own
			w.off, w.end = 0, len(own)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				w.eof = true
			} else {
				w.err = err
			}
		}
	}
	if w.end-w.off < n {
		if w.err != nil {
			return nil, w.failure()
		}
		if w.end == w.off {
			return nil, io.EOF
		}
		return nil, io.ErrUnexpectedEOF
	}
	return w.buf[w.off : w.off+n], nil
}

// giveBack returns buf to the readAhead when it is one of its blocks.
func (w *window) giveBack() {
	if w.blk {
		w.blocks.release(w.buf)
		w.buf, w.blk = nil, false
	}
}

// failure is the reader's error: for a compressed stream cut short or
// failing its check, damage from the window's first byte on (the bytes held
// are lost with what the stream did not give).
func (w *window) failure() error {
	var se *capture.StreamError
	if !errors.As(w.err, &se) {
		return w.err
	}
	return &damageError{Offset: w.pos, Length: int64(w.buffered()), Reason: se.Error()}
}

// buffered returns how many unconsumed bytes are held.
func (w *window) buffered() int { return w.end - w.off }

// consume passes over the next n bytes, which need has returned.
func (w *window) consume(n int) {
	w.off += n
	w.pos += int64(n)
}
