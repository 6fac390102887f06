package http1

import (
	"fmt"
	"strings"

	"github.com/rewind-tools/rewind/analyze/bytetime"
)

// snap is a deep copy of an emitted Message, for comparisons.
type snap struct {
	State                   State
	Method, Target          string
	Major, Minor, Status    int
	Reason                  string
	Headers, Trailers       []string // "name: value"
	ContentLength           int64
	Chunked, ConnClose      bool
	BodyBytes               int64
	Body                    string
	BodyTruncated           bool
	HeaderBytes, WireBytes  int64
	Incomplete, Truncated   bool
	LengthUnknown           bool
	Interim, Upgrade        bool
	Resynced, Error         bool
	Err                     string
	Start, HeadersDone, End uint64
}

func takeSnap(m *Message) snap {
	s := snap{
		State: m.State, Method: m.Method, Target: string(m.Target),
		Major: m.ProtoMajor, Minor: m.ProtoMinor, Status: m.StatusCode, Reason: string(m.Reason),
		ContentLength: m.ContentLength, Chunked: m.Chunked, ConnClose: m.ConnClose,
		BodyBytes: m.BodyBytes, Body: string(m.Body), BodyTruncated: m.BodyTruncated,
		HeaderBytes: m.HeaderBytes, WireBytes: m.WireBytes,
		Incomplete: m.Incomplete, Truncated: m.Truncated, LengthUnknown: m.LengthUnknown, Interim: m.Interim, Upgrade: m.Upgrade,
		Resynced: m.Resynced, Error: m.Error, Err: m.Err,
		Start: m.Start, HeadersDone: m.HeadersDone, End: m.End,
	}
	for n, v := range m.Headers() {
		s.Headers = append(s.Headers, string(n)+": "+string(v))
	}
	for n, v := range m.Trailers() {
		s.Trailers = append(s.Trailers, string(n)+": "+string(v))
	}
	return s
}

func (s snap) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v %s %s HTTP/%d.%d %d %q hdr=%q trl=%q cl=%d chunked=%v body=%d %q",
		s.State, s.Method, s.Target, s.Major, s.Minor, s.Status, s.Reason, s.Headers, s.Trailers,
		s.ContentLength, s.Chunked, s.BodyBytes, s.Body)
	for _, f := range []struct {
		on   bool
		name string
	}{{s.Incomplete, "incomplete"}, {s.Truncated, "truncated"}, {s.Interim, "interim"}, {s.Upgrade, "upgrade"},
		{s.Resynced, "resynced"}, {s.BodyTruncated, "bodytrunc"}, {s.ConnClose, "close"}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	if s.Error {
		fmt.Fprintf(&b, " ERR(%s)", s.Err)
	}
	return b.String()
}

// collect feeds the chunks to a new parser and returns every emission.
func collect(kind Kind, opts Options, chunks [][]byte, close bool, methods ...string) ([]snap, Stats) {
	p := NewParser(kind, opts)
	for _, m := range methods {
		p.ExpectResponseTo(m)
	}
	var out []snap
	emit := func(m *Message) { out = append(out, takeSnap(m)) }
	for i, c := range chunks {
		p.Feed(c, bytetime.Times{First: uint64(i*10 + 1), Last: uint64(i*10 + 2)}, emit)
	}
	if close {
		p.Close(bytetime.Times{First: 1000, Last: 1000}, emit)
	}
	return out, p.Stats()
}
