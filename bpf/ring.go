//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// eventRing reads the events ring buffer in place, in batches.
//
// cilium/ebpf's ringbuf.Reader copies each record out of the ring and
// publishes the consumer position after every record. At hundreds of
// thousands of records a second both cost: the copy is the first touch of
// memory another CPU just wrote, and every published position is a cache
// line the kernel reads back on its next reserve (and the programs'
// bpf_ringbuf_query), so the line moves between CPUs twice per record.
// Flat out, reading the ring was about 30 % of the recorder's CPU.
//
// Here a record's bytes are handed out where they lie, valid until the next
// read, and the consumer position is published once per 1/16 of the ring
// read, before waiting, whenever the reader catches up with the producer
// position it last loaded, and after every record while that position shows
// the ring 15/16 full: the kernel gets the space back in steps of at most
// 1/16 of the ring while there is room, and at once when there is little.
//
// The layout is the kernel's (kernel/bpf/ringbuf.c): a read-write page
// holding the consumer position, then a read-only page holding the
// producer position, then the data pages mapped twice in a row, so that a
// record wrapping around the end reads as one slice. Each record starts
// with an 8-byte header: its length, with a busy bit (reserved, not yet
// submitted) and a discard bit, and the page offset the kernel uses.
type eventRing struct {
	consPage, prodPage []byte
	// The kernel's positions are unsigned longs: uintptr on every
	// architecture.
	cons, prod *uintptr // in the pages
	data       []byte   // the data pages, twice
	mask       uintptr

	pos       uintptr // where the next record starts
	published uintptr // the consumer position the kernel sees
	limit     uintptr // the producer position last loaded
	publish   uintptr // publish after this many bytes read
	full      uintptr // publish after every record above this many unread

	epfd     int
	deadline time.Time
	closed   bool
}

// Header bits of a ring record's length (BPF_RINGBUF_BUSY_BIT,
// BPF_RINGBUF_DISCARD_BIT) and the header's size (BPF_RINGBUF_HDR_SZ).
const (
	ringBusy    = 1 << 31
	ringDiscard = 1 << 30
	ringHdrSize = 8
)

func newEventRing(m *ebpf.Map) (*eventRing, error) {
	size := uintptr(m.MaxEntries())
	if size == 0 || size&(size-1) != 0 {
		return nil, fmt.Errorf("ring buffer size %d is not a power of two", size)
	}
	page := os.Getpagesize()
	fd := m.FD()
	cons, err := unix.Mmap(fd, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping the ring's consumer page: %w", err)
	}
	prod, err := unix.Mmap(fd, int64(page), page+2*int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		_ = unix.Munmap(cons)
		return nil, fmt.Errorf("mapping the ring's data pages: %w", err)
	}
	r := &eventRing{
		consPage: cons, prodPage: prod,
		cons:    (*uintptr)(unsafe.Pointer(&cons[0])),
		prod:    (*uintptr)(unsafe.Pointer(&prod[0])),
		data:    prod[page:],
		mask:    size - 1,
		publish: max(size/16, 4096),
		full:    size - size/16,
		epfd:    -1,
	}
	r.pos = atomic.LoadUintptr(r.cons)
	r.published, r.limit = r.pos, r.pos
	if r.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		r.close()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		r.close()
		return nil, fmt.Errorf("epoll on the ring: %w", err)
	}
	return r, nil
}

// read returns the next record's bytes, which stay valid until the next
// read, or ErrClosed after close. With the ring empty it waits until the deadline (none: for ever)
// and then returns os.ErrDeadlineExceeded.
func (r *eventRing) read() ([]byte, error) {
	if r.closed {
		return nil, ErrClosed
	}
	for spins := 0; ; {
		// The records before pos are done with: their space may go back.
		if r.pos-r.published >= r.publish || r.limit-r.published > r.full {
			r.release()
		}
		if r.pos == r.limit {
			r.release()
			r.limit = atomic.LoadUintptr(r.prod)
			if r.pos == r.limit {
				if err := r.wait(); err != nil {
					return nil, err
				}
				continue
			}
		}
		// The atomic load orders the record's bytes after its header
		// (the kernel clears the busy bit with an xchg once they are in).
		hdr := atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.data[r.pos&r.mask])))
		if hdr&ringBusy != 0 {
			// Reserved but not submitted yet: a program is writing it
			// on another CPU, or was interrupted doing so on this one.
			r.release()
			switch spins++; {
			case spins%1024 == 0:
				time.Sleep(20 * time.Microsecond) // give the CPU up
			case spins%64 == 0:
				runtime.Gosched()
			}
			continue
		}
		n := uintptr(hdr &^ (ringBusy | ringDiscard))
		start := r.pos + ringHdrSize
		end := start + (n+7)&^7
		if end-r.pos > r.limit-r.pos {
			// The kernel moves the producer position past a record
			// when it reserves it: this ring is not what it seems.
			return nil, fmt.Errorf("ring buffer damaged: a record of %d bytes at %d runs past the producer position %d", n, r.pos, r.limit)
		}
		r.pos = end
		if hdr&ringDiscard != 0 {
			continue
		}
		off := start & r.mask
		return r.data[off : off+n : off+n], nil
	}
}

// release publishes the consumer position up to the records read.
func (r *eventRing) release() {
	if r.published != r.pos {
		atomic.StoreUintptr(r.cons, r.pos)
		r.published = r.pos
	}
}

// wait blocks until the kernel signals data or the deadline passes.
func (r *eventRing) wait() error {
	timeout := -1
	if !r.deadline.IsZero() {
		d := time.Until(r.deadline)
		if d <= 0 {
			return os.ErrDeadlineExceeded
		}
		timeout = int(min((d+time.Millisecond-1)/time.Millisecond, math.MaxInt32))
	}
	var ev [1]unix.EpollEvent
	n, err := unix.EpollWait(r.epfd, ev[:], timeout)
	if err != nil && !errors.Is(err, unix.EINTR) {
		return fmt.Errorf("waiting for the ring: %w", err)
	}
	if n == 0 && err == nil && !r.deadline.IsZero() && !time.Now().Before(r.deadline) {
		// One more look: a program may have written without a wake-up.
		if atomic.LoadUintptr(r.prod) == r.pos {
			return os.ErrDeadlineExceeded
		}
	}
	return nil
}

func (r *eventRing) close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	if r.epfd >= 0 {
		errs = append(errs, unix.Close(r.epfd))
	}
	errs = append(errs, unix.Munmap(r.prodPage), unix.Munmap(r.consPage))
	return errors.Join(errs...)
}
