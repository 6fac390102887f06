package analyze_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/capturetest"
	"github.com/rewind-tools/rewind/capture/redact"
)

// collect is a Sink that keeps every exchange.
type collect struct {
	info *analyze.CaptureInfo
	exs  []*analyze.Exchange
	sum  *analyze.Summary
}

func (c *collect) Begin(i *analyze.CaptureInfo) error { c.info = i; return nil }
func (c *collect) Exchange(e *analyze.Exchange) error { c.exs = append(c.exs, e); return nil }
func (c *collect) End(s *analyze.Summary) error       { c.sum = s; return nil }

func replay(t *testing.T, b *capturetest.Builder, opts analyze.Options) *collect {
	t.Helper()
	var c collect
	replayTo(t, b, opts, &c)
	return &c
}

// replayTo replays b's capture into sinks.
func replayTo(t *testing.T, b *capturetest.Builder, opts analyze.Options, sinks ...analyze.Sink) {
	t.Helper()
	in, err := analyze.OpenReader(bytes.NewReader(b.Bytes(t)), "test.rwd")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := analyze.Replay(context.Background(), in.Source, in.Info, opts, sinks...); err != nil {
		t.Fatal(err)
	}
}

// line renders the essentials of an exchange for comparison.
func line(e *analyze.Exchange) string {
	return fmt.Sprintf("%s %s %s %s %s%s -> %d req=%d resp=%d flags=%v",
		e.Conn.ID, e.Conn.Role, e.Proto, e.Request.Method, e.Request.Host, e.Request.Path, e.Response.Status,
		e.Request.BodyBytes, e.Response.BodyBytes, e.Flags.Names())
}

func TestServerKeepAliveAndPipelining(t *testing.T) {
	b := capturetest.New()
	srv := b.Process(100, "nginx")
	c := srv.Accept(0, "127.0.0.1:8080", "127.0.0.1:40000")
	c.Read("GET /a HTTP/1.1\r\nHost: example\r\n\r\n")
	b.Advance(3 * time.Millisecond)
	c.Write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
	// pipelined: two requests in one read, responses in separate writes
	c.Read("POST /b HTTP/1.1\r\nHost: example\r\nContent-Length: 3\r\n\r\nabcHEAD /c HTTP/1.1\r\nHost: example\r\n\r\n")
	c.Write("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n")
	c.Write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
	c.Read("GET /missing HTTP/1.1\r\nHost: example\r\n\r\n")
	c.Write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
	c.Close()
	got := replay(t, b, analyze.Options{})
	want := []string{
		"c1 server HTTP/1.1 GET example/a -> 200 req=0 resp=5 flags=[]",
		"c1 server HTTP/1.1 POST example/b -> 201 req=3 resp=3 flags=[]",
		"c1 server HTTP/1.1 HEAD example/c -> 200 req=0 resp=0 flags=[]",
		"c1 server HTTP/1.1 GET example/missing -> 404 req=0 resp=0 flags=[]",
	}
	if len(got.exs) != len(want) {
		for _, e := range got.exs {
			t.Log(line(e))
		}
		t.Fatalf("%d exchanges, want %d", len(got.exs), len(want))
	}
	for i, e := range got.exs {
		if l := line(e); l != want[i] {
			t.Errorf("exchange %d:\n got %s\nwant %s", i, l, want[i])
		}
	}
	first := got.exs[0]
	// request read at +10µs (exit), response written at entry 3ms+1ms later
	if first.Timings.Server <= 0 || first.Timings.Total < first.Timings.Server || first.Timings.Transfer < 0 {
		t.Errorf("timings %+v", first.Timings)
	}
	if first.Conn.Comm != "nginx" || first.Conn.Local.String() != "127.0.0.1:8080" {
		t.Errorf("conn %+v", first.Conn)
	}
}

