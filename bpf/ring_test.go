//go:build linux

package bpf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
)

// TestRingInPlace sends 2 MiB through a 64 KiB ring, a burst at a time, so
// that records wrap around its end many times (a wrapped record reads as
// one slice through the ring's second mapping) and the consumer position is
// published in steps: every write must come out once, whole, in order, and
// nothing be lost. Then an empty ring must answer its deadline.
func TestRingInPlace(t *testing.T) {
	tr, c, srv := ringConn(t)
	if tr.rd.publish != 4<<10 {
		t.Fatalf("publishes every %d bytes, want 4096", tr.rd.publish)
	}
	// A write's bytes say which write it is; sizes vary so that records
	// end at every alignment.
	msg := func(i int) []byte {
		n := 100 + (i*397)%3000
		return bytes.Repeat([]byte{byte(i)}, n)[:n:n]
	}
	pid := uint32(os.Getpid())
	var rec Record
	next, sent := 0, 0
	for sent < 2<<20 {
		// A burst the ring holds with room to spare, the reads' records
		// included.
		// The server reads it at once: the reads' records are as
		// large as the writes', never a backlog's worth.
		first, burst := next, 0
		for burst < 8<<10 {
			m := msg(next)
			if _, err := c.Write(m); err != nil {
				t.Fatal(err)
			}
			burst += len(m)
			next++
		}
		sent += burst
		if _, err := io.ReadFull(srv, make([]byte, burst)); err != nil {
			t.Fatal(err)
		}
		for want := first; want < next; {
			tr.SetDeadline(time.Now().Add(2 * time.Second))
			if err := tr.Read(&rec); err != nil {
				t.Fatalf("reading write %d of %d: %v", want, next, err)
			}
			if rec.Type != EventData || rec.Data.Pid != pid || rec.Data.Dir != DirEgress {
				continue
			}
			if m := msg(want); !bytes.Equal(rec.Payload, m) {
				t.Fatalf("write %d: %d bytes recorded, want %d bytes of %d; got %s", want, len(rec.Payload), len(m), byte(want), head(rec.Payload))
			}
			want++
		}
	}
	for _, cause := range LossCauses {
		per, err := tr.Losses(cause)
		if err != nil {
			t.Fatal(err)
		}
		for cpu, n := range per {
			if n != 0 {
				t.Errorf("%d records lost (cause %v) on CPU %d", n, cause, cpu)
			}
		}
	}

	// Drain what is left (the reads, the close), then the empty ring
	// waits for its deadline and no longer.
	drainRing(t, tr, 200*time.Millisecond)
	start := time.Now()
	tr.SetDeadline(start.Add(50 * time.Millisecond))
	if err := tr.Read(&rec); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("empty ring: %v, want a deadline error", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > time.Second {
		t.Errorf("empty ring answered its 50 ms deadline after %v", d)
	}
	if tr.rd.published != tr.rd.pos {
		t.Errorf("consumer position %d not published before waiting (read up to %d)", tr.rd.published, tr.rd.pos)
	}
}

func head(b []byte) string {
	if len(b) > 16 {
		b = b[:16]
	}
	return fmt.Sprintf("%x", b)
}

// ringConn loads a tracer with a 64 KiB ring (wakeup_bytes 8 KiB) that
// records this process only (SelfPID names another), on one loopback
// connection's port only: other processes' starts and exits would fill the
// ring too. It returns the connection's client and server ends; all three
// are closed when the test ends.
func ringConn(t *testing.T) (tr *Tracer, client, server net.Conn) {
	t.Helper()
	bpftest.RequireRoot(t)
	ln, port := loopbackListener(t)
	tr, err := Load(Options{PIDs: []uint32{uint32(os.Getpid())}, Ports: []uint16{port}, SelfPID: 1, RingSize: 64 << 10, KeepOther: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	client, server = connPair(t, ln)
	return tr, client, server
}

// drainRing reads tr's records until none came for quiet.
func drainRing(t *testing.T, tr *Tracer, quiet time.Duration) {
	t.Helper()
	var rec Record
	for {
		tr.SetDeadline(time.Now().Add(quiet))
		if err := tr.Read(&rec); errors.Is(err, os.ErrDeadlineExceeded) {
			return
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

// TestRingWakesReader checks the programs' wake-ups: a reader asleep on an
// empty ring, with no deadline near, wakes when the records written take
// the ring across wakeup_bytes (an eighth of it), and not before.
func TestRingWakesReader(t *testing.T) {
	tr, c, _ := ringConn(t)
	// Whatever the connection's setup wrote.
	drainRing(t, tr, 100*time.Millisecond)
	var rec Record

	// The deadline is far enough for the test, and the test waits for
	// the read before it closes the ring.
	woke, done := make(chan time.Time, 1), make(chan error, 1)
	tr.SetDeadline(time.Now().Add(3 * time.Second))
	go func() {
		err := tr.Read(&rec)
		woke <- time.Now()
		done <- err
	}()
	defer func() {
		if err := <-done; err != nil {
			t.Errorf("reading: %v", err)
		}
	}()
	// Let the reader find the ring empty and go to sleep: a record
	// written before it looks would be read without any wake-up.
	time.Sleep(200 * time.Millisecond)
	// 1 KiB: far below the mark, the reader sleeps on.
	if _, err := c.Write(make([]byte, 1<<10)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woke:
		t.Fatal("a record far below wakeup_bytes woke the reader")
	case <-time.After(300 * time.Millisecond):
	}
	// 8 KiB more: across the mark.
	sent := time.Now()
	if _, err := c.Write(make([]byte, 8<<10)); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-woke:
		if d := at.Sub(sent); d > time.Second {
			t.Errorf("the reader woke %v after the ring crossed wakeup_bytes", d)
		}
	case <-time.After(2 * time.Second):
		t.Error("crossing wakeup_bytes did not wake the reader")
	}
}

// fakeRing is an eventRing over ordinary memory, with a producer that
// writes records as the kernel lays them out (the data written twice, as the
// kernel maps its pages twice) and refuses one the ring has no room for.
type fakeRing struct {
	r          *eventRing
	cons, prod uintptr
	size       uintptr
}

func newFakeRing(size uintptr) *fakeRing {
	f := &fakeRing{size: size}
	f.r = &eventRing{
		cons: &f.cons, prod: &f.prod, data: make([]byte, 2*size), mask: size - 1,
		publish: size / 16, full: size - size/16, epfd: -1,
		deadline: time.Unix(1, 0), // long past: an empty ring answers at once
	}
	return f
}

func (f *fakeRing) put(p uintptr, b byte) {
	f.r.data[p&f.r.mask] = b
	f.r.data[p&f.r.mask+f.size] = b
}

// write appends a record of payload, discarded when discard is set; false
// when the ring is full.
func (f *fakeRing) write(payload []byte, discard bool) bool {
	n := uintptr(len(payload))
	total := ringHdrSize + (n+7)&^7
	if f.prod+total-f.cons > f.size {
		return false
	}
	hdr := uint32(n)
	if discard {
		hdr |= ringDiscard
	}
	for i := uintptr(0); i < 8; i++ {
		f.put(f.prod+i, byte(uint64(hdr)>>(8*i)))
	}
	for i, b := range payload {
		f.put(f.prod+ringHdrSize+uintptr(i), b)
	}
	f.prod += total
	return true
}

// poison overwrites the space the reader has given back.
func (f *fakeRing) poison(from uintptr) {
	for p := from; p != f.cons; p++ {
		f.put(p, 0xee)
	}
}

// TestRingGivesBackOnlyWhatWasRead runs the reader against a fake producer
// that writes over every byte the reader gives back, as the kernel may: a
// record in hand must stay intact, the space goes back in steps of 1/16 of
// the ring while there is room, after every record once the ring is 15/16
// full, and all of it before the reader waits. Discarded records are
// skipped. No root needed.
func TestRingGivesBackOnlyWhatWasRead(t *testing.T) {
	f := newFakeRing(4096)
	rng := uint32(1)
	next := func() uint32 { rng = rng*1664525 + 1013904223; return rng >> 8 }
	payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1+(i*37)%300) }
	written, discarded := 0, 0
	add := func() bool {
		discard := next()%7 == 0
		if !f.write(payload(written), discard) {
			return false
		}
		if discard {
			discarded++
		} else {
			written++
		}
		return true
	}
	// A few records before each read, or the ring filled up now and
	// then: it runs empty at times and full at others.
	produce := func() {
		n := next() % 3
		if next()%16 == 0 {
			n = 1 << 20
		}
		for ; n > 0 && add(); n-- {
		}
	}
	sawFull, sawStep, sawEmpty := false, false, false
	for want := 0; want < 20000; {
		produce()
		before, seen := f.cons, f.prod-f.cons
		raw, err := f.r.read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if f.cons != f.r.pos {
				t.Fatalf("waiting with %d bytes read but not given back", f.r.pos-f.cons)
			}
			sawEmpty = true
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		start := f.r.pos - ringHdrSize - (uintptr(len(raw))+7)&^7
		if f.cons > start {
			t.Fatalf("record at %d in hand, but the space up to %d given back", start, f.cons)
		}
		if f.r.limit-f.cons > f.r.full && f.cons != start {
			t.Fatalf("ring 15/16 full, yet %d bytes before the record in hand not given back", start-f.cons)
		}
		if start-f.cons >= f.r.publish {
			t.Fatalf("%d bytes read and not given back (step %d)", start-f.cons, f.r.publish)
		}
		sawFull = sawFull || seen > f.r.full
		sawStep = sawStep || (f.cons > before && seen <= f.r.full)
		// The kernel writes over whatever space came back.
		f.poison(before)
		if m := payload(want); !bytes.Equal(raw, m) {
			t.Fatalf("record %d: got %s, want %d bytes of %d", want, head(raw), len(m), byte(want))
		}
		want++
	}
	if discarded == 0 || !sawFull || !sawStep || !sawEmpty {
		t.Fatalf("the run did not cover the cases: %d discarded, full %v, step %v, empty %v", discarded, sawFull, sawStep, sawEmpty)
	}
}
