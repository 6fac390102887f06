package pcapin

import (
	"errors"
	"fmt"
	"io"

	"github.com/rewind-tools/rewind/capture"
)

// Packet decoding and TCP reassembly run in a goroutine of their own (the
// producer), a few batches ahead of the consumer of [Reader.Next], so that
// they overlap with the replay on another core. A batch owns everything its
// events point to: the assembler makes them in the batch's stores and their
// payloads are copied out of the packet buffer, so the producer may go on
// while the consumer still holds the batch. The events and their order are exactly
// what a single goroutine would give; only the timing differs.

// Batch limits: a batch is handed over once it holds batchEvents events, or
// once its arena of batchArena payload bytes has less than batchReserve left
// (room for the largest IPv4 or IPv6 packet) or could not take a payload;
// batchesInFlight bounds the batches produced
// ahead of the consumer (and so the memory: at most 4 MiB of payload, less
// for small packets). Enough are in flight that the producer, woken for
// half of them at a time (Reader.giveBack), fills them in one go when it
// gets a processor, instead of waiting for one per batch.
const (
	batchEvents     = 256
	batchArena      = 256 << 10
	batchReserve    = 64 << 10
	batchesInFlight = 16
)

// batch is a run of events in file order.
type batch struct {
	evs   []capture.Event
	datas []capture.Data // backing store of the Data events, fixed capacity
	tcps  []capture.TCP  // backing store of the TCP events, fixed capacity
	arena []byte         // payload bytes of the Data events, fixed capacity
	// spilled says a payload did not fit in arena and was copied to the
	// heap: the batch is handed over after the packet that caused it.
	spilled bool
	last    bool // no batch follows: the file ended
}

func newBatch() *batch {
	return &batch{
		evs:   make([]capture.Event, 0, batchEvents+64),
		datas: make([]capture.Data, 0, batchEvents),
		tcps:  make([]capture.TCP, 0, batchEvents),
		arena: make([]byte, 0, batchArena),
	}
}

func (b *batch) reset() {
	clear(b.evs)
	b.evs = b.evs[:0]
	clear(b.datas) // drop payload references
	b.datas = b.datas[:0]
	b.tcps = b.tcps[:0]
	b.arena = b.arena[:0]
	b.spilled = false
	b.last = false
}

// full reports whether the batch should be handed over. It is before the
// arena is too short for another packet: a batch that went on once a payload
// spilled would copy every later large payload to the heap too (loopback
// captures of 32 and 64 KiB segments did so for most of their bytes).
func (b *batch) full() bool {
	return len(b.evs) >= batchEvents || b.spilled || cap(b.arena)-len(b.arena) < batchReserve
}

// add appends ev, which the assembler made for b (see assembler.out), and
// makes it stay valid while the batch is held: a Data event's payload,
// which points into the packet buffer or the assembler's out-of-order
// buffers, is copied into the arena. Data and TCP events are in b's fixed
// stores, or, when those were exhausted (a drain of many held segments at
// once), on the heap; Accept, Socket and Close events are allocated afresh.
func (b *batch) add(ev capture.Event) {
	if d, ok := ev.(*capture.Data); ok && len(d.Payload) > 0 {
		if start := len(b.arena); start+len(d.Payload) <= cap(b.arena) {
			b.arena = append(b.arena, d.Payload...)
			d.Payload = b.arena[start:len(b.arena):len(b.arena)]
		} else {
			d.Payload = append([]byte(nil), d.Payload...)
			b.spilled = true
		}
	}
	b.evs = append(b.evs, ev)
}

// carve returns the next element of a fixed store, or a new one from the
// heap when the store is exhausted.
func carve[T any](store *[]T) *T {
	if n := len(*store); n < cap(*store) {
		*store = (*store)[:n+1]
		return &(*store)[n]
	}
	return new(T)
}

// producer reads packets and reassembles them into batches of events. It
// owns the packet source, the assembler and the counts until it has handed
// over its last batch.
type producer struct {
	_      [64]byte // no cache line shared with the object before
	pkts   packetSource
	asm    assembler
	counts Counts
	lastTS uint64
	q      []capture.Event
	_      [64]byte // nor with the one after
}

// run fills batches and hands them over on full until the file ends or
// stop is closed. It makes batches as it needs them, up to batchesInFlight
// (a small file needs one or two), and then takes them back from free.
func (p *producer) run(free <-chan *batch, full chan<- *batch, stop <-chan struct{}, exited chan<- struct{}) {
	defer close(exited)
	made := 0
	for {
		var b *batch
		select {
		case b = <-free:
		default:
			if made < batchesInFlight {
				b = newBatch()
				made++
				break
			}
			select {
			case b = <-free:
			case <-stop:
				return
			}
		}
		b.reset()
		p.asm.out = b
		for !b.last && !b.full() {
			p.step(b)
		}
		select {
		case full <- b:
		case <-stop:
			return
		}
		if b.last {
			return
		}
	}
}

// step reads one packet and adds the events it causes to b; at the end of
// the file it ends the open connections and marks b as the last batch.
func (p *producer) step(b *batch) {
	data, wire, link, ts, err := p.pkts.next()
	if err != nil {
		d := p.pkts.skipped()
		var stop *damageError
		switch {
		case errors.As(err, &stop):
			d.stop(stop)
			p.counts.ReadError = stop.Reason
		case !errors.Is(err, io.EOF):
			p.counts.ReadError = fmt.Sprintf("reading packet %d: %v", p.counts.Packets+1, err)
			d.stop(&damageError{Offset: -1, Reason: p.counts.ReadError})
		}
		p.counts.Damage, p.counts.DamagedRegions, p.counts.DamagedBytes = d.regions, d.count, d.bytes
		p.q = p.asm.finish(p.lastTS, p.q[:0])
		p.flush(b)
		b.last = true
		return
	}
	p.counts.Packets++
	if lt := p.counts.LinkTypes; len(lt) > 0 && lt[len(lt)-1].LinkType == link {
		lt[len(lt)-1].Packets++
	} else {
		p.countLink(link)
	}
	if ts < p.lastTS {
		p.counts.Backwards++
	} else {
		p.lastTS = ts
	}
	p.q = p.asm.packet(link, data, wire, ts, p.q[:0])
	p.flush(b)
}

// countLink counts a packet whose link type differs from the previous
// packet's (the usual case, one link type per file, takes the fast path in
// step).
func (p *producer) countLink(link int) {
	for i := range p.counts.LinkTypes {
		if p.counts.LinkTypes[i].LinkType == link {
			p.counts.LinkTypes[i].Packets++
			return
		}
	}
	p.counts.LinkTypes = append(p.counts.LinkTypes, LinkTypeCount{LinkType: link, Packets: 1})
}

// flush adds the queued events to b and gives the assembler its
// out-of-order buffers back.
func (p *producer) flush(b *batch) {
	for i, ev := range p.q {
		b.add(ev)
		p.q[i] = nil
	}
	p.q = p.q[:0]
	p.asm.recycle()
}
