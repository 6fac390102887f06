package http1

import (
	"slices"
	"testing"

	"github.com/rewind-tools/rewind/analyze/bytetime"
)

// FuzzParser feeds arbitrary bytes as requests and responses, cut at
// fuzzer-chosen points with fuzzer-chosen gaps. It checks that nothing
// panics or hangs, that emissions are well formed and bounded, and that
// cutting the stream (without gaps) never changes what is parsed.
func FuzzParser(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.kind == Response, []byte(tc.in), uint64(0x1234567), false)
	}
	f.Add(false, []byte(curlGet+curlGet), uint64(7), true)
	f.Add(true, []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=\"y\"\r\nhello\r\n0\r\nA: b\r\n\r\n"), uint64(99), true)
	f.Fuzz(func(t *testing.T, response bool, in []byte, cuts uint64, gaps bool) {
		kind := Request
		if response {
			kind = Response
		}
		opts := Options{MaxBodyCapture: 16, MaxHeaderBytes: 256, MidStream: cuts&1 == 1}
		// Pieces: sizes from the bits of cuts.
		var steps [][]byte
		rest := in
		c := cuts
		for len(rest) > 0 {
			n := int(c%13) + 1
			c = c/13 + 1
			n = min(n, len(rest))
			steps = append(steps, rest[:n])
			rest = rest[n:]
		}
		check := func(m *Message) {
			if len(m.Body) > opts.MaxBodyCapture || len(m.RawHeader()) > opts.MaxHeaderBytes {
				t.Fatalf("unbounded message: body %d, header %d", len(m.Body), len(m.RawHeader()))
			}
			if m.Error != (m.Err != "") {
				t.Fatalf("Error %v with Err %q", m.Error, m.Err)
			}
			for range m.Headers() {
			}
			m.Header("content-length")
			checkHeadSpans(t, m)
		}
		var whole, split []snap
		p := NewParser(kind, opts)
		p.ExpectResponseTo("HEAD")
		p.ExpectResponseTo("CONNECT")
		p.Feed(in, bytetime.Times{First: 1, Last: 1}, func(m *Message) { check(m); whole = append(whole, takeSnap(m)) })
		p.Close(bytetime.Times{First: 2, Last: 2}, func(m *Message) { check(m); whole = append(whole, takeSnap(m)) })

		p = NewParser(kind, opts)
		p.ExpectResponseTo("HEAD")
		p.ExpectResponseTo("CONNECT")
		emit := func(m *Message) { check(m); split = append(split, takeSnap(m)) }
		for _, s := range steps {
			p.Feed(s, bytetime.Times{First: 1, Last: 1}, emit)
		}
		p.Close(bytetime.Times{First: 2, Last: 2}, emit)
		if !slices.EqualFunc(untimed(whole), untimed(split), equalSnap) {
			t.Fatalf("split changes the result:\nwhole %v\nsplit %v", whole, split)
		}

		if gaps {
			p = NewParser(kind, opts)
			for i, s := range steps {
				p.Feed(s, bytetime.Times{First: uint64(i), Last: uint64(i)}, check)
				if i%3 == 1 {
					p.Gap(int64(len(s)), bytetime.Times{First: uint64(i), Last: uint64(i)}, check)
				}
			}
			p.Close(bytetime.Times{}, check)
			st := p.Stats()
			if st.SkippedBytes < 0 || st.TunnelBytes < 0 || st.Messages < st.Errors {
				t.Fatalf("stats %+v", st)
			}
		}
	})
}
