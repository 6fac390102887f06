package http1

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/analyze/bytetime"
)

// short summarizes a Complete emission for table tests.
func short(s snap) string {
	var b strings.Builder
	if s.Status != 0 {
		fmt.Fprintf(&b, "%d", s.Status)
	} else {
		fmt.Fprintf(&b, "%s %s", s.Method, s.Target)
	}
	fmt.Fprintf(&b, " %d.%d h=%d", s.Major, s.Minor, len(s.Headers))
	if len(s.Trailers) > 0 {
		fmt.Fprintf(&b, " t=%d", len(s.Trailers))
	}
	fmt.Fprintf(&b, " body=%d", s.BodyBytes)
	if s.Body != "" {
		fmt.Fprintf(&b, " %q", s.Body)
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{s.Chunked, "chunked"}, {s.Incomplete, "incomplete"}, {s.Truncated, "truncated"}, {s.Interim, "interim"},
		{s.Upgrade, "upgrade"}, {s.Resynced, "resynced"}, {s.BodyTruncated, "bodytrunc"}, {s.ConnClose, "close"},
		{s.LengthUnknown, "lenunknown"}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	if s.Error {
		fmt.Fprintf(&b, " ERR(%s)", s.Err)
	}
	return b.String()
}

// completes returns the summaries of the Complete emissions and checks that
// HeadersComplete and Complete alternate properly.
func completes(t *testing.T, out []snap) []string {
	t.Helper()
	var res []string
	open := false
	for _, s := range out {
		switch s.State {
		case HeadersComplete:
			if open {
				t.Errorf("two HeadersComplete in a row: %v", s)
			}
			open = true
		case Complete:
			open = false
			res = append(res, short(s))
		}
	}
	return res
}

// untimed drops the fields that depend on how the stream was cut.
func untimed(out []snap) []snap {
	r := slices.Clone(out)
	for i := range r {
		r[i].Start, r[i].HeadersDone, r[i].End = 0, 0, 0
	}
	return r
}

type parseCase struct {
	name    string
	kind    Kind
	in      string
	methods []string // ExpectResponseTo, responses only
	noClose bool
	want    []string
}

const curlGet = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"

var parseCases = []parseCase{
	{name: "simple get", kind: Request, in: curlGet, want: []string{"GET /index.html?q=1 1.1 h=3 body=0"}},
	{name: "0.9 simple request", kind: Request, in: "GET /old\r\n", want: []string{"GET /old 0.9 h=0 body=0"}},
	{name: "1.0 close", kind: Request, in: "GET / HTTP/1.0\r\n\r\nGET /ignored HTTP/1.0\r\n\r\n", want: []string{"GET / 1.0 h=0 body=0 close"}},
	{name: "1.0 keep-alive", kind: Request, in: "GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		want: []string{"GET /a 1.0 h=1 body=0", "GET /b 1.0 h=1 body=0"}},
	{name: "obs-fold, repeats, case", kind: Request, in: "GET / HTTP/1.1\r\nX-A: one\r\n  two\r\n\tthree\r\nx-a: 2\r\nHOST: h\r\n\r\n",
		want: []string{"GET / 1.1 h=3 body=0 ERR(obsolete line folding in header field)"}},
	{name: "content-length pipelined", kind: Request,
		in:   "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc\r\nPUT /b HTTP/1.1\r\nContent-Length: 0\r\n\r\nDELETE /c HTTP/1.1\r\n\r\n",
		want: []string{`POST /a 1.1 h=1 body=3 "abc"`, "PUT /b 1.1 h=1 body=0", "DELETE /c 1.1 h=0 body=0"}},
	{name: "chunked with extensions and trailers", kind: Request,
		in:   "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;a=b;c=\"d e\"\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n",
		want: []string{`POST /up 1.1 h=1 t=2 body=23 "Wikipedia in\r\n\r\nchunks." chunked`}},
	{name: "TE wins over CL", kind: Request,
		in:   "POST / HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
		want: []string{`POST / 1.1 h=2 body=1 "x" chunked ERR(both Transfer-Encoding and Content-Length (Transfer-Encoding wins))`, "GET /next 1.1 h=0 body=0"}},
	{name: "request TE not chunked", kind: Request,
		in:   "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nxyz\r\nGET /next HTTP/1.1\r\n\r\n",
		want: []string{"POST / 1.1 h=1 body=0 ERR(request Transfer-Encoding does not end in chunked)", "GET /next 1.1 h=0 body=0 resynced"}},
	{name: "conflicting CL", kind: Request,
		in:   "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		want: []string{"POST / 1.1 h=2 body=0 ERR(conflicting Content-Length values)"}},
	{name: "bare LF", kind: Request, in: "GET / HTTP/1.1\nHost: a\n\n",
		want: []string{"GET / 1.1 h=1 body=0 ERR(line ends with LF without CR)"}},
	{name: "expect 100-continue", kind: Request,
		in:   "PUT /f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
		want: []string{`PUT /f 1.1 h=2 body=5 "hello"`}},
	{name: "connect request", kind: Request, in: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01\x02\x00",
		want: []string{"CONNECT example.com:443 1.1 h=1 body=0 upgrade"}},
	{name: "websocket request, accepted", kind: Request,
		in:   "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58GET / HTTP/1.1\r\n\r\n",
		want: []string{"GET /ws 1.1 h=2 body=0 upgrade"}},
	{name: "websocket request, refused", kind: Request,
		in:   "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /again HTTP/1.1\r\n\r\n",
		want: []string{"GET /ws 1.1 h=2 body=0 upgrade", "GET /again 1.1 h=0 body=0"}},
	{name: "garbage then request (not mid-stream: error)", kind: Request, in: "\x00\x01garbage\r\nGET / HTTP/1.1\r\n\r\n",
		want: []string{"  0.0 h=0 body=0 ERR(invalid request method)", "GET / 1.1 h=0 body=0 resynced"}},
	{name: "cut in headers", kind: Request, in: "GET / HTTP/1.1\r\nHost: a\r\n",
		want: []string{"GET / 1.1 h=1 body=0 incomplete"}},
	{name: "cut in body", kind: Request, in: "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
		want: []string{`POST / 1.1 h=1 body=3 "abc" incomplete`}},

	{name: "response CL", kind: Response, in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
		want: []string{`200 1.1 h=2 body=5 "hello"`}},
	{name: "response without reason", kind: Response, in: "HTTP/1.1 204\r\n\r\n", want: []string{"204 1.1 h=0 body=0"}},
	{name: "100 continue then 200", kind: Response, in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
		want: []string{"100 1.1 h=0 body=0 interim", "201 1.1 h=1 body=0"}},
	{name: "HEAD response", kind: Response, methods: []string{"HEAD", "GET"},
		in:   "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		want: []string{"200 1.1 h=1 body=0", `200 1.1 h=1 body=2 "ok"`}},
	{name: "204 and 304 have no body", kind: Response,
		in:   "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
		want: []string{"204 1.1 h=0 body=0", "304 1.1 h=1 body=0", `200 1.1 h=1 body=1 "x"`}},
	{name: "until close 1.0", kind: Response, in: "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>bye",
		want: []string{`200 1.0 h=1 body=9 "<html>bye" close`}},
	{name: "until close 1.1 Connection close", kind: Response, in: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it",
		want: []string{`200 1.1 h=1 body=9 "all of it" close`}},
	{name: "chunked response", kind: Response, in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		want: []string{`200 1.1 h=1 body=3 "abc" chunked`}},
	{name: "response TE not chunked: until close", kind: Response, in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz",
		want: []string{`200 1.1 h=1 body=3 "zzz"`}},
	{name: "101 switching protocols", kind: Response,
		in:   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
		want: []string{"101 1.1 h=2 body=0 upgrade"}},
	{name: "CONNECT 200 tunnel", kind: Response, methods: []string{"CONNECT"},
		in:   "HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03",
		want: []string{"200 1.1 h=0 body=0 upgrade"}},
	{name: "CONNECT 407 not a tunnel", kind: Response, methods: []string{"CONNECT"},
		in:   "HTTP/1.1 407 Proxy Auth\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		want: []string{"407 1.1 h=1 body=0", "200 1.1 h=1 body=0"}},
	{name: "response cut in chunk", kind: Response, in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
		want: []string{`200 1.1 h=1 body=3 "abc" chunked incomplete`}},
	{name: "invalid chunk size", kind: Response, in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		want: []string{"200 1.1 h=1 body=0 chunked ERR(invalid chunk size)", "200 1.1 h=1 body=0 resynced"}},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			whole, _ := collect(tc.kind, DefaultOptions(), [][]byte{in}, !tc.noClose, tc.methods...)
			got := completes(t, whole)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			checkSplits(t, tc.kind, in, !tc.noClose, tc.methods, whole)
		})
	}
}

// checkSplits feeds in cut at every offset (two pieces), and byte by byte,
// and expects the same emissions as in one piece.
func checkSplits(t *testing.T, kind Kind, in []byte, close bool, methods []string, whole []snap) {
	t.Helper()
	want := untimed(whole)
	for i := 1; i < len(in); i++ {
		out, _ := collect(kind, DefaultOptions(), [][]byte{in[:i], in[i:]}, close, methods...)
		if got := untimed(out); !slices.EqualFunc(got, want, equalSnap) {
			t.Fatalf("split at %d differs:\n  %v\nwant\n  %v", i, got, want)
		}
	}
	out, _ := collect(kind, DefaultOptions(), splitEvery(in, 1), close, methods...)
	if got := untimed(out); !slices.EqualFunc(got, want, equalSnap) {
		t.Fatalf("byte by byte differs:\n  %v\nwant\n  %v", got, want)
	}
}

func equalSnap(a, b snap) bool { return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b) }

// TestVcharRun checks the word-at-a-time scan against the table, for every
// byte value at every position of runs of several lengths.
func TestVcharRun(t *testing.T) {
	for n := 0; n <= 20; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("v", n))
				b[pos] = byte(c)
				want := 0
				for want < len(b) && vchar[b[want]] {
					want++
				}
				if got := vcharRun(b); got != want {
					t.Fatalf("len %d, byte %#x at %d: %d, want %d", n, c, pos, got, want)
				}
			}
		}
	}
}

