//go:build linux

package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/rewind-tools/rewind/bpf"
	"github.com/rewind-tools/rewind/capture"
)

// Packet capture during a recording: a goroutine reads the tracer's packet
// socket (bpf.PacketSocket, whose socket filter keeps the traced ports' TCP
// packets cut after their headers plus bpf.DefaultPacketPayload bytes) and
// queues Packet events; the session's loop moves them into its reorder
// window. The kernel stamps packets with CLOCK_REALTIME; they are moved to
// the events' CLOCK_MONOTONIC with an offset measured once a second
// (clockOffset), whose uncertainty is a few hundred nanoseconds.

// linkTypeRaw is pcap's LINKTYPE_RAW: the packet starts at its IP header.
const linkTypeRaw = 101

// packetChunk is the size of the slabs packet bytes are copied into.
const packetChunk = 256 << 10

// packetCapture reads a packet socket in the background.
type packetCapture struct {
	sock *bpf.PacketSocket
	// offset is CLOCK_REALTIME − CLOCK_MONOTONIC in ns, updated by the
	// session's tick; maxErr the worst half-width of its measurements.
	offset atomic.Int64
	maxErr int64

	mu    sync.Mutex
	queue []*capture.Packet
	err   error

	stop atomic.Bool
	done chan struct{}

	slab      []byte
	count     uint64 // packets read (reader goroutine)
	lateDrops uint64 // dropped before close, not yet reported
}

// startPackets opens the packet socket and starts reading it.
func startPackets(tr *bpf.Tracer, iface string) (*packetCapture, error) {
	sock, err := tr.OpenPackets(iface, bpf.DefaultPacketPayload)
	if err != nil {
		return nil, err
	}
	pc := &packetCapture{sock: sock, done: make(chan struct{})}
	pc.measureClock()
	go pc.read()
	return pc, nil
}

// clockOffset measures CLOCK_REALTIME − CLOCK_MONOTONIC: the best of a few
// (mono, real, mono) readings, with half the tightest bracket as its error.
func clockOffset() (offset, halfWidth int64) {
	halfWidth = -1
	for i := 0; i < 8; i++ {
		var m1, r, m2 unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &m1)
		_ = unix.ClockGettime(unix.CLOCK_REALTIME, &r)
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &m2)
		w := (m2.Nano() - m1.Nano()) / 2
		if halfWidth < 0 || w < halfWidth {
			halfWidth = w
			offset = r.Nano() - (m1.Nano() + w)
		}
	}
	return offset, halfWidth
}

// measureClock refreshes the realtime → monotonic offset.
func (pc *packetCapture) measureClock() {
	off, w := clockOffset()
	pc.offset.Store(off)
	if w > pc.maxErr {
		pc.maxErr = w
	}
}

func (pc *packetCapture) read() {
	defer close(pc.done)
	var p bpf.Packet
	for !pc.stop.Load() {
		err := pc.sock.Read(&p)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			pc.mu.Lock()
			pc.err = err
			pc.mu.Unlock()
			return
		}
		ev := pc.event(&p)
		if ev == nil {
			continue
		}
		pc.count++
		pc.mu.Lock()
		pc.queue = append(pc.queue, ev)
		pc.mu.Unlock()
	}
}

// event converts a packet; bytes are copied into a slab shared by many
// packets (one allocation per few thousand packets).
func (pc *packetCapture) event(p *bpf.Packet) *capture.Packet {
	if len(p.Data) == 0 || p.RealtimeNS == 0 {
		return nil
	}
	if len(pc.slab) < len(p.Data) {
		pc.slab = make([]byte, packetChunk)
	}
	data := pc.slab[:len(p.Data):len(p.Data)]
	pc.slab = pc.slab[len(p.Data):]
	copy(data, p.Data)
	dir := capture.Ingress
	if p.PktType == bpf.PacketOutgoing {
		dir = capture.Egress
	}
	return &capture.Packet{
		Timestamp: uint64(p.RealtimeNS - pc.offset.Load()),
		Ifindex:   p.Ifindex,
		Dir:       dir,
		OrigLen:   ipLength(p.Data, len(p.Data)),
		LinkType:  linkTypeRaw,
		Data:      data,
	}
}

// ipLength returns the packet's length from its IP header (the socket
// filter cut the rest), or n when the header does not say.
func ipLength(b []byte, n int) uint32 {
	if len(b) >= 20 && b[0]>>4 == 4 {
		if l := binary.BigEndian.Uint16(b[2:4]); l >= 20 {
			return uint32(l)
		}
	}
	if len(b) >= 40 && b[0]>>4 == 6 {
		return 40 + uint32(binary.BigEndian.Uint16(b[4:6]))
	}
	return uint32(n)
}

// drain moves the queued packets to add, and reports a reader failure.
func (pc *packetCapture) drain(add func(*capture.Packet)) error {
	pc.mu.Lock()
	q, err := pc.queue, pc.err
	pc.queue = nil
	pc.mu.Unlock()
	for _, p := range q {
		add(p)
	}
	if err != nil {
		return fmt.Errorf("packet capture: %w", err)
	}
	return nil
}

// drops returns the packets the socket dropped since the previous call.
func (pc *packetCapture) drops() (uint64, error) {
	if pc.stop.Load() {
		n := pc.lateDrops
		pc.lateDrops = 0
		return n, nil
	}
	return pc.sock.Drops()
}

// close stops the reader (within its 50 ms read timeout) and closes the
// socket, keeping its last drop count for [packetCapture.drops].
func (pc *packetCapture) close() error {
	if pc.stop.Swap(true) {
		return nil
	}
	<-pc.done
	n, err := pc.sock.Drops()
	pc.lateDrops = n
	return errors.Join(err, pc.sock.Close())
}

// drainPackets queues the packets read since the last call.
func (s *session) drainPackets() error {
	if s.packets == nil {
		return nil
	}
	return s.packets.drain(func(p *capture.Packet) { s.queue(p) })
}

// writePacketLosses writes the packets the socket dropped since the last
// call as a Loss event (the socket's counter is not per CPU: CPU 0).
func (s *session) writePacketLosses(now uint64) error {
	if s.packets == nil {
		return nil
	}
	n, err := s.packets.drops()
	if err != nil || n == 0 {
		return err
	}
	return s.w.Write(&capture.Loss{Timestamp: now, Source: capture.LossPacket, Count: n})
}
