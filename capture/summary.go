package capture

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/rewind-tools/rewind/capture/redact"
)

// Summary describes a whole capture: what `rewind info` shows.
type Summary struct {
	Header  Header
	Trailer *Trailer // nil when the file was not closed cleanly
	Stats   Stats

	// First and Last are the smallest and largest event timestamps
	// (monotonic ns), 0 when there are no events.
	First, Last uint64

	SnapshotProcesses int
	SnapshotSockets   int
	// Connections counts distinct connects and accepts seen.
	Connections int
	// BytesIn and BytesOut count bytes that calls moved (Data.Len, counted
	// once per call), by direction; CapturedBytes counts payload kept.
	BytesIn, BytesOut uint64
	CapturedBytes     uint64
	TLSBytes          uint64
	// OtherBytes counts the bytes of calls the recorder kept by length
	// only, their connection being of another protocol
	// (DataOtherProtocol).
	OtherBytes uint64
	// Comms counts data events per process name, for a quick "who talked".
	Comms map[string]uint64
	// Lost sums Loss events by source name.
	LostBySource map[string]uint64
	// Credentials counts data events whose payload holds an unmasked
	// credential header (Authorization, Cookie, …), by header name as
	// written.
	Credentials map[string]uint64
	// HTTP2Connections counts connections whose data starts with the
	// HTTP/2 client preface (prior knowledge, h2c or TLS with ALPN h2):
	// their header blocks are HPACK-compressed, so `record --redact` cannot
	// mask them.
	HTTP2Connections int
}

// Summarize reads a capture to its end and summarizes it. Damage is not an
// error: it shows in Summary.Stats. It fails only when r is not a readable
// capture at all.
func Summarize(r io.Reader) (*Summary, error) {
	rd, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return SummarizeReader(rd)
}

// SummarizeReader is [Summarize] for an opened reader (one told to
// [Reader.VerifyEnd], say), which it reads to its end; the caller closes
// it.
func SummarizeReader(rd *Reader) (*Summary, error) {
	s := &Summary{Header: rd.Header(), Comms: map[string]uint64{}, LostBySource: map[string]uint64{},
		Credentials: map[string]uint64{}}
	creds := redact.Default()
	var credSeen [8]string
	comm := map[uint32]string{}
	type connID struct {
		pid uint32
		fd  int32
		gen uint32
	}
	h2 := map[connID]bool{}
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if t := ev.Time(); t != 0 {
			if s.First == 0 || t < s.First {
				s.First = t
			}
			if t > s.Last {
				s.Last = t
			}
		}
		switch e := ev.(type) {
		case *Process:
			if rd.InSnapshot() {
				s.SnapshotProcesses++
			}
			comm[e.PID] = e.Comm
		case *Socket:
			s.SnapshotSockets++
		case *Connect, *Accept:
			s.Connections++
		case *Data:
			if e.Offset == 0 {
				if e.Dir == Ingress {
					s.BytesIn += uint64(e.Len)
				} else {
					s.BytesOut += uint64(e.Len)
				}
				if e.Source.IsTLS() {
					s.TLSBytes += uint64(e.Len)
				}
				if e.Flags&DataOtherProtocol != 0 {
					s.OtherBytes += uint64(e.Len)
				}
				name := comm[e.PID]
				if name == "" {
					name = "?"
				}
				s.Comms[name]++
			}
			s.CapturedBytes += uint64(len(e.Payload))
			if bytes.HasPrefix(e.Payload, http2Preface) {
				// Both ends of a loopback connection may be recorded:
				// each is counted, as each is a connection of a process.
				h2[connID{e.PID, e.FD, e.Gen}] = true
			}
			// Every credential header of a payload counts (a request
			// with Authorization and Cookie counts for both), each once.
			seen := 0
			creds.Each(e.Payload, func(name string) bool {
				if seen < len(credSeen) && !slices.Contains(credSeen[:seen], name) {
					credSeen[seen] = name
					seen++
					s.Credentials[name]++
				}
				return true
			})
		case *Loss:
			s.LostBySource[e.Source.String()] += e.Count
		}
	}
	s.HTTP2Connections = len(h2)
	s.Stats = *rd.Stats()
	s.Trailer = rd.Trailer()
	return s, nil
}

// http2Preface is how every HTTP/2 connection's client side begins.
var http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// Span returns the wall-clock times of the first and last events.
func (s *Summary) Span() (start, end time.Time) {
	if s.First == 0 {
		return time.Time{}, time.Time{}
	}
	return s.Header.Clock.Wall(s.First), s.Header.Clock.Wall(s.Last)
}

// TopComms returns up to n process names by data events, most first, ties
// by name.
func (s *Summary) TopComms(n int) []string {
	names := make([]string, 0, len(s.Comms))
	for c := range s.Comms {
		names = append(names, c)
	}
	sort.Slice(names, func(i, j int) bool {
		if s.Comms[names[i]] != s.Comms[names[j]] {
			return s.Comms[names[i]] > s.Comms[names[j]]
		}
		return names[i] < names[j]
	})
	if len(names) > n {
		names = names[:n]
	}
	return names
}
