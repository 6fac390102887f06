// Package capturetest writes captures from short Go descriptions of what
// processes did, so replay tests run without root or a recorder:
//
//	b := capturetest.New()
//	srv := b.Process(100, "nginx")
//	c := srv.Accept(5, "127.0.0.1:8080", "127.0.0.1:40000")
//	c.Read("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
//	b.Advance(2 * time.Millisecond)
//	c.Write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
//	c.Close()
//	data := b.Bytes(t)
package capturetest

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/capture"
)

// Epoch is the wall-clock time of monotonic time Mono0 in built captures.
var Epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Mono0 is the monotonic time at which built captures start.
const Mono0 = uint64(1_000_000_000_000)

// Builder accumulates a capture's snapshot and events.
type Builder struct {
	Header   capture.Header
	now      uint64
	step     uint64
	callTime uint64
	snapshot []capture.Event
	events   []capture.Event
	gens     map[[2]int64]uint32
	chunk    int
}

// New returns a Builder whose clock starts at Mono0 and advances by 1 ms after
// each call a process makes; each call takes 10 µs.
func New() *Builder {
	return &Builder{
		Header: capture.Header{
			RecorderVersion: "capturetest",
			Host:            "testhost",
			Kernel:          "6.18.0-test",
			Clock:           capture.ClockMapping{MonoNS: Mono0, WallUnixNS: Epoch.UnixNano()},
			Options:         capture.RecordingOptions{Snaplen: 16 << 10, TLS: true},
		},
		now:      Mono0,
		step:     uint64(time.Millisecond),
		callTime: uint64(10 * time.Microsecond),
		gens:     map[[2]int64]uint32{},
	}
}

// Now returns the builder's current monotonic time.
func (b *Builder) Now() uint64 { return b.now }

// Advance moves the clock forward.
func (b *Builder) Advance(d time.Duration) { b.now += uint64(d) }

// SetStep sets how far the clock moves after each call (default 1 ms).
func (b *Builder) SetStep(d time.Duration) { b.step = uint64(d) }

// SetChunkSize sets the writer's chunk size, to make multi-chunk files.
func (b *Builder) SetChunkSize(n int) { b.chunk = n }

// Event appends a raw event as is.
func (b *Builder) Event(ev capture.Event) { b.events = append(b.events, ev) }

// Snapshot appends a raw snapshot entry.
func (b *Builder) Snapshot(ev capture.Event) { b.snapshot = append(b.snapshot, ev) }

// Events returns the events added so far (snapshot excluded).
func (b *Builder) Events() []capture.Event { return b.events }

// Proc is a process in a built capture.
type Proc struct {
	b    *Builder
	PID  uint32
	Comm string
	fd   int32
}

// Process adds a process to the snapshot.
func (b *Builder) Process(pid uint32, comm string) *Proc {
	b.snapshot = append(b.snapshot, &capture.Process{
		Timestamp: b.now, PID: pid, PPID: 1, Snapshot: true, Comm: comm,
		Exe: "/usr/bin/" + comm, Cmdline: comm,
	})
	return &Proc{b: b, PID: pid, Comm: comm, fd: 3}
}

// InNetNS puts the process in the network namespace of that inode.
func (p *Proc) InNetNS(ns uint64) *Proc {
	for _, ev := range p.b.snapshot {
		if pr, ok := ev.(*capture.Process); ok && pr.PID == p.PID {
			pr.NetNS = ns
		}
	}
	return p
}

// With lets f set more fields of the process's snapshot record (its
// cgroup, pod, hostname…).
func (p *Proc) With(f func(*capture.Process)) *Proc {
	for _, ev := range p.b.snapshot {
		if pr, ok := ev.(*capture.Process); ok && pr.PID == p.PID {
			f(pr)
		}
	}
	return p
}

// Conn is a socket of a process in a built capture.
type Conn struct {
	p      *Proc
	FD     int32
	Gen    uint32
	Source capture.Source
	// TLSConn is set on Data events when Source is a TLS library.
	TLSConn uint64
}

func mustAddr(s string) netip.AddrPort {
	if s == "" {
		return netip.AddrPort{}
	}
	return netip.MustParseAddrPort(s)
}

func (p *Proc) nextFD(fd int32) int32 {
	if fd > 0 {
		return fd
	}
	p.fd++
	return p.fd
}

func (p *Proc) gen(fd int32) uint32 {
	k := [2]int64{int64(p.PID), int64(fd)}
	p.b.gens[k]++
	return p.b.gens[k]
}

func (b *Builder) tick() (start, end uint64) {
	start = b.now
	end = b.now + b.callTime
	b.now += b.step
	return start, end
}

// Accept records an accepted connection (the process is the server). fd 0
// picks the next free fd.
func (p *Proc) Accept(fd int32, local, remote string) *Conn {
	fd = p.nextFD(fd)
	c := &Conn{p: p, FD: fd, Gen: p.gen(fd), Source: capture.SourceRead}
	s, e := p.b.tick()
	p.b.events = append(p.b.events, &capture.Accept{Start: s, Timestamp: e, PID: p.PID, TID: p.PID,
		ListenFD: 3, FD: fd, Gen: c.Gen, Local: mustAddr(local), Remote: mustAddr(remote)})
	return c
}

