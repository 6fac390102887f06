package analyze

import "github.com/rewind-tools/rewind/capture/redact"

// exchangeDelivery is how finished exchanges reach the sinks' Exchange
// method. The replay has two, and newDelivery says which one a replay uses
// and why:
//
//   - [sinkStage] (async.go) calls the sinks on a goroutine of its own,
//     batched, so that formatting overlaps with parsing;
//   - [inStepDelivery] calls them on the replay's goroutine, as each
//     exchange finishes, because a sink that also takes byte streams or
//     packets must see exchanges in step with those calls.
type exchangeDelivery interface {
	// exchange hands ex over; it reports false when a sink has failed (the
	// replay then stops, and close returns the error).
	exchange(ex *Exchange) bool
	// flush gets what was handed over written out (see [ErrWaiting]).
	flush() error
	// close delivers what remains and returns the first sink error.
	close() error
}

var (
	_ exchangeDelivery = (*sinkStage)(nil)
	_ exchangeDelivery = (*inStepDelivery)(nil)
)

// newDelivery picks the delivery of a replay: on a goroutine of its own
// unless a sink takes byte streams or packets ([StreamSink], [PacketSink]).
// Their calls pass bytes that are valid only during the call (copying every
// byte of the capture to another goroutine would cost more than the overlap
// gains), and they interleave with the exchanges in replay order, which a
// sink such as pcapng writes as it gets them: so when one is present, every
// sink gets its exchanges on the replay's goroutine, in that order.
func newDelivery(t *tracker) exchangeDelivery {
	if t.streams != nil || t.packets != nil {
		return &inStepDelivery{sinks: t.sinks, slab: &t.slab, redact: t.opts.Redact, lookup: lookupOnly(t.sinks)}
	}
	var reuse func([]*Exchange)
	if t.opts.Filter == nil && keepNoExchange(t.sinks) {
		reuse = t.slab.recycle
	}
	return newSinkStage(t.sinks, t.opts.Redact, reuse)
}

// inStepDelivery calls the sinks' Exchange on the replay's goroutine, as
// each exchange finishes, between the stream and packet calls that came
// before and after it (see newDelivery for why).
type inStepDelivery struct {
	sinks  []Sink
	slab   *slab // the replay's: prepare runs on its goroutine
	redact *redact.Policy
	lookup bool // every sink reads header fields by name only
	err    error
}

func (d *inStepDelivery) exchange(ex *Exchange) bool {
	d.slab.prepare(ex, d.redact, d.lookup)
	for _, s := range d.sinks {
		if err := s.Exchange(ex); err != nil {
			d.err = err
			return false
		}
	}
	return true
}

func (d *inStepDelivery) flush() error { return flushSinks(d.sinks) }

func (d *inStepDelivery) close() error { return d.err }