// checkHeadSpans checks that HeadSpans, when it can, gives what HeadStrings
// and Headers give.
func checkHeadSpans(t *testing.T, m *Message) {
	t.Helper()
	head := string(m.RawHeader())
	var want []string
	for n, v := range m.Headers() {
		want = append(want, string(n)+": "+string(v))
	}
	var viaStrings []string
	first := m.HeadStrings(head, func(n, v string) { viaStrings = append(viaStrings, n+": "+v) })
	if !slices.Equal(viaStrings, want) {
		t.Fatalf("HeadStrings %q, Headers %q", viaStrings, want)
	}
	spanFirst, spans, ok := m.HeadSpans(head, nil)
	if !ok {
		if len(spans) != 0 {
			t.Fatalf("HeadSpans failed but appended %d spans", len(spans))
		}
		return
	}
	var viaSpans []string
	for _, sp := range spans {
		viaSpans = append(viaSpans, sp.Name(head)+": "+sp.Value(head))
	}
	if spanFirst != first || !slices.Equal(viaSpans, want) {
		t.Fatalf("HeadSpans %q %q, HeadStrings %q %q", spanFirst, viaSpans, first, want)
	}
}

// TestHeadSpans: a plain head gives spans; a head with an obs-folded value
// gives none (the value is not a run of the head), and HeadStrings serves.
func TestHeadSpans(t *testing.T) {
	for _, c := range []struct {
		in    string
		spans bool
	}{
		{"GET /a?b HTTP/1.1\r\nHost: x\r\nAccept:  */*  \r\nEmpty:\r\n\r\n", true},
		{"GET /a HTTP/1.1\r\nHost: x\r\nX-Long: one\r\n two\r\n\r\n", false},
		{"GET / HTTP/1.1\r\n\r\n", true},
	} {
		p := NewParser(Request, DefaultOptions())
		n := 0
		p.Feed([]byte(c.in), bytetime.Times{First: 1, Last: 1}, func(m *Message) {
			if m.State != Complete {
				return
			}
			n++
			checkHeadSpans(t, m)
			if _, _, ok := m.HeadSpans(string(m.RawHeader()), nil); ok != c.spans {
				t.Errorf("%q: HeadSpans ok %v", c.in, ok)
			}
		})
		if n != 1 {
			t.Fatalf("%q: %d messages", c.in, n)
		}
	}
}

