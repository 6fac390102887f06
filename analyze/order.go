package analyze

import (
	"github.com/rewind-tools/rewind/capture"
)

// DefaultReorderWindow is how far back in time (ns) an event may arrive late
// and still be put in its place. Events from different CPUs reach the ring
// buffer in reservation order, which can trail the timestamps taken at the
// probe by a few microseconds, more under preemption.
const DefaultReorderWindow = 20_000_000 // 20 ms

// reorderer puts events in timestamp order within a bounded window: an event
// is released once an event at least window ns later has been seen. Ties keep
// file order, so the result is deterministic. Held events are copies drawn
// from per-kind free lists, so steady state allocates nothing.
type reorderer struct {
	window  uint64
	h       eventHeap
	maxSeen uint64
	seq     uint64
	free    [16][]capture.Event
	late    uint64 // events that arrived after their window had passed
	lastOut uint64
}

type heldEvent struct {
	ev  capture.Event
	t   uint64
	seq uint64
}

// eventHeap is a binary min-heap by (t, seq), typed to avoid the boxing of
// container/heap.
type eventHeap []heldEvent

func (h eventHeap) less(i, j int) bool {
	if h[i].t != h[j].t {
		return h[i].t < h[j].t
	}
	return h[i].seq < h[j].seq
}

func (h *eventHeap) push(x heldEvent) {
	*h = append(*h, x)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if !a.less(i, p) {
			break
		}
		a[i], a[p] = a[p], a[i]
		i = p
	}
}

func (h *eventHeap) pop() heldEvent {
	a := *h
	top := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a[n] = heldEvent{}
	a = a[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && a.less(l, m) {
			m = l
		}
		if r < n && a.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return top
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
		// runs backwards for the stages after us.
		r.late++
		t = r.lastOut
	}
	r.h.push(heldEvent{ev: r.copy(ev), t: t, seq: r.seq})
	r.seq++
	if t > r.maxSeen {
		r.maxSeen = t
	}
	for len(r.h) > 0 && r.h[0].t+r.window <= r.maxSeen {
		r.pop(release)
	}
}

// flush releases every held event.
func (r *reorderer) flush(release func(capture.Event)) {
	for len(r.h) > 0 {
		r.pop(release)
	}
}

func (r *reorderer) pop(release func(capture.Event)) {
	he := r.h.pop()
	r.lastOut = he.t
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
