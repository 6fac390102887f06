package analyze

import (
	"sync/atomic"

	"github.com/rewind-tools/rewind/capture/redact"
)

// sinkStage hands exchanges to the sinks on a goroutine of its own, so that
// formatting and aggregating them (JSONL, HAR, the SLI report) overlap with
// parsing on another core. The sinks see the same exchanges in the same
// order as they would from the replay's goroutine; only the timing differs,
// so outputs stay byte-identical.
//
// It is used only when no sink takes byte streams or packets (see
// newDelivery): those calls interleave with exchanges and pass bytes valid
// only during the call.
//
// Once handed over, an exchange belongs to the stage: the replay no longer
// touches it, and its Conn is a copy of the connection as it was when it was
// emitted (connState.snapshot), since the replay goes on updating the live
// one.
type sinkStage struct {
	sinks  []Sink
	redact *redact.Policy // applied on the stage's goroutine
	fields slab           // the stage's own, for materialize
	lookup bool           // every sink reads header fields by name only
	// reuse, when set, takes back the exchanges of a batch the sinks are
	// done with (see KeepsNoExchangeSink); it runs on the replay's
	// goroutine, which gets the batch back through free.
	reuse func([]*Exchange)

	// batch is the one field the replay writes for every exchange: it
	// has cache lines of its own, so that the stage's goroutine, reading
	// the fields around it, does not fetch them anew each time.
	_      [64]byte
	batch  []*Exchange
	_      [64]byte
	work   chan []*Exchange
	free   chan []*Exchange
	done   chan struct{}
	failed atomic.Bool // a sink returned an error; err says which
	err    error       // read only after done is closed
}

// Stage sizes: exchanges are handed over stageBatch at a time, at most
// stageDepth batches ahead of the sinks.
const (
	stageBatch = 256
	stageDepth = 8
)

// newSinkStage starts the stage; reuse, when not nil, takes back the
// exchanges the sinks are done with.
func newSinkStage(sinks []Sink, p *redact.Policy, reuse func([]*Exchange)) *sinkStage {
	s := &sinkStage{
		sinks:  sinks,
		redact: p,
		reuse:  reuse,
		lookup: lookupOnly(sinks),
		work:   make(chan []*Exchange, stageDepth),
		free:   make(chan []*Exchange, stageDepth+2),
		done:   make(chan struct{}),
	}
	s.batch = make([]*Exchange, 0, stageBatch)
	go s.run()
	return s
}

// exchange queues ex; it reports false when a sink has failed (the replay
// should stop and call close for the error).
func (s *sinkStage) exchange(ex *Exchange) bool {
	s.batch = append(s.batch, ex)
	if len(s.batch) == stageBatch {
		s.handOver()
	}
	return !s.failed.Load()
}

func (s *sinkStage) handOver() {
	s.work <- s.batch
	select {
	case b := <-s.free:
		if s.reuse != nil {
			s.reuse(b)
		}
		clear(b)
		s.batch = b[:0]
	default:
		s.batch = make([]*Exchange, 0, stageBatch)
	}
}

// close hands over what is queued, waits until the sinks have seen it and
// returns the first sink error.
func (s *sinkStage) close() error {
	if len(s.batch) > 0 {
		s.handOver()
	}
	close(s.work)
	<-s.done
	return s.err
}

// flush hands over the exchanges batched so far and has the sinks write
// out what they buffer (see [ErrWaiting]). A sink's error comes later, from
// exchange and close.
func (s *sinkStage) flush() error {
	if len(s.batch) > 0 {
		s.handOver()
	}
	s.work <- nil
	return nil
}

func (s *sinkStage) run() {
	defer close(s.done)
	for b := range s.work {
		if b == nil {
			if s.err == nil {
				s.err = flushSinks(s.sinks)
				s.failed.Store(s.err != nil)
			}
			continue
		}
		if s.err == nil {
			s.deliver(b)
		}
		if s.reuse == nil {
			clear(b)
		}
		select {
		case s.free <- b:
		default:
		}
	}
}

func (s *sinkStage) deliver(b []*Exchange) {
	for _, ex := range b {
		s.fields.prepare(ex, s.redact, s.lookup)
		for _, sk := range s.sinks {
			if err := sk.Exchange(ex); err != nil {
				s.err = err
				s.failed.Store(true)
				return
			}
		}
	}
}

// flushSinks flushes the sinks that buffer output.
func flushSinks(sinks []Sink) error {
	for _, sk := range sinks {
		if f, ok := sk.(FlushSink); ok {
			if err := f.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}
