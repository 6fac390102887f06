package http1

import (
	"slices"
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/analyze/bytetime"
)

// step is one call on a parser: data, or a gap of n bytes.
type step struct {
	data string
	gap  int64
}

func run(kind Kind, opts Options, steps []step, methods ...string) ([]snap, Stats) {
	p := NewParser(kind, opts)
	for _, m := range methods {
		p.ExpectResponseTo(m)
	}
	var out []snap
	emit := func(m *Message) { out = append(out, takeSnap(m)) }
	for i, s := range steps {
		ts := bytetime.Times{First: uint64(i*10 + 1), Last: uint64(i*10 + 2)}
		if s.gap > 0 {
			p.Gap(s.gap, ts, emit)
		} else {
			p.Feed([]byte(s.data), ts, emit)
		}
	}
	p.Close(bytetime.Times{First: 1000, Last: 1000}, emit)
	return out, p.Stats()
}

func TestGapsAndResync(t *testing.T) {
	tests := []struct {
		name      string
		kind      Kind
		opts      Options
		steps     []step
		want      []string
		wantStats Stats
	}{
		{name: "gap inside content-length body", kind: Response,
			steps:     []step{{data: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"}, {gap: 5}, {data: "xyzHTTP/1.1 204 No Content\r\n\r\n"}},
			want:      []string{`200 1.1 h=1 body=10 "ab" truncated bodytrunc`, "204 1.1 h=0 body=0"},
			wantStats: Stats{Messages: 2}},
		{name: "gap longer than the body", kind: Response,
			steps:     []step{{data: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"}, {gap: 50}, {data: "tail of something\r\nHTTP/1.1 204 No Content\r\n\r\n"}},
			want:      []string{`200 1.1 h=1 body=10 "ab" truncated bodytrunc`, "204 1.1 h=0 body=0 resynced"},
			wantStats: Stats{Messages: 2, Resyncs: 1, SkippedBytes: 42 + 19}},
		{name: "gap in headers", kind: Request,
			steps:     []step{{data: "GET /a HTTP/1.1\r\nHost: x\r\n"}, {gap: 100}, {data: "ent: foo\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 1\r\n\r\nz"}},
			want:      []string{"GET /a 1.1 h=1 body=0 incomplete", `POST /b 1.1 h=1 body=1 "z" resynced`},
			wantStats: Stats{Messages: 2, Resyncs: 1, SkippedBytes: 100 + 12}},
		{name: "gap inside chunk data", kind: Response,
			steps:     []step{{data: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nab"}, {gap: 3}, {data: "fgh\r\n0\r\n\r\n"}},
			want:      []string{`200 1.1 h=1 body=8 "ab" chunked truncated bodytrunc`},
			wantStats: Stats{Messages: 1}},
		{name: "gap to the end of a chunk and its CRLF (one cut write per chunk)", kind: Request,
			steps: []step{{data: "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabcd"}, {gap: 12 + 2},
				{data: "8\r\nab"}, {gap: 6 + 1}, {data: "\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n"}},
			want:      []string{`POST /up 1.1 h=1 body=24 "abcd" chunked truncated bodytrunc`, "GET /next 1.1 h=0 body=0"},
			wantStats: Stats{Messages: 2}},
		{name: "gap past a chunk into the next size line: length unknown", kind: Request,
			steps: []step{{data: "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabcd"}, {gap: 12 + 2 + 5},
				{data: "\r\nzz\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n"}},
			want:      []string{`POST /up 1.1 h=1 body=16 "abcd" chunked incomplete truncated bodytrunc lenunknown`, "GET /next 1.1 h=0 body=0 resynced"},
			wantStats: Stats{Messages: 2, Resyncs: 1, SkippedBytes: 7 + 11}},
		{name: "gap in chunk framing", kind: Response,
			steps:     []step{{data: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nabcdefgh\r\n"}, {gap: 3}, {data: "\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}},
			want:      []string{`200 1.1 h=1 body=8 "abcdefgh" chunked incomplete truncated lenunknown`, "200 1.1 h=1 body=0 resynced"},
			wantStats: Stats{Messages: 2, Resyncs: 1, SkippedBytes: 7}},
		{name: "joined mid-stream: mid body", kind: Request, opts: Options{MidStream: true},
			steps:     []step{{data: `"key": "value"}GET /x HTTP/1.1` + "\r\nHost: h\r\n\r\n"}},
			want:      []string{"GET /x 1.1 h=1 body=0 resynced"},
			wantStats: Stats{Messages: 1, Resyncs: 1, SkippedBytes: 15}},
		{name: "joined mid-stream: response mid headers", kind: Response, opts: Options{MidStream: true},
			steps:     []step{{data: "Type: text/html\r\nContent-Length: 3\r\n\r\nabc"}, {data: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"}},
			want:      []string{`200 1.1 h=1 body=1 "z" resynced`},
			wantStats: Stats{Messages: 1, Resyncs: 1, SkippedBytes: 41}},
		{name: "start line split across chunks while resyncing", kind: Request, opts: Options{MidStream: true},
			steps:     []step{{data: "zzzzzz\r\nxxPO"}, {data: "ST /a HT"}, {data: "TP/1.1\r\n\r\n"}},
			want:      []string{"POST /a 1.1 h=0 body=0 resynced"},
			wantStats: Stats{Messages: 1, Resyncs: 1, SkippedBytes: 10}},
		{name: "gap between messages", kind: Request,
			steps:     []step{{data: curlGet}, {gap: 80}, {data: curlGet}},
			want:      []string{"GET /index.html?q=1 1.1 h=3 body=0", "GET /index.html?q=1 1.1 h=3 body=0 resynced"},
			wantStats: Stats{Messages: 2, Resyncs: 1, SkippedBytes: 80}},
		{name: "tunnel bytes", kind: Response, steps: []step{{data: "HTTP/1.1 101 Switching Protocols\r\n\r\nabc"}, {gap: 10}, {data: "de"}},
			want: []string{"101 1.1 h=0 body=0 upgrade"}, wantStats: Stats{Messages: 1, TunnelBytes: 15}},
		{name: "header limit", kind: Request, opts: Options{MaxHeaderBytes: 64},
			steps:     []step{{data: "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 100) + "\r\n\r\nGET /ok HTTP/1.1\r\n\r\n"}},
			want:      []string{"GET / 1.1 h=0 body=0 ERR(header block exceeds the size limit)", "GET /ok 1.1 h=0 body=0 resynced"},
			wantStats: Stats{Messages: 2, Errors: 1, Resyncs: 1, SkippedBytes: 107}},
		{name: "body capture cap", kind: Response, opts: Options{MaxBodyCapture: 4},
			steps:     []step{{data: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"}},
			want:      []string{`200 1.1 h=1 body=10 "0123" bodytrunc`},
			wantStats: Stats{Messages: 1}},
		{name: "no capture", kind: Response, opts: Options{},
			steps:     []step{{data: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"}},
			want:      []string{`200 1.1 h=1 body=10 bodytrunc`},
			wantStats: Stats{Messages: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			if opts.MaxBodyCapture == 0 && tc.name != "no capture" {
				opts.MaxBodyCapture = DefaultMaxBodyCapture
			}
			out, st := run(tc.kind, opts, tc.steps)
			got := completes(t, out)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if st != tc.wantStats {
				t.Errorf("stats %+v, want %+v", st, tc.wantStats)
			}
		})
	}
}

func TestTimes(t *testing.T) {
	p := NewParser(Response, DefaultOptions())
	var got [][3]uint64
	emit := func(m *Message) {
		if m.State == Complete {
			got = append(got, [3]uint64{m.Start, m.HeadersDone, m.End})
		}
	}
	p.Feed([]byte("HTTP/1.1 200 OK\r\nContent-"), bytetime.Times{First: 10, Last: 11}, emit)
	p.Feed([]byte("Length: 4\r\n\r\nab"), bytetime.Times{First: 20, Last: 21}, emit)
	p.Feed([]byte("cdHTTP/1.1 204 No Content\r\n"), bytetime.Times{First: 30, Last: 31}, emit)
	p.Feed([]byte("\r\n"), bytetime.Times{First: 40, Last: 41}, emit)
	want := [][3]uint64{{10, 21, 31}, {30, 41, 41}}
	if !slices.Equal(got, want) {
		t.Errorf("times %v, want %v", got, want)
	}
}

func TestHeaderAccessors(t *testing.T) {
	p := NewParser(Request, DefaultOptions())
	in := "POST /p HTTP/1.1\r\nHost: a\r\nX-Rep: 1\r\nx-rep: 2\r\nX-Fold: a\r\n b\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT-One: x\r\n\r\n"
	calls := 0
	p.Feed([]byte(in), bytetime.Times{}, func(m *Message) {
		calls++
		if v, ok := m.Header("x-REP"); !ok || string(v) != "1" {
			t.Errorf("Header(x-REP) = %q %v", v, ok)
		}
		if v, _ := m.Header("X-Fold"); string(v) != "a b" {
			t.Errorf("folded %q", v)
		}
		if _, ok := m.Header("missing"); ok {
			t.Error("missing header found")
		}
		if m.NumHeaders() != 5 {
			t.Errorf("NumHeaders %d", m.NumHeaders())
		}
		if n, v := m.HeaderAt(2); string(n) != "x-rep" || string(v) != "2" {
			t.Errorf("HeaderAt(2) = %q %q", n, v)
		}
		if m.State == Complete {
			if v, ok := m.Trailer("t-one"); !ok || string(v) != "x" || m.NumTrailers() != 1 {
				t.Errorf("trailer %q %v", v, ok)
			}
			if !strings.HasPrefix(string(m.RawHeader()), "POST /p") {
				t.Errorf("raw header %q", m.RawHeader())
			}
		}
	})
	if calls != 2 {
		t.Errorf("%d emissions", calls)
	}
}
