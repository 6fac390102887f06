package analyze_test

import (
	"context"
	"io"
	"net/netip"
	"testing"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
)

// sliceSource replays a fixed list of events.
type sliceSource struct {
	evs []capture.Event
	i   int
}

func (s *sliceSource) Next() (capture.Event, error) {
	if s.i >= len(s.evs) {
		return nil, io.EOF
	}
	s.i++
	return s.evs[s.i-1], nil
}

var fuzzFragments = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"\x00\x00\x00\x04\x00\x00\x00\x00\x00",
	"\x16\x03\x01\x00\x05hello",
	"HTTP/1.0 204 No Content\r\n\r\n",
	"\r\n",
}

// eventsFromBytes turns fuzz input into an event stream over a few pids, fds
// and generations, so that connections open, close, collide and carry
// HTTP-like and random bytes, with gaps and truncation.
func eventsFromBytes(data []byte) []capture.Event {
	var evs []capture.Event
	ts := uint64(1e12)
	addr := netip.MustParseAddrPort("127.0.0.1:80")
	for len(data) >= 4 {
		op, a, b, c := data[0], data[1], data[2], data[3]
		data = data[4:]
		pid, fd, gen := uint32(a%3+1), int32(b%4+3), uint32(c%3)
		ts += uint64(op) * 1000
		if c&0x80 != 0 && ts > 5000 {
			ts -= 5000 // out of order
		}
		switch op % 8 {
		case 0:
			evs = append(evs, &capture.Accept{Start: ts, Timestamp: ts, PID: pid, FD: fd, Gen: gen, Local: addr, Remote: addr})
		case 1:
			evs = append(evs, &capture.Connect{Start: ts, Timestamp: ts, PID: pid, FD: fd, Gen: gen, Remote: addr})
		case 2:
			evs = append(evs, &capture.Close{Timestamp: ts, PID: pid, FD: fd, Gen: gen})
		case 3:
			evs = append(evs, &capture.Socket{Timestamp: ts, PID: pid, FD: fd, Role: capture.Role(c % 3), Local: addr})
		default:
			var p []byte
			if c&1 == 0 {
				p = []byte(fuzzFragments[int(b)%len(fuzzFragments)])
			} else {
				n := int(c) % (len(data) + 1)
				p = data[:n]
				data = data[n:]
			}
			d := &capture.Data{Start: ts, Timestamp: ts, PID: pid, FD: fd, Gen: gen,
				Dir: capture.Direction(op%2 + 1), Len: uint32(len(p)), Payload: p, Source: capture.SourceRead}
			if a&0x40 != 0 {
				d.Source = capture.SourceOpenSSL
			}
			if a&0x80 != 0 && len(p) > 2 {
				d.Len = uint32(len(p)) + uint32(b)*100
				d.Flags |= capture.DataTruncated
			}
			if b&0x80 != 0 {
				d.Offset = uint32(c)
			}
			evs = append(evs, d)
		}
	}
	return evs
}

type nopSink struct{ n int }

func (s *nopSink) Begin(*analyze.CaptureInfo) error { return nil }
func (s *nopSink) Exchange(e *analyze.Exchange) error {
	s.n++
	if e.Conn == nil || e.Seq != s.n {
		panic("exchange without connection or out of sequence")
	}
	return nil
}
func (s *nopSink) End(*analyze.Summary) error { return nil }

// FuzzReplay runs the whole pipeline on random event streams: it must never
// panic, and the same stream must give the same exchanges.
func FuzzReplay(f *testing.F) {
	f.Add([]byte("\x00\x01\x01\x01\x04\x01\x01\x00\x05\x01\x01\x02\x02\x01\x01\x01"))
	f.Add([]byte("\x01\x02\x02\x00\x05\x02\x02\x00\x04\x02\x02\x00\x04\x02\x03\x01xyz"))
	f.Add([]byte("\x03\x00\x00\x01\x04\x00\x00\x00\x05\x00\x05\x00\x04\x00\x06\x00\x05\x00\x07\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var counts [2]int
		for i := range counts {
			src := &sliceSource{evs: eventsFromBytes(data)}
			var s nopSink
			if _, err := analyze.Replay(context.Background(), src, &analyze.CaptureInfo{}, analyze.Options{ReorderWindow: 2000}, &s); err != nil {
				t.Fatal(err)
			}
			counts[i] = s.n
		}
		if counts[0] != counts[1] {
			t.Fatalf("replays differ: %d and %d exchanges", counts[0], counts[1])
		}
	})
}
