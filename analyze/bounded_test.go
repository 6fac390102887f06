package analyze_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/capturetest"
	"github.com/rewind-tools/rewind/format/har"
)

// heapProbe wraps an event source and measures the live heap (after a
// collection) every `every` events and when measure says so, keeping the
// largest.
type heapProbe struct {
	src     analyze.EventSource
	n       int
	every   int
	measure func(capture.Event) bool
	peak    uint64
}

func (p *heapProbe) Next() (capture.Event, error) {
	ev, err := p.src.Next()
	p.n++
	if err == nil && (p.every > 0 && p.n%p.every == 0 || p.measure != nil && p.measure(ev)) {
		p.sample()
	}
	return ev, err
}

func (p *heapProbe) sample() {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > p.peak {
		p.peak = ms.HeapAlloc
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// TestBoundedManyConnections replays 100,000 connections that each carry
// one request and its response and stay open until the end of the capture,
// and bounds the live heap while they are all open. Set REWIND_BOUNDED_CONNS
// to try another count.
func TestBoundedManyConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and replays a 100,000-connection capture (-short)")
	}
	conns := 100_000
	if s := os.Getenv("REWIND_BOUNDED_CONNS"); s != "" {
		fmt.Sscan(s, &conns)
	}
	b := capturetest.New()
	b.SetChunkSize(1 << 20)
	b.SetStep(10 * time.Microsecond)
	srv := b.Process(100, "nginx")
	cs := make([]*capturetest.Conn, conns)
	for i := range cs {
		c := srv.Accept(int32(10+i), "127.0.0.1:8080", fmt.Sprintf("10.%d.%d.%d:40000", i>>16, i>>8&255, i&255))
		c.Read(fmt.Sprintf("GET /api/items/%d HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\n"+
			"Accept: */*\r\nCookie: session=0123456789abcdef\r\n\r\n", i))
		c.Write("HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n" +
			`{"id":12345,"name":"thing"}`)
		cs[i] = c
	}
	for _, c := range cs {
		c.Close()
	}
	data := b.Bytes(t)
	b, cs = nil, nil
	path := filepath.Join(t.TempDir(), "conns.rwd")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	data = nil
	base := liveHeap()

	in, err := analyze.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	closes := 0
	probe := &heapProbe{src: in.Source, every: 20_000, measure: func(ev capture.Event) bool {
		// The first close comes after every connection has exchanged.
		_, ok := ev.(*capture.Close)
		if ok {
			closes++
		}
		if ok && closes == 1 && os.Getenv("REWIND_HEAP_PROFILE") != "" {
			runtime.GC()
			f, _ := os.Create(os.Getenv("REWIND_HEAP_PROFILE"))
			pprof.WriteHeapProfile(f)
			f.Close()
		}
		return ok && closes == 1
	}}
	var cnt countSink
	start := time.Now()
	sum, err := analyze.Replay(context.Background(), probe, in.Info, analyze.Options{DiscardBodies: true, Redact: nil}, &cnt)
	if err != nil {
		t.Fatal(err)
	}
	if cnt.n != conns || sum.Exchanges != conns {
		t.Fatalf("%d exchanges (summary %d), want %d", cnt.n, sum.Exchanges, conns)
	}
	peak := probe.peak - min(base, probe.peak)
	perConn := peak / uint64(conns)
	t.Logf("%d open connections: peak live heap %s above the %s baseline (%d B per connection), replay %v",
		conns, mib(peak), mib(base), perConn, time.Since(start).Round(time.Millisecond))
	// The bound has headroom over today's ~3.3 KiB, most of it two
	// http1.Parser structs (~0.8 KiB each) and the last message's header
	// buffer and fields.
	if perConn > 6<<10 {
		t.Errorf("%d B of live heap per open connection; want at most 6 KiB", perConn)
	}
}