// TestDeepPipelining answers pipelined requests in uneven bursts, so that
// the queue of requests waiting for a response is drained, refilled and
// compacted: every response pairs with its own request, in order, and the
// requests left unanswered at the close are reported as such.
func TestDeepPipelining(t *testing.T) {
	b := capturetest.New()
	srv := b.Process(100, "nginx")
	c := srv.Accept(0, "127.0.0.1:8080", "127.0.0.1:40000")
	sent, answered := 0, 0
	for _, burst := range [][2]int{{5, 5}, {40, 3}, {1, 30}, {200, 150}, {0, 50}, {7, 2}} {
		var reqs strings.Builder
		for range burst[0] {
			fmt.Fprintf(&reqs, "GET /r%d HTTP/1.1\r\nHost: h\r\n\r\n", sent)
			sent++
		}
		if reqs.Len() > 0 {
			c.Read(reqs.String())
		}
		for range burst[1] {
			body := fmt.Sprint(answered)
			c.Write(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
			answered++
		}
	}
	c.Close()
	got := replay(t, b, analyze.Options{})
	if len(got.exs) != sent {
		t.Fatalf("%d exchanges, want %d", len(got.exs), sent)
	}
	for i, e := range got.exs {
		if want := fmt.Sprintf("/r%d", i); e.Request.Path != want {
			t.Fatalf("exchange %d: path %s, want %s", i, e.Request.Path, want)
		}
		answeredOne := i < answered
		if answeredOne != (e.Response.Status == 200) || answeredOne != (e.Flags&analyze.FlagNoResponse == 0) {
			t.Fatalf("exchange %d: status %d flags %v, answered %v", i, e.Response.Status, e.Flags, answeredOne)
		}
		if answeredOne && string(e.Response.Body) != fmt.Sprint(i) {
			t.Fatalf("exchange %d: response body %d bytes: paired with another request's response", i, e.Response.BodyBytes)
		}
	}
}

// TestHeaderFields: the fields the sinks and the filter see are the
// message's, in order, whether they were kept as spans of the head until
// delivery or, for an obs-folded value, made strings at once; and the Host
// comes from the fields either way.
func TestHeaderFields(t *testing.T) {
	b := capturetest.New()
	srv := b.Process(100, "nginx")
	c := srv.Accept(0, "127.0.0.1:8080", "127.0.0.1:40000")
	c.Read("GET /plain HTTP/1.1\r\nHOST: a.example\r\nX-Tag:  keep \r\nAccept: */*\r\n\r\n")
	c.Write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
	c.Read("GET /folded HTTP/1.1\r\nHost: b.example\r\nX-Tag: one\r\n two\r\n\r\n")
	c.Write("HTTP/1.1 204 No Content\r\nX-Tag: drop\r\n\r\n")
	c.Close()
	want := []struct {
		host      string
		req, resp analyze.Fields
	}{
		{"a.example",
			analyze.Fields{{"HOST", "a.example"}, {"X-Tag", "keep"}, {"Accept", "*/*"}},
			analyze.Fields{{"Content-Type", "text/plain"}, {"Content-Length", "2"}}},
		{"b.example",
			analyze.Fields{{"Host", "b.example"}, {"X-Tag", "one two"}},
			analyze.Fields{{"X-Tag", "drop"}}},
	}
	var filtered []string
	got := replay(t, b, analyze.Options{Filter: func(ex *analyze.Exchange) bool {
		filtered = append(filtered, ex.Request.Header.Get("x-tag"))
		return ex.Response.Header.Get("X-Tag") != "drop"
	}})
	if !slices.Equal(filtered, []string{"keep", "one two"}) {
		t.Errorf("the filter saw X-Tag %q", filtered)
	}
	if len(got.exs) != 1 {
		t.Fatalf("%d exchanges after the filter, want 1", len(got.exs))
	}
	for i, opts := range []analyze.Options{{}, {Redact: redact.Default()}, {}} {
		got := replay(t, b, opts)
		if i == 2 {
			// With a stream sink the exchanges reach the sinks on the
			// replay's goroutine.
			got = &collect{}
			replayTo(t, b, opts, got, noStreams{})
		}
		if len(got.exs) != len(want) {
			t.Fatalf("run %d: %d exchanges", i, len(got.exs))
		}
		for j, ex := range got.exs {
			w := want[j]
			if ex.Request.Host != w.host || !slices.Equal(ex.Request.Header, w.req) || !slices.Equal(ex.Response.Header, w.resp) {
				t.Errorf("run %d exchange %d: host %q\nrequest %q\nresponse %q", i, j, ex.Request.Host, ex.Request.Header, ex.Response.Header)
			}
		}
	}
}

// lookupCollect is a sink that reads header fields only by name.
type lookupCollect struct{ collect }

func (*lookupCollect) HeaderLookupOnly() bool { return true }

// TestHeaderLookupSink checks that sinks reading fields only by name get
// them as spans, unless redaction has to change one of a message's fields,
// and that a sink ranging over Header makes every sink get it whole.
func TestHeaderLookupSink(t *testing.T) {
	b := capturetest.New()
	srv := b.Process(100, "nginx")
	c := srv.Accept(0, "127.0.0.1:8080", "127.0.0.1:40000")
	c.Read("GET /a HTTP/1.1\r\nHost: a.example\r\nX-Tag: keep\r\n\r\n")
	c.Write("HTTP/1.1 200 OK\r\nX-Content-Type: no\r\ncontent-type: text/plain\r\nX-Note: token=abc\r\nContent-Type: second\r\nContent-Length: 2\r\n\r\nok")
	c.Read("GET /b HTTP/1.1\r\nHost: b.example\r\nCOOKIE: secret\r\n\r\n")
	c.Write("HTTP/1.1 204 No Content\r\nX-Tag: one\r\n two\r\n\r\n")
	c.Close()
	// materialized reports which messages came with Header set, and
	// checks what HeaderValue finds either way.
	materialized := func(name string, got *collect, cookie, note string) []bool {
		t.Helper()
		if len(got.exs) != 2 {
			t.Fatalf("%s: %d exchanges", name, len(got.exs))
		}
		a, bx := got.exs[0], got.exs[1]
		for _, c := range []struct{ got, want string }{
			{a.Request.HeaderValue("x-tag"), "keep"},
			{a.Request.HeaderValue("X-Tagg"), ""},
			{a.Response.HeaderValue("CONTENT-TYPE"), "text/plain"},
			{a.Request.HeaderValue("Content-Type"), ""},
			{a.Request.HeaderValue("host"), "a.example"},
			{a.Response.HeaderValue("Host"), ""},
			{a.Response.HeaderValue("x-note"), note},
			{bx.Request.Host, "b.example"},
			{bx.Request.HeaderValue("Cookie"), cookie},
			{bx.Response.HeaderValue("x-tag"), "one two"},
		} {
			if c.got != c.want {
				t.Errorf("%s: HeaderValue %q, want %q", name, c.got, c.want)
			}
		}
		return []bool{a.Request.Header != nil, a.Response.Header != nil, bx.Request.Header != nil, bx.Response.Header != nil}
	}

	var lazy lookupCollect
	replayTo(t, b, analyze.Options{}, &lazy)
	// The folded field is unfolded, so that response has Header at once.
	if m := materialized("lookup", &lazy.collect, "secret", "token=abc"); !slices.Equal(m, []bool{false, false, false, true}) {
		t.Errorf("lookup sink, no redaction: Header set %v", m)
	}

	lazy = lookupCollect{}
	replayTo(t, b, analyze.Options{Redact: redact.Default()}, &lazy)
	if m := materialized("lookup+redact", &lazy.collect, redact.Replacement, "token=abc"); !slices.Equal(m, []bool{false, false, true, true}) {
		t.Errorf("lookup sink, default redaction: Header set %v", m)
	}
	if v := lazy.exs[1].Request.Header.Get("cookie"); v != redact.Replacement {
		t.Errorf("Cookie %q reached the sink", v)
	}

	lazy = lookupCollect{}
	re := regexp.MustCompile(`token=[a-z]+`)
	replayTo(t, b, analyze.Options{Redact: redact.NewPolicy(nil, []*regexp.Regexp{re})}, &lazy)
	if m := materialized("lookup+pattern", &lazy.collect, "secret", redact.Replacement); !slices.Equal(m, []bool{true, true, true, true}) {
		t.Errorf("lookup sink, pattern redaction: Header set %v", m)
	}

	lazy = lookupCollect{}
	var whole collect
	replayTo(t, b, analyze.Options{}, &lazy, &whole)
	if m := materialized("mixed", &lazy.collect, "secret", "token=abc"); !slices.Equal(m, []bool{true, true, true, true}) {
		t.Errorf("lookup sink beside a Header sink: Header set %v", m)
	}
	if !slices.Equal(whole.exs[0].Response.Header, analyze.Fields{{"X-Content-Type", "no"}, {"content-type", "text/plain"}, {"X-Note", "token=abc"}, {"Content-Type", "second"}, {"Content-Length", "2"}}) {
		t.Errorf("whole Header %q", whole.exs[0].Response.Header)
	}
}

// reusingCollect keeps no exchange: it records what each one says, and
// which exchange memory it came in, at the call.
type reusingCollect struct {
	lines []string
	seen  map[*analyze.Exchange]int
}

func (c *reusingCollect) Begin(*analyze.CaptureInfo) error { return nil }
func (c *reusingCollect) End(*analyze.Summary) error       { return nil }
func (c *reusingCollect) KeepsNoExchange() bool            { return true }
func (c *reusingCollect) Exchange(e *analyze.Exchange) error {
	c.lines = append(c.lines, reuseLine(e))
	c.seen[e]++
	return nil
}

func reuseLine(e *analyze.Exchange) string {
	return fmt.Sprintf("%d %s %s %s %v %s", e.Seq, line(e), e.Request.Body, e.Response.Body, e.Timings,
		e.Response.HeaderValue("Content-Type"))
}

// TestExchangeReuse: when every sink keeps no exchange, exchanges' memory
// is reused, and each sink still sees what it would have seen otherwise,
// including an exchange answered before its request was complete.
func TestExchangeReuse(t *testing.T) {
	b := capturetest.New()
	srv := b.Process(100, "nginx")
	const conns, perConn = 4, 2500 // well past the stage's batches in flight
	var cs []*capturetest.Conn
	for i := range conns {
		cs = append(cs, srv.Accept(int32(i), "127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", 40000+i)))
	}
	for n := range perConn {
		for i, c := range cs {
			if n%100 == 50 {
				// Answered early: the request's body is still coming.
				c.Read(fmt.Sprintf("POST /up/%d/%d HTTP/1.1\r\nHost: h%d\r\nContent-Length: 10\r\n\r\n12345", i, n, i))
				c.Write("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nbig!")
				c.Read("67890")
				continue
			}
			c.Read(fmt.Sprintf("GET /r/%d/%d HTTP/1.1\r\nHost: h%d\r\n\r\n", i, n, i))
			body := fmt.Sprint(n * i)
			c.Write(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/x%d\r\nContent-Length: %d\r\n\r\n%s", n, len(body), body))
		}
	}
	for _, c := range cs {
		c.Close()
	}
	run := func(opts analyze.Options) *reusingCollect {
		t.Helper()
		got := &reusingCollect{seen: map[*analyze.Exchange]int{}}
		replayTo(t, b, opts, got)
		return got
	}
	reused := run(analyze.Options{})
	// The reference: a collecting sink keeps every exchange, so none is
	// reused; it renders them the same way.
	ref := replay(t, b, analyze.Options{})
	if len(ref.exs) != conns*perConn || len(reused.lines) != len(ref.exs) {
		t.Fatalf("%d and %d exchanges, want %d", len(reused.lines), len(ref.exs), conns*perConn)
	}
	for i, e := range ref.exs {
		want := reuseLine(e)
		if reused.lines[i] != want {
			t.Fatalf("exchange %d with reuse:\n%s\nwant\n%s", i, reused.lines[i], want)
		}
	}
	if len(reused.seen) == len(reused.lines) {
		t.Errorf("no exchange memory was reused over %d exchanges", len(reused.lines))
	}
	// With a filter (which might keep what it sees) nothing is reused.
	filtered := run(analyze.Options{Filter: func(*analyze.Exchange) bool { return true }})
	if len(filtered.seen) != len(filtered.lines) {
		t.Errorf("exchange memory reused with a filter set: %d exchanges in %d", len(filtered.lines), len(filtered.seen))
	}
}

// headsCollect reads header fields by name only and keeps no exchange, so
// that heads stay spans and exchanges are reused: it records what each
// exchange's fields say at the call.
type headsCollect struct{ lines []string }

func (c *headsCollect) Begin(*analyze.CaptureInfo) error { return nil }
func (c *headsCollect) End(*analyze.Summary) error       { return nil }
func (c *headsCollect) KeepsNoExchange() bool            { return true }
func (c *headsCollect) HeaderLookupOnly() bool           { return true }
func (c *headsCollect) Exchange(e *analyze.Exchange) error {
	c.lines = append(c.lines, headsLine(e, e.Request.HeaderValue, e.Response.HeaderValue))
	return nil
}

func headsLine(e *analyze.Exchange, req, resp func(string) string) string {
	return fmt.Sprintf("%s %s %q %q %q %q %q %q | %d %s %q %q %q", e.Request.Method, e.Request.Target, e.Request.Host,
		e.Request.Path, e.Request.Query, req("X-Tag"), req("Cookie"), req("Accept"), e.Response.Status, e.Response.Reason,
		resp("Content-Type"), resp("X-Fold"), resp("Date"))
}

// TestSharedHeads: a connection's heads that repeat byte for byte share
// one copy and its spans (h1Heads.head); every exchange must still say
// what its own head said, whether its fields reach the sinks as spans or
// made into Header, redacted or not, while exchanges are reused.
func TestSharedHeads(t *testing.T) {
	b := capturetest.New()
	srv := b.Process(100, "nginx")
	const conns, perConn = 3, 1500 // well past the stage's batches in flight
	var cs []*capturetest.Conn
	for i := range conns {
		cs = append(cs, srv.Accept(int32(i), "127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", 40000+i)))
	}
	for n := range perConn {
		for i, c := range cs {
			switch {
			case n%7 == 3:
				// Heads without fields, and a folded field.
				c.Read("GET /bare HTTP/1.0\r\n\r\n")
				c.Write("HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\nContent-Length: 0\r\n\r\n")
			case n%13 == 6:
				// Absolute form: the Host comes from the target.
				c.Read("GET http://abs.example/p/q?x=1 HTTP/1.1\r\nAccept: */*\r\n\r\n")
				c.Write("HTTP/1.1 204 No Content\r\n\r\n")
			case n%11 == 5:
				c.Read(fmt.Sprintf("GET /other/%d HTTP/1.1\r\nHost: o%d\r\nCookie: s%d\r\n\r\n", n, i, n))
				c.Write("HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 1\r\n\r\nx")
			default:
				c.Read(fmt.Sprintf("GET /same?q=%d HTTP/1.1\r\nHost: h%d\r\nX-Tag: t\r\nCookie: secret\r\nAccept: */*\r\n\r\n", i, i))
				// The Date changes now and then, as a server's does.
				c.Write(fmt.Sprintf("HTTP/1.1 200 OK\r\nDate: %d\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", n/20))
			}
		}
	}
	for _, c := range cs {
		c.Close()
	}
	for _, opts := range []analyze.Options{{}, {Redact: redact.Default()}} {
		got := &headsCollect{}
		replayTo(t, b, opts, got)
		// The reference: a sink that ranges over Header gets every
		// field made into strings, and keeps every exchange.
		ref := replay(t, b, opts)
		if len(got.lines) != conns*perConn || len(ref.exs) != len(got.lines) {
			t.Fatalf("%d and %d exchanges, want %d", len(got.lines), len(ref.exs), conns*perConn)
		}
		for i, e := range ref.exs {
			// Each request's own target says its path, query and (in
			// absolute form) host, whatever the requests before it.
			target, host := e.Request.Target, e.Request.Header.Get("Host")
			if auth, ok := strings.CutPrefix(target, "http://"); ok {
				slash := strings.IndexByte(auth, '/')
				host, target = auth[:slash], auth[slash:]
			}
			path, query, _ := strings.Cut(target, "?")
			if r := &e.Request; r.Path != path || r.Query != query || r.Host != host {
				t.Fatalf("exchange %d: target %q gave host %q path %q query %q", i, r.Target, r.Host, r.Path, r.Query)
			}
			want := headsLine(e, e.Request.Header.Get, e.Response.Header.Get)
			if got.lines[i] != want {
				t.Fatalf("redact %v: exchange %d with shared heads:\n%s\nwant\n%s", opts.Redact != nil, i, got.lines[i], want)
			}
		}
		if want := redact.Replacement; opts.Redact != nil && !strings.Contains(got.lines[0], want) {
			t.Errorf("Cookie not redacted: %s", got.lines[0])
		}
	}
}

