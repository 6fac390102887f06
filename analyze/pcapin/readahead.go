package pcapin

import "io"

// readAhead reads its source in a goroutine of its own, a few blocks ahead
// of the consumer, so that file reads and decompression overlap with packet
// decoding and the replay. Only bytes move between the goroutines: what the
// consumer sees is the source's byte stream, whatever the timing.
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

const (
	readAheadBlock  = 256 << 10
	readAheadBlocks = 3
)

func newReadAhead(src io.Reader) *readAhead {
	r := &readAhead{
		full: make(chan block, readAheadBlocks),
		free: make(chan []byte, readAheadBlocks),
		done: make(chan struct{}),
		exit: make(chan struct{}),
	}
	for range readAheadBlocks {
		r.free <- make([]byte, readAheadBlock)
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
		n, err := io.ReadFull(src, buf[:cap(buf)])
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		select {
		case r.full <- block{buf: buf[:n], err: err}:
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
		r.cur, r.off = <-r.full, 0
		if r.cur.err != nil {
			r.err = r.cur.err
		}
	}
	n := copy(p, r.cur.buf[r.off:])
	r.off += n
	return n, nil
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
