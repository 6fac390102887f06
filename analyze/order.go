package analyze

import (
	"github.com/rewind-tools/rewind/capture"
)

// DefaultReorderWindow is how far back in time (ns) an event may arrive late
// and still be put in its place. Events from different CPUs reach the ring
// buffer in reservation order, which can trail the timestamps taken at the
// probe by a few microseconds, more under preemption.
const DefaultReorderWindow = 20_000_000 // 20 ms

// maxReorderBytes bounds the payload bytes the reorder window holds: at
// gigabytes per second of captured payload, 20 ms of events would otherwise
// take memory in proportion to the traffic rate. Events pushed out by the cap
// are released early; one that then arrives out of order is counted as late.
const maxReorderBytes = 64 << 20

// reorderer puts events in timestamp order within a bounded window: an event
// is released once an event at least window ns later has been seen. Ties keep
// file order, so the result is deterministic. Held events are copies drawn
// from per-kind free lists, so steady state allocates nothing.
//
// Events almost always arrive in order (the recorder's CPUs drift apart by
// microseconds), so the held events are kept in a sorted queue rather than a
// heap: an in-order event is appended at the tail and released from the head,
// both O(1); only an event that arrives before the tail's time is inserted in
// its place (after the held events of the same time, which came first).
type reorderer struct {
	window  uint64
	q       []heldEvent // q[head:] are held, sorted by t, ties in file order
	head    int
	maxSeen uint64
	free    [16][]capture.Event
	late    uint64 // events that arrived after their window had passed
	lastOut uint64
	held    int // payload bytes held, for maxReorderBytes
}

// heldSize is what an event counts against maxReorderBytes.
func heldSize(ev capture.Event) int {
	switch e := ev.(type) {
	case *capture.Data:
		return 64 + len(e.Payload)
	case *capture.Packet:
		return 64 + len(e.Data)
	}
	return 64
}

type heldEvent struct {
	ev capture.Event
	t  uint64
}

func newReorderer(window uint64) *reorderer {
	return &reorderer{window: window}
}

// push adds a copy of ev and calls release for every event that is now due,
// in order. release must not keep the event: it is recycled afterwards.
func (r *reorderer) push(ev capture.Event, release func(capture.Event)) {
	t := ev.Time()
	if t < r.lastOut {
		// Too late to put in place: treat it as happening now, so time never
		// runs backwards for the stages after us. The summed lengths of
		// another protocol's calls that the recorder wrote at its end are
		// late by design, and nothing is timed with them.
		if d, ok := ev.(*capture.Data); !ok || d.Flags&capture.DataMerged == 0 {
			r.late++
		}
		t = r.lastOut
	}
	he := heldEvent{ev: r.copy(ev), t: t}
	if n := len(r.q); n == r.head || r.q[n-1].t <= t {
		r.q = append(r.q, he)
	} else {
		// Out of order: after every held event whose time is <= t.
		lo, hi := r.head, n
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if r.q[m].t <= t {
				lo = m + 1
			} else {
				hi = m
			}
		}
		r.q = append(r.q, heldEvent{})
		copy(r.q[lo+1:], r.q[lo:n])
		r.q[lo] = he
	}
	if t > r.maxSeen {
		r.maxSeen = t
	}
	r.held += heldSize(he.ev)
	for r.head < len(r.q) && (r.q[r.head].t+r.window <= r.maxSeen || r.held > maxReorderBytes) {
		r.pop(release)
	}
}

// flush releases every held event.
func (r *reorderer) flush(release func(capture.Event)) {
	for r.head < len(r.q) {
		r.pop(release)
	}
}

func (r *reorderer) pop(release func(capture.Event)) {
	he := r.q[r.head]
	r.q[r.head] = heldEvent{}
	r.head++
	switch {
	case r.head == len(r.q):
		r.q, r.head = r.q[:0], 0
	case r.head >= 1024 && r.head*2 >= len(r.q):
		n := copy(r.q, r.q[r.head:])
		clear(r.q[n:])
		r.q, r.head = r.q[:n], 0
	}
	r.lastOut = he.t
	r.held -= heldSize(he.ev)
	release(he.ev)
	k := he.ev.Kind()
	if int(k) < len(r.free) {
		r.free[k] = append(r.free[k], he.ev)
	}
}

// copy returns a copy of ev in a recycled value of the same kind.
func (r *reorderer) copy(ev capture.Event) capture.Event {
	k := ev.Kind()
	var dst capture.Event
	if int(k) < len(r.free) {
		if fl := r.free[k]; len(fl) > 0 {
			dst = fl[len(fl)-1]
			r.free[k] = fl[:len(fl)-1]
		}
	}
	if dst == nil {
		return capture.Clone(ev)
	}
	switch d := dst.(type) {
	case *capture.Data:
		s := ev.(*capture.Data)
		p := d.Payload[:0]
		*d = *s
		d.Payload = append(p, s.Payload...)
	case *capture.Packet:
		s := ev.(*capture.Packet)
		p := d.Data[:0]
		*d = *s
		d.Data = append(p, s.Data...)
	case *capture.Process:
		*d = *ev.(*capture.Process)
	case *capture.Socket:
		*d = *ev.(*capture.Socket)
	case *capture.Connect:
		*d = *ev.(*capture.Connect)
	case *capture.Accept:
		*d = *ev.(*capture.Accept)
	case *capture.Close:
		*d = *ev.(*capture.Close)
	case *capture.TCP:
		*d = *ev.(*capture.TCP)
	case *capture.Loss:
		*d = *ev.(*capture.Loss)
	case *capture.Exit:
		*d = *ev.(*capture.Exit)
	default:
		return capture.Clone(ev)
	}
	return dst
}