func TestConnectionTokens(t *testing.T) {
	for _, c := range []struct {
		v                    string
		close, keep, upgrade bool
	}{
		{"close", true, false, false},
		{"Keep-Alive", false, true, false},
		{"keep-alive, Upgrade", false, true, true},
		{" upgrade ,\tCLOSE ", true, false, true},
		{"keep-alived, closed, upgrades", false, false, false},
		{",,", false, false, false},
		{"", false, false, false},
		{"TE, close", true, false, false},
	} {
		cl, ka, up := connectionTokens([]byte(c.v))
		if cl != c.close || ka != c.keep || up != c.upgrade {
			t.Errorf("%q: close %v keep-alive %v upgrade %v", c.v, cl, ka, up)
		}
	}
}

// TestSloppyRequestLine: a request line with more words than three, which a
// lenient server answers, keeps its method, its first word as the target and
// its version, and is flagged.
func TestSloppyRequestLine(t *testing.T) {
	got, _ := collect(Request, Options{}, [][]byte{[]byte("CONNECT mail.example:25 / HTTP/1.0\r\nHost: mail.example\r\n\r\n")}, false)
	if len(got) == 0 {
		t.Fatal("no message")
	}
	m := got[len(got)-1]
	if m.Method != "CONNECT" || m.Target != "mail.example:25" || m.Major != 1 || m.Minor != 0 || !m.Error || m.Err != errTargetSpaces {
		t.Errorf("got %v", m)
	}
}

