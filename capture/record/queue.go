//go:build linux

package record

import "github.com/rewind-tools/rewind/capture"

// The reorder window holds the kernel's records for ReorderWindow before
// they are written in timestamp order. It costs no allocation per event:
// each record's bytes are read from the ring straight into an arena of
// reused chunks, and decoded into reused event values only when written.

// pendingEvent is a record waiting in the reorder window: its bytes (raw,
// in chunk c), or for the few events built when read (process starts, whose
// /proc details cannot wait), the event itself.
type pendingEvent struct {
	t   uint64 // timestamp, read once
	seq uint64 // arrival order, for ties
	raw []byte
	c   *chunk
	ev  capture.Event
}

// before orders events by timestamp, then by arrival (so the fragments of
// one call, which share a timestamp, keep their order).
func (a *pendingEvent) before(b *pendingEvent) bool {
	if a.t != b.t {
		return a.t < b.t
	}
	return a.seq < b.seq
}

// eventQueue orders pending events by [pendingEvent.before]. The ring buffer
// delivers records nearly in timestamp order (they are stamped on several
// CPUs just before they are reserved), so the queue keeps a FIFO of the
// events that arrive in order, and a heap only for the stragglers that
// arrive after a later one: the usual push and pop are O(1).
type eventQueue struct {
	fifo []pendingEvent // non-decreasing; fifo[head:] are queued
	head int
	late eventHeap
}

func (q *eventQueue) len() int { return len(q.fifo) - q.head + len(q.late) }

func (q *eventQueue) push(p pendingEvent) {
	if n := len(q.fifo); n == q.head || !p.before(&q.fifo[n-1]) {
		if q.head > 0 && q.head == n {
			q.fifo, q.head = q.fifo[:0], 0
		} else if q.head > 4096 && q.head > len(q.fifo)/2 {
			// Move the queued part to the front rather than growing.
			k := copy(q.fifo, q.fifo[q.head:])
			clear(q.fifo[k:])
			q.fifo, q.head = q.fifo[:k], 0
		}
		q.fifo = append(q.fifo, p)
		return
	}
	q.late.push(p)
}

// peek returns the earliest queued event; the queue must not be empty.
func (q *eventQueue) peek() *pendingEvent {
	if q.head == len(q.fifo) {
		return &q.late[0]
	}
	f := &q.fifo[q.head]
	if len(q.late) > 0 && q.late[0].before(f) {
		return &q.late[0]
	}
	return f
}

// pop removes and returns the earliest queued event; the queue must not be
// empty.
func (q *eventQueue) pop() pendingEvent {
	if q.head < len(q.fifo) && (len(q.late) == 0 || !q.late[0].before(&q.fifo[q.head])) {
		p := q.fifo[q.head]
		q.fifo[q.head] = pendingEvent{}
		q.head++
		return p
	}
	return q.late.pop()
}

// eventHeap is a binary min-heap of pending events. It is typed rather than
// a container/heap.Interface: that one boxed every event into an interface
// on Push and Pop (an allocation each) and called Less through the
// interface, which the recorder's profile showed at tens of thousands of
// events per second.
type eventHeap []pendingEvent

func (h *eventHeap) push(p pendingEvent) {
	*h = append(*h, p)
	q := *h
	i := len(q) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !q[i].before(&q[parent]) {
			break
		}
		q[i], q[parent] = q[parent], q[i]
		i = parent
	}
}

// pop removes and returns the earliest event; the heap must not be empty.
func (h *eventHeap) pop() pendingEvent {
	q := *h
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q[n] = pendingEvent{}
	q = q[:n]
	*h = q
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q[r].before(&q[l]) {
			m = r
		}
		if !q[m].before(&q[i]) {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	return top
}

// chunkSize is the size of the arena's chunks; a record larger than that
// (a snaplen above 1 MiB) gets a chunk of its own.
const chunkSize = 1 << 20

// maxSpareChunks bounds the chunks kept for reuse (and so the memory a past
// burst holds on to).
const maxSpareChunks = 16

// chunk is a block of the arena: records are appended to it, and it is
// reused once every record in it has been written.
type chunk struct {
	buf  []byte
	live int // records in it not yet written
}

// arena hands out copies of records from chunks that are reused, so the
// reorder window allocates only when it grows.
type arena struct {
	cur   *chunk
	spare []*chunk
}

// copy returns a copy of b in the arena and the chunk holding it; call
// release with that chunk once the copy is no longer used.
func (a *arena) copy(b []byte) ([]byte, *chunk) {
	c := a.cur
	if c == nil || cap(c.buf)-len(c.buf) < len(b) {
		c = a.fresh(len(b))
	}
	n := len(c.buf)
	c.buf = append(c.buf, b...)
	c.live++
	return c.buf[n:len(c.buf):len(c.buf)], c
}

// room returns the free space of the current chunk, at least n bytes (a
// fresh chunk when the current one has less), for a record to be read into
// and then kept with [arena.keep].
func (a *arena) room(n int) []byte {
	c := a.cur
	if c == nil || cap(c.buf)-len(c.buf) < n {
		c = a.fresh(n)
	}
	return c.buf[len(c.buf):cap(c.buf)]
}

// keep takes b, a record just read into the start of [arena.room]'s
// space, into the arena, as copy would a copy of it; a b held elsewhere (the
// reader's own buffer, when it did not fit) is copied.
func (a *arena) keep(b []byte) ([]byte, *chunk) {
	c := a.cur
	if len(b) == 0 || c == nil || len(c.buf) == cap(c.buf) || &b[0] != &c.buf[:len(c.buf)+1][len(c.buf)] {
		return a.copy(b)
	}
	n := len(c.buf)
	c.buf = c.buf[:n+len(b)]
	c.live++
	return c.buf[n:len(c.buf):len(c.buf)], c
}

// fresh makes a chunk with room for n bytes the current one: the current
// chunk again if nothing in it is still queued, else a spare or a new one.
func (a *arena) fresh(n int) *chunk {
	if c := a.cur; c != nil && c.live == 0 && cap(c.buf) >= n {
		c.buf = c.buf[:0]
		return c
	}
	var c *chunk
	if k := len(a.spare); k > 0 && n <= chunkSize {
		c, a.spare = a.spare[k-1], a.spare[:k-1]
	} else {
		c = &chunk{buf: make([]byte, 0, max(n, chunkSize))}
	}
	a.cur = c
	return c
}

// release says one record of c was written; a chunk of which every record
// was written is kept for reuse.
func (a *arena) release(c *chunk) {
	c.live--
	if c.live == 0 && c != a.cur && cap(c.buf) == chunkSize && len(a.spare) < maxSpareChunks {
		c.buf = c.buf[:0]
		a.spare = append(a.spare, c)
	}
}