// Connect records an outgoing connection (the process is the client).
func (p *Proc) Connect(fd int32, local, remote string) *Conn {
	fd = p.nextFD(fd)
	c := &Conn{p: p, FD: fd, Gen: p.gen(fd), Source: capture.SourceRead}
	s, e := p.b.tick()
	p.b.events = append(p.b.events, &capture.Connect{Start: s, Timestamp: e, PID: p.PID, TID: p.PID,
		FD: fd, Gen: c.Gen, Local: mustAddr(local), Remote: mustAddr(remote)})
	return c
}

// Existing records a socket that was open before recording started: it goes
// into the snapshot, and data on it carries generation 0.
func (p *Proc) Existing(fd int32, local, remote string, role capture.Role) *Conn {
	fd = p.nextFD(fd)
	p.b.snapshot = append(p.b.snapshot, &capture.Socket{Timestamp: p.b.now, PID: p.PID, FD: fd,
		Inode: uint64(1000 + fd), Role: role, State: 1, Local: mustAddr(local), Remote: mustAddr(remote)})
	return &Conn{p: p, FD: fd, Gen: 0, Source: capture.SourceRead}
}

// TLS makes later data on c TLS plaintext from the given library.
func (c *Conn) TLS(lib capture.Source) *Conn {
	c.Source = lib
	c.TLSConn = 0x7f0000001000 + uint64(c.FD)
	return c
}

// Session returns a TLS session of p whose socket the recorder could not
// name (fd -1), as with libraries that encrypt into memory buffers such as
// Node.js: its Read and Write record plaintext keyed by the library object
// obj alone.
func (p *Proc) Session(obj uint64, lib capture.Source) *Conn {
	return &Conn{p: p, FD: -1, Source: lib, TLSConn: obj}
}

func (c *Conn) data(dir capture.Direction, payload []byte, n int) {
	src := c.Source
	if !src.IsTLS() {
		if dir == capture.Ingress {
			src = capture.SourceRead
		} else {
			src = capture.SourceWrite
		}
	}
	s, e := c.p.b.tick()
	d := &capture.Data{Start: s, Timestamp: e, PID: c.p.PID, TID: c.p.PID, FD: c.FD, Gen: c.Gen,
		Source: src, Dir: dir, Len: uint32(n), Payload: payload}
	if src.IsTLS() {
		d.TLSConn = c.TLSConn
		if c.FD < 0 {
			d.Flags |= capture.DataFDUnknown
		} else {
			d.Flags |= capture.DataFDNested
		}
	}
	if len(payload) < n {
		d.Flags |= capture.DataTruncated
	}
	c.p.b.events = append(c.p.b.events, d)
}

// Read records the process receiving s in one call.
func (c *Conn) Read(s string) { c.data(capture.Ingress, []byte(s), len(s)) }

// Write records the process sending s in one call.
func (c *Conn) Write(s string) { c.data(capture.Egress, []byte(s), len(s)) }

// ReadTruncated records a call that received n bytes of which only prefix
// was captured.
func (c *Conn) ReadTruncated(prefix string, n int) { c.data(capture.Ingress, []byte(prefix), n) }

// WriteTruncated records a call that sent n bytes of which only prefix was
// captured.
func (c *Conn) WriteTruncated(prefix string, n int) { c.data(capture.Egress, []byte(prefix), n) }

// Close records the process closing the socket.
func (c *Conn) Close() {
	s, _ := c.p.b.tick()
	c.p.b.events = append(c.p.b.events, &capture.Close{Timestamp: s, PID: c.p.PID, TID: c.p.PID, FD: c.FD, Gen: c.Gen})
}

// Lost records a loss of n events on CPU 0.
func (b *Builder) Lost(n uint64) {
	b.events = append(b.events, &capture.Loss{Timestamp: b.now, CPU: 0, Source: capture.LossRingbuf, Count: n})
}

// Start writes the capture's header and snapshot to out and returns the
// writer of its events, for tests that write them over time as a recorder
// does: Write events, Flush to end a chunk, Close to write the trailer.
func (b *Builder) Start(t testing.TB, out io.Writer) *capture.Writer {
	t.Helper()
	w, err := capture.NewWriter(out, b.Header, capture.WriterOptions{ChunkSize: b.chunk})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range b.snapshot {
		if err := w.WriteSnapshot(ev); err != nil {
			t.Fatal(err)
		}
	}
	// The snapshot is its own chunk, as the first Write would make it.
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// Bytes writes the capture and returns the file's bytes.
func (b *Builder) Bytes(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := b.Start(t, &buf)
	for _, ev := range b.events {
		if err := w.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// WriteFile writes the capture to path.
func (b *Builder) WriteFile(t testing.TB, path string) {
	t.Helper()
	if err := os.WriteFile(path, b.Bytes(t), 0o600); err != nil {
		t.Fatal(err)
	}
}
