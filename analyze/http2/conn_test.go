package http2

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/rewind-tools/rewind/analyze/bytetime"
)

var client0 = Options{ClientWire: 0, MaxBodyCapture: 1 << 10}

// basicConv: a GET with a padded body and trailers, a POST split into
// CONTINUATION frames, a reset stream, and a GOAWAY that refuses stream 7.
func basicConv(t testing.TB) *conv {
	c := newConv(t).preface()
	c.headers(0, 1, true, ":method: GET", ":scheme: https", ":authority: example.com", ":path: /a?x=1", "user-agent: test")
	c.flush(0)
	c.headers(1, 1, false, ":status: 200", "content-type: text/plain")
	c.data(1, 1, false, "hello ", 7)
	c.data(1, 1, false, "world", 0)
	c.headers(1, 1, true, "x-checksum: abc")
	c.flush(1)
	c.maxFrag = 7
	c.headers(0, 3, false, ":method: POST", ":scheme: https", ":authority: example.com", ":path: /upload",
		"content-type: application/json", "x-long: "+strings.Repeat("v", 40))
	c.must(c.fr[0].WritePriority(3, http2.PriorityParam{StreamDep: 0, Weight: 10}))
	c.data(0, 3, true, `{"k":1}`, 3)
	c.flush(0)
	c.maxFrag = 1 << 14
	c.must(c.fr[1].WriteWindowUpdate(0, 100))
	c.headers(1, 3, true, ":status: 204")
	c.flush(1)
	c.headers(0, 5, true, ":method: GET", ":scheme: https", ":authority: example.com", ":path: /slow")
	c.must(c.fr[0].WritePing(false, [8]byte{1}))
	c.flush(0)
	c.must(c.fr[0].WriteRSTStream(5, http2.ErrCodeCancel))
	c.headers(0, 7, true, ":method: GET", ":scheme: https", ":authority: example.com", ":path: /late")
	c.flush(0)
	c.must(c.fr[1].WriteGoAway(5, http2.ErrCodeNo, nil))
	c.flush(1)
	return c
}

var basicWant = []string{
	"1 [:method=GET :scheme=https :authority=example.com :path=/a?x=1 user-agent=test] body=0 [:status=200 content-type=text/plain] body=11 trailer=[x-checksum=abc] unknown=0/0 []",
	"3 [:method=POST :scheme=https :authority=example.com :path=/upload content-type=application/json x-long=" + strings.Repeat("v", 40) + "] body=7 [:status=204] body=0 trailer=[] unknown=0/0 []",
	"5 [:method=GET :scheme=https :authority=example.com :path=/slow] body=0 [] body=0 trailer=[] unknown=0/0 [reset]",
	"7 [:method=GET :scheme=https :authority=example.com :path=/late] body=0 [] body=0 trailer=[] unknown=0/0 [refused]",
}