// writeHugeBodyCapture writes, with no more than one call's bytes in
// memory, a capture of one server exchange whose response has a body of
// size bytes in calls of 64 KiB, of which keep bytes each were captured.
func writeHugeBodyCapture(t *testing.T, path string, size int64, keep int, tickNS uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := capturetest.New().Header
	w, err := capture.NewWriter(f, h, capture.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := capturetest.Mono0
	// Two ticks per call: 16 µs ticks send 64 KiB calls at 2 GB/s, a
	// loopback's pace; 1 µs ticks at 32 GB/s, where 20 ms of the reorder
	// window would be 640 MiB without its byte cap.
	tick := func() uint64 { now += tickNS; return now }
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	local, remote := netip.MustParseAddrPort("127.0.0.1:8080"), netip.MustParseAddrPort("127.0.0.1:40000")
	must(w.Write(&capture.Accept{Start: tick(), Timestamp: tick(), PID: 100, TID: 100, ListenFD: 3, FD: 5, Gen: 1, Local: local, Remote: remote}))
	data := func(dir capture.Direction, payload []byte, n int) *capture.Data {
		src := capture.SourceRead
		if dir == capture.Egress {
			src = capture.SourceWrite
		}
		d := &capture.Data{Start: tick(), Timestamp: tick(), PID: 100, TID: 100, FD: 5, Gen: 1, Source: src, Dir: dir,
			Len: uint32(n), Payload: payload}
		if len(payload) < n {
			d.Flags |= capture.DataTruncated
		}
		return d
	}
	req := "GET /big.iso HTTP/1.1\r\nHost: localhost\r\n\r\n"
	must(w.Write(data(capture.Ingress, []byte(req), len(req))))
	head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", size)
	must(w.Write(data(capture.Egress, []byte(head), len(head))))
	const call = 64 << 10
	chunk := bytes.Repeat([]byte("0123456789abcdef"), call/16)
	for sent := int64(0); sent < size; sent += call {
		n := int(min(call, size-sent))
		must(w.Write(data(capture.Egress, chunk[:min(keep, n)], n)))
	}
	must(w.Write(&capture.Close{Timestamp: tick(), PID: 100, TID: 100, FD: 5, Gen: 1}))
	must(w.Close())
}

// TestBoundedHugeBody replays one response with a 1 GiB body, written to
// HAR, and bounds the heap: bodies are streamed, and the HAR body is capped
// and flagged. The body whose bytes were all captured is only replayed
// without -short (it moves 1 GiB through the pipeline).
func TestBoundedHugeBody(t *testing.T) {
	cases := []struct {
		name   string
		keep   int
		tickNS uint64
		limit  uint64 // peak live heap allowed
	}{
		{"snaplen 4 KiB", 4 << 10, 16_000, 32 << 20},
		{"all bytes", 64 << 10, 16_000, 96 << 20},
		{"all bytes at 32 GB/s", 64 << 10, 1_000, 160 << 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() {
				t.Skip("writes and replays a 1 GiB body (-short)")
			}
			const size = 1 << 30
			path := filepath.Join(t.TempDir(), "huge.rwd")
			start := time.Now()
			writeHugeBodyCapture(t, path, size, tc.keep, tc.tickNS)
			st, _ := os.Stat(path)
			written := time.Since(start)
			base := liveHeap()

			in, err := analyze.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			probe := &heapProbe{src: in.Source, every: 1024}
			var out bytes.Buffer
			hw := har.New(&out, har.Options{MaxBodyBytes: 1 << 20})
			start = time.Now()
			sum, err := analyze.Replay(context.Background(), probe, in.Info, analyze.Options{MaxBodyCapture: 1 << 20}, hw)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Exchanges != 1 {
				t.Fatalf("%d exchanges, want 1", sum.Exchanges)
			}
			peak := probe.peak - min(base, probe.peak)
			t.Logf("1 GiB body, %s: file %s written in %v; replay %v, peak live heap %s above baseline, HAR %s",
				tc.name, mib(uint64(st.Size())), written.Round(time.Millisecond), time.Since(start).Round(time.Millisecond),
				mib(peak), mib(uint64(out.Len())))
			h := out.String()
			if !strings.Contains(h, `"_truncated":true`) || !strings.Contains(h, fmt.Sprintf(`"size":%d`, size)) && !strings.Contains(h, fmt.Sprintf(`"bodySize":%d`, size)) {
				t.Errorf("HAR does not give the body's size and flag it truncated:\n%.2000s", h)
			}
			if out.Len() > 4<<20 {
				t.Errorf("HAR is %s: the body is not capped", mib(uint64(out.Len())))
			}
			if peak > tc.limit {
				t.Errorf("peak live heap %s replaying one 1 GiB body; want at most %s", mib(peak), mib(tc.limit))
			}
		})
	}
}