func TestClientAndNoResponse(t *testing.T) {
	b := capturetest.New()
	cl := b.Process(200, "curl")
	c := cl.Connect(0, "127.0.0.1:40001", "127.0.0.1:8080")
	c.Write("GET /x?q=1 HTTP/1.1\r\nHost: h\r\n\r\n")
	c.Read("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\nno")
	c.Write("GET /y HTTP/1.1\r\nHost: h\r\n\r\n")
	got := replay(t, b, analyze.Options{})
	if len(got.exs) != 2 {
		t.Fatalf("%d exchanges", len(got.exs))
	}
	if l := line(got.exs[0]); l != "c1 client HTTP/1.1 GET h/x -> 500 req=0 resp=2 flags=[]" {
		t.Error(l)
	}
	if got.exs[0].Request.Query != "q=1" {
		t.Errorf("query %q", got.exs[0].Request.Query)
	}
	if l := line(got.exs[1]); !strings.Contains(l, "flags=[incomplete no_response]") {
		t.Error(l)
	}
}

func TestJoinedMidConnection(t *testing.T) {
	b := capturetest.New()
	srv := b.Process(100, "app")
	c := srv.Existing(7, "127.0.0.1:8080", "127.0.0.1:40002", capture.RoleServer)
	// The recording starts in the middle of a response body.
	c.Write("tail of an earlier body\r\n")
	c.Read("GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
	c.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	got := replay(t, b, analyze.Options{})
	if len(got.exs) != 1 {
		for _, e := range got.exs {
			t.Log(line(e))
		}
		t.Fatalf("%d exchanges", len(got.exs))
	}
	e := got.exs[0]
	if l := line(e); l != "c1 server HTTP/1.1 GET h/after -> 200 req=0 resp=2 flags=[]" {
		t.Error(l)
	}
	if e.Conn.Remote.String() != "127.0.0.1:40002" {
		t.Errorf("remote %v", e.Conn.Remote)
	}
}

func TestTruncatedBody(t *testing.T) {
	b := capturetest.New()
	srv := b.Process(100, "app")
	c := srv.Accept(0, "127.0.0.1:8080", "127.0.0.1:40003")
	c.Read("GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
	body := strings.Repeat("x", 100)
	hdr := "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
	c.WriteTruncated(hdr+body, len(hdr)+100000)
	c.Read("GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	c.Write("HTTP/1.1 204 No Content\r\n\r\n")
	got := replay(t, b, analyze.Options{})
	if len(got.exs) != 2 {
		t.Fatalf("%d exchanges", len(got.exs))
	}
	if l := line(got.exs[0]); l != "c1 server HTTP/1.1 GET h/big -> 200 req=0 resp=100000 flags=[truncated]" {
		t.Error(l)
	}
	if l := line(got.exs[1]); l != "c1 server HTTP/1.1 GET h/next -> 204 req=0 resp=0 flags=[]" {
		t.Error(l)
	}
}

func TestTLSPlaintextPreferred(t *testing.T) {
	b := capturetest.New()
	srv := b.Process(100, "nginx")
	c := srv.Accept(0, "127.0.0.1:443", "127.0.0.1:40004")
	c.Read("\x16\x03\x01\x00\x05hello") // ClientHello ciphertext
	c.TLS(capture.SourceOpenSSL)
	c.Read("GET /secure HTTP/1.1\r\nHost: h\r\n\r\n")
	c.Write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	got := replay(t, b, analyze.Options{})
	if len(got.exs) != 1 || got.exs[0].Conn.TLS != "openssl" || got.exs[0].Request.Path != "/secure" {
		t.Fatalf("%d exchanges %+v", len(got.exs), got.exs)
	}
}

func TestRedactCredentials(t *testing.T) {
	b := capturetest.New()
	srv := b.Process(100, "app")
	c := srv.Accept(0, "127.0.0.1:8080", "127.0.0.1:40005")
	c.Read("POST /login?token=abc HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer s3cr3t\r\nCookie: sid=1\r\nContent-Length: 25\r\n\r\nuser=a&password=hunter2&x")
	c.Write("HTTP/1.1 200 OK\r\nSet-Cookie: sid=2\r\nContent-Length: 0\r\n\r\n")
	policy := redact.NewPolicy(redact.DefaultHeaders, []*regexp.Regexp{regexp.MustCompile(`(password|token)=[^&]*`)})
	got := replay(t, b, analyze.Options{Redact: policy})
	if len(got.exs) != 1 {
		t.Fatalf("%d exchanges", len(got.exs))
	}
	e := got.exs[0]
	for _, f := range append(e.Request.Header, e.Response.Header...) {
		if strings.Contains(f.Value, "s3cr3t") || strings.Contains(f.Value, "sid=") {
			t.Errorf("header %s: %q not redacted", f.Name, f.Value)
		}
	}
	if strings.Contains(string(e.Request.Body), "hunter2") || strings.Contains(e.Request.Query, "abc") || strings.Contains(e.Request.Target, "abc") {
		t.Errorf("body %q query %q target %q not redacted", e.Request.Body, e.Request.Query, e.Request.Target)
	}
	if e.Request.Header.Get("Host") != "h" {
		t.Error("Host was redacted")
	}
}

// packetRecording starts a recording with packets in which process "app"
// accepts a connection on 127.0.0.1:8080 from 127.0.0.1:port.
func packetRecording(port int) (b *capturetest.Builder, c *capturetest.Conn, server, client netip.AddrPort) {
	b = capturetest.New()
	b.Header.Options.Packets = true
	server = netip.MustParseAddrPort("127.0.0.1:8080")
	client = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	c = b.Process(100, "app").Accept(0, server.String(), client.String())
	return b, c, server, client
}

func TestNetworkTimingFromAcks(t *testing.T) {
	b, c, local, remote := packetRecording(40006)
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	c.Read("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
	c.Write(resp)
	respEnd := b.Now() - uint64(time.Millisecond) + uint64(10*time.Microsecond) // the write's exit
	// A partial ACK does not cover the response; the full one, 3 ms later, does.
	b.Event(&capture.TCP{Timestamp: b.Now(), Type: capture.TCPAck, Local: local, Remote: remote, Seq: 10})
	b.Advance(3 * time.Millisecond)
	ackAt := b.Now()
	b.Event(&capture.TCP{Timestamp: ackAt, Type: capture.TCPAck, Local: local, Remote: remote, Seq: uint32(len(resp))})
	b.Event(&capture.TCP{Timestamp: ackAt, Type: capture.TCPRetransmit, Local: remote, Remote: local})
	// The second exchange's ACK never comes: it is emitted at close without one.
	c.Read("GET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
	c.Write(resp)
	c.Close()
	in, err := analyze.OpenReader(bytes.NewReader(b.Bytes(t)), "test.rwd")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var got collect
	var closed closedConns
	if _, err := analyze.Replay(context.Background(), in.Source, in.Info, analyze.Options{}, &got, &closed); err != nil {
		t.Fatal(err)
	}
	if len(got.exs) != 2 {
		t.Fatalf("%d exchanges", len(got.exs))
	}
	if n := got.exs[0].Timings.Network; n != int64(ackAt-respEnd) {
		t.Errorf("network = %d, want %d", n, ackAt-respEnd)
	}
	if n := got.exs[1].Timings.Network; n != analyze.Unknown {
		t.Errorf("second network = %d, want unknown", n)
	}
	if len(closed.retransmits) != 1 || closed.retransmits[0] != 1 {
		t.Errorf("retransmits at close = %v, want [1]", closed.retransmits)
	}
}

// closedConns is a stream sink noting each connection's retransmissions
// when it closes (the live counters); noStreams (pipeline_test.go) gives the
// rest.
type closedConns struct {
	noStreams
	retransmits []int
}

func (s *closedConns) ConnClose(c *analyze.Conn, _ uint64) error {
	s.retransmits = append(s.retransmits, c.Retransmits)
	return nil
}

// rawTCP is an IPv4 TCP ACK from src to dst carrying payload bytes
// (headers only: cut after the TCP header, as the recorder may).
func rawTCP(src, dst netip.AddrPort, seq, ack uint32, payload int) []byte {
	b := tcpPacket(src, dst, seq, ack, 0x10, nil)
	binary.BigEndian.PutUint16(b[2:4], uint16(40+payload))
	return b
}

// tcpPacket is an IPv4 TCP segment from src to dst with flags and payload,
// for building packet captures in tests.
func tcpPacket(src, dst netip.AddrPort, seq, ack uint32, flags byte, payload []byte) []byte {
	b := make([]byte, 40+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	b[8], b[9] = 64, 6
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(b[12:16], s4[:])
	copy(b[16:20], d4[:])
	binary.BigEndian.PutUint16(b[20:22], src.Port())
	binary.BigEndian.PutUint16(b[22:24], dst.Port())
	binary.BigEndian.PutUint32(b[24:28], seq)
	binary.BigEndian.PutUint32(b[28:32], ack)
	b[32] = 5 << 4
	b[33] = flags
	copy(b[40:], payload)
	return b
}

// TestNetworkTimingFromPackets: in a recording with packets, the network
// timing starts at the captured packet that carried the response's last
// byte, not at the write's return (on loopback the ACK often comes first:
// that used to give 0), and a timing that cannot be tied to packets is
// unknown and counted in the warnings.
func TestNetworkTimingFromPackets(t *testing.T) {
	b, c, server, client := packetRecording(40007)
	packet := func(ts uint64, from, to netip.AddrPort, seq, ack uint32, payload int) {
		b.Event(&capture.Packet{Timestamp: ts, Dir: capture.Ingress, OrigLen: uint32(40 + payload), LinkType: 101,
			Data: rawTCP(from, to, seq, ack, payload)})
	}
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	n := uint32(len(resp))
	const us = uint64(time.Microsecond)

	// 1: the segment leaves during the write, its ACK comes 3 µs later,
	// before the write returns (at +10 µs).
	c.Read("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
	w := b.Now()
	packet(w+2*us, server, client, 1000, 5000, len(resp))
	packet(w+5*us, client, server, 5000, 1000+n, 0)
	c.Write(resp)
	// 2: the segment is not in the capture, its ACK is.
	c.Read("GET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
	c.Write(resp)
	packet(b.Now(), client, server, 5000, 1000+2*n, 0)
	b.Advance(time.Millisecond)
	// 3: a segment sent after the write returned, ACKed 40 µs later.
	c.Read("GET /3 HTTP/1.1\r\nHost: h\r\n\r\n")
	c.Write(resp)
	packet(b.Now(), server, client, 1000+2*n, 5000, len(resp))
	packet(b.Now()+40*us, client, server, 5000, 1000+3*n, 0)
	b.Advance(time.Millisecond)
	// 4: no ACK before the connection ends.
	c.Read("GET /4 HTTP/1.1\r\nHost: h\r\n\r\n")
	w = b.Now()
	packet(w+1*us, server, client, 1000+3*n, 5000, len(resp))
	c.Write(resp)
	c.Close()

	got := replay(t, b, analyze.Options{})
	if len(got.exs) != 4 {
		t.Fatalf("%d exchanges", len(got.exs))
	}
	want := []int64{int64(3 * us), analyze.Unknown, int64(40 * us), analyze.Unknown}
	for i, e := range got.exs {
		if e.Timings.Network != want[i] {
			t.Errorf("exchange %d: network = %d, want %d", i+1, e.Timings.Network, want[i])
		}
	}
	for _, w := range []string{
		"1 exchange without network time: the packet that carried the response's last byte was not captured",
		"1 exchange without network time: no ACK of the response's last byte was captured",
	} {
		if !slices.Contains(got.sum.Warnings, w) {
			t.Errorf("warnings %q lack %q", got.sum.Warnings, w)
		}
	}
}

// TestNetworkTimingGSOPacket: a recorded packet sent with GSO has no IP
// length (0 in the header); the record's length on the wire says how many
// bytes it carried, so the response's network timing starts at it.
func TestNetworkTimingGSOPacket(t *testing.T) {
	b, c, server, client := packetRecording(40009)
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	n := uint32(len(resp))
	const us = uint64(time.Microsecond)
	c.Read("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	w := b.Now()
	seg := rawTCP(server, client, 1000, 5000, 0)
	seg[2], seg[3] = 0, 0 // GSO: no length in the header
	b.Event(&capture.Packet{Timestamp: w + 2*us, Dir: capture.Ingress, OrigLen: 40 + n, LinkType: 101, Data: seg})
	b.Event(&capture.Packet{Timestamp: w + 9*us, Dir: capture.Ingress, OrigLen: 40, LinkType: 101,
		Data: rawTCP(client, server, 5000, 1000+n, 0)})
	c.Write(resp)
	c.Close()
	got := replay(t, b, analyze.Options{})
	if len(got.exs) != 1 || got.exs[0].Timings.Network != int64(7*us) {
		t.Fatalf("exchanges %d, network %v; want 1, 7 µs", len(got.exs), got.exs[0].Timings.Network)
	}
}

// TestNetworkTimingAfterGap: on pcap input, a response whose last bytes
// were never captured (a gap, stamped when the assembler gave up on them)
// has no network timing, rather than one measured from the gap's stamp.
func TestNetworkTimingAfterGap(t *testing.T) {
	b, c, local, remote := packetRecording(40008)
	head := "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
	c.Read("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
	c.Write(head + strings.Repeat("x", 40))
	c.WriteTruncated("", 60) // a gap: the last 60 bytes were not captured
	b.Event(&capture.TCP{Timestamp: b.Now(), Type: capture.TCPAck, Local: local, Remote: remote, Seq: uint32(len(head) + 100)})
	c.Close()
	got := replay(t, b, analyze.Options{})
	if len(got.exs) != 1 {
		t.Fatalf("%d exchanges", len(got.exs))
	}
	if n := got.exs[0].Timings.Network; n != analyze.Unknown {
		t.Errorf("network = %d, want unknown", n)
	}
	w := "1 exchange without network time: the packet that carried the response's last byte was not captured"
	if !slices.Contains(got.sum.Warnings, w) {
		t.Errorf("warnings %q lack %q", got.sum.Warnings, w)
	}
}

// TestEarlyAnswerKeepsBody: a server that answers before reading the
// request body (nginx's `return 200`, or any server that replies first and
// drains after) still gets the whole body on its exchange, and the next
// request on the connection is paired as usual.
func TestEarlyAnswerKeepsBody(t *testing.T) {
	b := capturetest.New()
	srv := b.Process(100, "app")
	c := srv.Accept(0, "127.0.0.1:8080", "127.0.0.1:40009")
	c.Read("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("a", 1000))
	c.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	for i := 0; i < 99; i++ {
		c.Read(strings.Repeat("b", 1000))
	}
	c.Read("POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
	c.Write("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
	c.Read("5\r\nhello\r\n0\r\n\r\n")
	c.Read("GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	c.Write("HTTP/1.1 204 No Content\r\n\r\n")
	// Answered, then the client went away mid-body.
	c.Read("POST /cut HTTP/1.1\r\nHost: h\r\nContent-Length: 50\r\n\r\n12345")
	c.Write("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
	c.Close()
	got := replay(t, b, analyze.Options{})
	var lines []string
	for _, e := range got.exs {
		lines = append(lines, line(e))
	}
	want := []string{
		"c1 server HTTP/1.1 POST h/up -> 200 req=100000 resp=2 flags=[]",
		"c1 server HTTP/1.1 POST h/chunked -> 201 req=5 resp=0 flags=[]",
		"c1 server HTTP/1.1 GET h/next -> 204 req=0 resp=0 flags=[]",
		"c1 server HTTP/1.1 POST h/cut -> 413 req=5 resp=0 flags=[incomplete]",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if s := got.exs[0].Timings.Server; s != analyze.Unknown {
		t.Errorf("server time of an exchange answered before its body = %d, want unknown", s)
	}
}

// TestSloppyConnect: `CONNECT host:25 / HTTP/1.0` answered with 200 keeps
// its method and target, flagged malformed, and the tunnel after it is not
// parsed as HTTP.
func TestSloppyConnect(t *testing.T) {
	b := capturetest.New()
	srv := b.Process(100, "proxy")
	c := srv.Accept(0, "127.0.0.1:3128", "127.0.0.1:40010")
	c.Read("CONNECT mail.example:25 / HTTP/1.0\r\n\r\n")
	c.Write("HTTP/1.0 200 Connection established\r\n\r\n")
	c.Read("EHLO client.example\r\n")
	c.Write("250 mail.example\r\n")
	c.Close()
	got := replay(t, b, analyze.Options{})
	if len(got.exs) != 1 {
		t.Fatalf("%d exchanges", len(got.exs))
	}
	e := got.exs[0]
	if e.Request.Method != "CONNECT" || e.Request.Target != "mail.example:25" || e.Response.Status != 200 || e.Flags&analyze.FlagMalformed == 0 {
		t.Errorf("got %s %q -> %d flags %v", e.Request.Method, e.Request.Target, e.Response.Status, e.Flags.Names())
	}
}

// TestChunkedLengthUnknown checks the exchange-level side of a chunked
// body whose framing a cut write took: a client writes one chunk (size
// line, data, CRLF and the next size line) in a call the snaplen cut, so
// how long the body was cannot be known. The exchange says so (no length,
// flagged incomplete and truncated) instead of a lower bound that reads
// like a measurement; a chunked body whose cut ends inside its own data
// keeps its exact length.
func TestChunkedLengthUnknown(t *testing.T) {
	b := capturetest.New()
	cl := b.Process(100, "curl")
	c := cl.Connect(3, "127.0.0.1:40011", "127.0.0.1:8080")
	c.Write("POST /cut HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
	// 0x10000 bytes of data + CRLF + the next size line "10\r\n": the
	// call's true length is known, its bytes past the first 100 are not.
	c.WriteTruncated("10000\r\n"+strings.Repeat("x", 93), 7+0x10000+2+4)
	c.Write(strings.Repeat("y", 16) + "\r\n0\r\n\r\n")
	c.Read("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c.Write("POST /kept HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
	c.WriteTruncated("1000\r\n"+strings.Repeat("z", 10), 6+0x1000)
	c.Write("\r\n0\r\n\r\n")
	c.Read("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c.Close()
	got := replay(t, b, analyze.Options{})
	byPath := map[string]*analyze.Exchange{}
	for _, e := range got.exs {
		byPath[e.Request.Path] = e
	}
	cut := byPath["/cut"]
	if cut == nil {
		t.Fatalf("no /cut exchange among %d", len(got.exs))
	}
	if cut.Request.BodyBytes != analyze.Unknown {
		t.Errorf("/cut: body %d bytes, want unknown (%d)", cut.Request.BodyBytes, analyze.Unknown)
	}
	if want := analyze.FlagIncomplete | analyze.FlagTruncated; cut.Flags&want != want {
		t.Errorf("/cut: flags %v, want incomplete and truncated", cut.Flags.Names())
	}
	kept := byPath["/kept"]
	if kept == nil {
		t.Fatalf("no /kept exchange among %d", len(got.exs))
	}
	if kept.Request.BodyBytes != 0x1000 || kept.Response.Status != 200 {
		t.Errorf("/kept: body %d bytes, status %d; want 4096 and 200", kept.Request.BodyBytes, kept.Response.Status)
	}
}

func TestHostName(t *testing.T) {
	for _, c := range []struct {
		info analyze.CaptureInfo
		want string
	}{
		{analyze.CaptureInfo{Path: "a/b/x.rwd", Format: "rewind", Header: capture.Header{Host: "web-1"}}, "web-1"},
		{analyze.CaptureInfo{Path: "a/b/node-2.pcap", Format: "pcap"}, "node-2"},
		{analyze.CaptureInfo{Path: "node-3.pcapng.gz", Format: "pcapng"}, "node-3"},
		{analyze.CaptureInfo{Path: `C:\caps\node-4.pcap.zst`, Format: "pcap"}, "node-4"},
		{analyze.CaptureInfo{Path: "x.rwd", Format: "rewind"}, "x"}, // no host in the header
	} {
		if got := c.info.HostName(); got != c.want {
			t.Errorf("%s: host %q, want %q", c.info.Path, got, c.want)
		}
	}
}

// TestOtherProtocolLengths replays a connection of another protocol as the
// recorder writes it: the calls that showed the protocol whole, then the
// summed lengths of the rest (DataOtherProtocol|DataMerged), the last of
// them written at the recording's end with an old timestamp. It is no
// HTTP, the HTTP exchange beside it is intact, and the late record is no
// warning: nothing is timed with it.
func TestOtherProtocolLengths(t *testing.T) {
	b := capturetest.New()
	p := b.Process(100, "app")
	db := p.Connect(5, "127.0.0.1:40000", "127.0.0.1:5432")
	db.Write("\x00\x00\x00\x08\x04\xd2\x16\x2f")
	db.Read("N")
	start := b.Now()
	b.Advance(time.Millisecond)
	merged := func(dir capture.Direction, n uint32, from, to uint64) *capture.Data {
		return &capture.Data{Start: from, Timestamp: to, PID: 100, TID: 100, FD: 5, Gen: 1, Source: capture.SourceWrite,
			Dir: dir, Len: n, Flags: capture.DataOtherProtocol | capture.DataMerged | capture.DataTruncated}
	}
	b.Event(merged(capture.Egress, 1<<20, start, b.Now()))
	web := p.Accept(6, "127.0.0.1:8080", "127.0.0.1:40001")
	web.Read("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	web.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	b.Advance(time.Second)
	web.Close()
	b.Advance(time.Second)
	web2 := p.Accept(7, "127.0.0.1:8080", "127.0.0.1:40002")
	web2.Close()
	// Written at the end, stamped when its calls ran: after everything
	// before it was released.
	b.Event(merged(capture.Egress, 4096, start+uint64(2*time.Millisecond), start+uint64(3*time.Millisecond)))
	got := replay(t, b, analyze.Options{})
	if len(got.exs) != 1 || line(got.exs[0]) != "c2 server HTTP/1.1 GET h/ -> 200 req=0 resp=2 flags=[]" {
		for _, e := range got.exs {
			t.Log(line(e))
		}
		t.Fatalf("%d exchanges, want the one HTTP exchange intact", len(got.exs))
	}
	if len(got.sum.Warnings) != 0 {
		t.Errorf("warnings: %q", got.sum.Warnings)
	}
}