func check(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBasic(t *testing.T) {
	got, st := run(client0, basicConv(t).writes, nil)
	check(t, got, basicWant)
	if st.BadFrames != 0 || st.SkippedBytes != 0 || st.Resyncs != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestBodyAndTimes(t *testing.T) {
	c := basicConv(t)
	var s1 Stream
	conn := NewConn(client0, func(s *Stream) {
		if s.ID == 1 {
			s1 = *s
			s1.Response.Body = append([]byte(nil), s.Response.Body...)
		}
	})
	for i, w := range c.writes {
		conn.Feed(w.wire, w.b, bytetime.Times{First: uint64(100*i + 100), Last: uint64(100*i + 150)})
	}
	conn.Close(bytetime.Times{First: 10000, Last: 10000})
	if string(s1.Response.Body) != "hello world" || s1.Response.BodyTruncated {
		t.Errorf("body %q truncated %v", s1.Response.Body, s1.Response.BodyTruncated)
	}
	// writes: 0 client preface, 1 server settings, 2 ack, 3 ack, 4 GET, 5 response
	if s1.Request.Start != 500 || s1.Request.End != 550 || s1.Response.Start != 600 || s1.Response.End != 650 {
		t.Errorf("times %d %d %d %d", s1.Request.Start, s1.Request.End, s1.Response.Start, s1.Response.End)
	}
}

// Splitting the writes at any byte offset changes nothing.
func TestSplitAnywhere(t *testing.T) {
	writes := basicConv(t).writes
	want, _ := run(client0, writes, nil)
	maxLen := 0
	for _, w := range writes {
		maxLen = max(maxLen, len(w.b))
	}
	for k := 1; k < maxLen; k++ {
		got, st := run(client0, writes, func(w write) [][]byte {
			if k >= len(w.b) {
				return [][]byte{w.b}
			}
			return [][]byte{w.b[:k], w.b[k:]}
		})
		if strings.Join(got, "\n") != strings.Join(want, "\n") || st.BadFrames != 0 {
			t.Fatalf("split at %d:\n%s", k, strings.Join(got, "\n"))
		}
	}
	got, _ := run(client0, writes, func(w write) [][]byte {
		var parts [][]byte
		for i := range w.b {
			parts = append(parts, w.b[i:i+1])
		}
		return parts
	})
	check(t, got, want)
}

// Many streams with frames interleaved at random complete with the right
// headers and body sizes, in completion order.
func TestInterleavedStreams(t *testing.T) {
	c := newConv(t).preface()
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 200
	type st struct {
		id          uint32
		step, bodyN int
	}
	var open []*st
	var want []string
	for i := 0; i < n; i++ {
		open = append(open, &st{bodyN: rng.IntN(5)})
	}
	next := uint32(1) // streams open in id order

	for len(open) > 0 {
		j := rng.IntN(len(open))
		s := open[j]
		if s.step == 0 {
			s.id, next = next, next+2
		}
		path := fmt.Sprintf("/item/%d", s.id)
		switch {
		case s.step == 0:
			c.headers(0, s.id, true, ":method: GET", ":scheme: http", ":authority: h", ":path: "+path)
			c.flush(0)
		case s.step == 1:
			c.headers(1, s.id, false, ":status: 200", fmt.Sprintf("x-id: %d", s.id))
			c.flush(1)
		case s.step < 2+s.bodyN:
			c.data(1, s.id, false, strings.Repeat("b", int(s.id)), rng.IntN(3))
			c.flush(1)
		default:
			c.data(1, s.id, true, "", 0)
			c.flush(1)
			want = append(want, fmt.Sprintf("%d [:method=GET :scheme=http :authority=h :path=%s] body=0 [:status=200 x-id=%d] body=%d trailer=[] unknown=0/0 []",
				s.id, path, s.id, int(s.id)*s.bodyN))
			open = append(open[:j], open[j+1:]...)
		}
		s.step++
	}
	got, stats := run(client0, c.writes, nil)
	check(t, got, want)
	if stats.Streams != n {
		t.Errorf("stats %+v", stats)
	}
	// The same bytes, with both directions cut into 7-byte pieces.
	got, _ = run(client0, c.writes, func(w write) [][]byte {
		var parts [][]byte
		for b := w.b; len(b) > 0; {
			k := min(7, len(b))
			parts, b = append(parts, b[:k]), b[k:]
		}
		return parts
	})
	check(t, got, want)
}

func TestPushPromise(t *testing.T) {
	c := newConv(t).preface()
	c.headers(0, 1, true, ":method: GET", ":scheme: https", ":authority: h", ":path: /")
	c.flush(0)
	b := c.block(1, ":method: GET", ":scheme: https", ":authority: h", ":path: /style.css")
	c.must(c.fr[1].WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: b, EndHeaders: true}))
	c.headers(1, 1, false, ":status: 200")
	c.data(1, 1, true, "<html>", 0)
	c.headers(1, 2, false, ":status: 200", "content-type: text/css")
	c.data(1, 2, true, "body{}", 0)
	c.flush(1)
	got, _ := run(client0, c.writes, nil)
	check(t, got, []string{
		"1 [:method=GET :scheme=https :authority=h :path=/] body=0 [:status=200] body=6 trailer=[] unknown=0/0 []",
		"2 [:method=GET :scheme=https :authority=h :path=/style.css] body=0 [:status=200 content-type=text/css] body=6 trailer=[] unknown=0/0 [pushed]",
	})
}

// A capture cut mid-stream: the open stream is emitted incomplete.
func TestCloseMidStream(t *testing.T) {
	c := newConv(t).preface()
	c.headers(0, 1, false, ":method: POST", ":scheme: http", ":authority: h", ":path: /up")
	c.data(0, 1, false, "part", 0)
	c.flush(0)
	got, _ := run(client0, c.writes, nil)
	check(t, got, []string{"1 [:method=POST :scheme=http :authority=h :path=/up] body=4 [] body=0 trailer=[] unknown=0/0 [incomplete]"})
}
