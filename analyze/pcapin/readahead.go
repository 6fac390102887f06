package pcapin

import "io"

// readAhead reads its source in a goroutine of its own, a few blocks ahead
// of the consumer, so that file reads and decompression overlap with packet
// decoding and the replay. Only bytes move between the goroutines: what the
// consumer sees is the source's byte stream, whatever the timing.
//
// A consumer reads it either as an io.Reader (Read), or block by block
// (nextBlock and release), using the blocks in place: a [window] does,
// saving a copy of every byte.
type readAhead struct {
	full chan block // filled blocks, in order
	free chan []byte
	done chan struct{}
	exit chan struct{} // closed when the goroutine has returned
	cur  block
	off  int
	err  error // the source's error, after its last block
}

type block struct {
	buf []byte
	err error
}

// Each of the readAheadBlocks buffers holds readAheadBlock bytes read, after
// readAheadRoom bytes left free for the consumer of nextBlock to put the
// bytes it has not used yet from the previous block (a record cut by the
// block boundary) in front of them: room for any loopback packet (64 KiB
// and headers) with some to spare. Only the part of the room used is ever
// touched.
const (
	readAheadBlock  = 256 << 10
	readAheadBlocks = 3
	readAheadRoom   = 128 << 10
)

func newReadAhead(src io.Reader) *readAhead {
	r := &readAhead{
		full: make(chan block, readAheadBlocks),
		free: make(chan []byte, readAheadBlocks),
		done: make(chan struct{}),
		exit: make(chan struct{}),
	}
	for range readAheadBlocks {
		r.free <- make([]byte, readAheadRoom+readAheadBlock)
	}
	go r.fill(src)
	return r
}

func (r *readAhead) fill(src io.Reader) {
	defer close(r.exit)
	for {
		var buf []byte
		select {
		case buf = <-r.free:
		case <-r.done:
			return
		}
		n, err := io.ReadFull(src, buf[readAheadRoom:cap(buf)])
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		select {
		case r.full <- block{buf: buf[:readAheadRoom+n], err: err}:
		case <-r.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read implements io.Reader.
func (r *readAhead) Read(p []byte) (int, error) {
	for r.off == len(r.cur.buf) {
		if r.err != nil {
			return 0, r.err
		}
		if r.cur.buf != nil {
			r.free <- r.cur.buf[:cap(r.cur.buf)]
		}
		r.cur, r.off = <-r.full, readAheadRoom
		if r.cur.err != nil {
			r.err = r.cur.err
		}
	}
	n := copy(p, r.cur.buf[r.off:])
	r.off += n
	return n, nil
}

// nextBlock hands over the next block read: its bytes are buf[room:], and
// buf[:room] is free for the caller to use. err is the source's error after
// those bytes (io.EOF at the end); once it has returned one, nextBlock
// returns it again with no block. The caller gives the block back with
// release before it asks for the one after the next. A readAhead is read
// with nextBlock or with Read, not both.
func (r *readAhead) nextBlock() (buf []byte, room int, err error) {
	if r.err != nil {
		return nil, 0, r.err
	}
	b := <-r.full
	r.err = b.err
	return b.buf, readAheadRoom, b.err
}

// release gives back a block that nextBlock returned.
func (r *readAhead) release(buf []byte) {
	r.free <- buf[:cap(buf)] // never blocks: free has room for every block
}

// Close stops the goroutine and waits until it no longer uses the source.
func (r *readAhead) Close() {
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	<-r.exit
}