// TestRepeatedBlocks: a header block the same as the previous message's
// takes that message's fields (fastBlock), moved to its own offsets; every
// message must say what a parser that saw it alone says, whether the block
// repeats, grows, shrinks, changes, or takes the line-by-line path.
func TestRepeatedBlocks(t *testing.T) {
	reqs := []string{
		"GET /a HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
		"GET /much/longer/path HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
		"GET /b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
		"GET /b HTTP/1.1\r\nHost: y\r\nAccept: */*\r\n\r\n",
		"GET /c HTTP/1.1\r\nHost: y\r\nAccept: */*\r\nX: 1\r\n\r\n",
		"GET /c HTTP/1.1\r\nHost: y\r\nAccept: */*\r\n\r\n",
		"POST /d HTTP/1.1\r\nHost: y\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
		"POST /d HTTP/1.1\r\nHost: y\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\nT: 2\r\n\r\n",
		"GET /e HTTP/1.1\r\nHost: y\r\nX-Long: one\r\n two\r\n\r\n",
		"GET /e HTTP/1.1\r\nHost: y\r\nX-Long: one\r\n two\r\n\r\n",
		"GET /f HTTP/1.1\r\n\r\n",
		"GET /f HTTP/1.1\r\n\r\n",
		"GET /g HTTP/1.1\r\nHost: y\r\nAccept: */*\r\n\r\n",
		"GET /g HTTP/1.1\r\nHost: y\r\nAccept: */*\r\n\r\n",
	}
	var want []snap
	for _, r := range reqs {
		out, _ := collect(Request, DefaultOptions(), [][]byte{[]byte(r)}, false)
		want = append(want, untimed(out)...)
	}
	check := func(name string, chunks [][]byte) {
		t.Helper()
		p := NewParser(Request, DefaultOptions())
		var got []snap
		for _, c := range chunks {
			p.Feed(c, bytetime.Times{First: 1, Last: 2}, func(m *Message) {
				got = append(got, takeSnap(m))
				if m.State == Complete {
					checkHeadSpans(t, m)
				}
			})
		}
		if got := untimed(got); !slices.EqualFunc(got, want, equalSnap) {
			t.Fatalf("%s:\n  %v\nwant\n  %v", name, got, want)
		}
	}
	var each [][]byte
	for _, r := range reqs {
		each = append(each, []byte(r))
	}
	check("one message a chunk", each)
	check("one chunk", [][]byte{[]byte(strings.Join(reqs, ""))})
	check("byte by byte", splitEvery([]byte(strings.Join(reqs, "")), 1))
}
