package http2

import (
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/analyze/bytetime"
)

// feedCut feeds c's writes; the write at cutAt loses everything after its
// first keep bytes, as a write longer than the snaplen does.
func feedCut(c *conv, cutAt, keep int) (*Conn, []string) {
	var out []string
	conn := NewConn(client0, func(s *Stream) { out = append(out, summary(s)) })
	for i, w := range c.writes {
		b := w.b
		if i == cutAt {
			conn.Feed(w.wire, b[:keep], bytetime.Times{First: 1, Last: 1})
			conn.Gap(w.wire, int64(len(b)-keep), bytetime.Times{First: 1, Last: 1})
			continue
		}
		conn.Feed(w.wire, b, bytetime.Times{First: 2, Last: 2})
	}
	conn.Close(bytetime.Times{First: 3, Last: 3})
	return conn, out
}

// Node.js writes a stream's HEADERS and all its DATA frames in one call; a
// snaplen cut in the first DATA frame takes the rest of it and the frames
// after it whole. The cut frame counts whole, the body's length is unknown
// (a lower bound, flagged), the answered request is complete, the next
// write is found to start on a frame (nothing skipped), and the next
// stream's fields that reference the HPACK table from before the loss are
// unknown, never guessed.
func TestCutWriteTakesWholeFrames(t *testing.T) {
	c := newConv(t).preface()
	c.headers(0, 1, false, ":method: POST", ":scheme: https", ":authority: h", ":path: /up", "x-a: 1")
	c.data(0, 1, false, strings.Repeat("a", 100), 0)
	c.data(0, 1, true, strings.Repeat("b", 50), 0)
	c.flush(0)
	cutAt := len(c.writes) - 1
	keep := len(c.writes[cutAt].b) - (100 - 40) - (9 + 50) // 40 bytes of the first DATA payload kept
	c.headers(1, 1, false, ":status: 200", "x-r: 1")
	c.data(1, 1, true, "ok", 0)
	c.flush(1)
	c.headers(0, 3, true, ":method: GET", ":scheme: https", ":authority: h", ":path: /two", "x-a: 1")
	c.flush(0)
	c.headers(1, 3, false, ":status: 200", "x-r: 1")
	c.data(1, 3, true, "ok", 0)
	c.flush(1)
	conn, out := feedCut(c, cutAt, keep)
	check(t, out, []string{
		"1 [:method=POST :scheme=https :authority=h :path=/up x-a=1] body=100 [:status=200 x-r=1] body=2 trailer=[] unknown=0/0 [desynced missing lenunknown]",
		"3 [:method=GET :scheme=https :path=/two] body=0 [:status=200 x-r=1] body=2 trailer=[] unknown=2/0 [desynced]",
	})
	if st := conn.Stats(); st.Resyncs != 1 || st.LostFrameRuns != 1 || st.CutFrames != 1 || st.SkippedBytes != 0 {
		t.Errorf("stats %+v", st)
	}
}

// The lost frames held a request header block (stream 3, whose field went
// into the HPACK table): stream 5's fields that reference the table are
// unknown, never resolved to whatever entry sits at that index now, and it
// is flagged.
func TestCutWriteLostHeaderBlock(t *testing.T) {
	c := newConv(t).preface()
	c.headers(0, 1, false, ":method: POST", ":scheme: https", ":authority: h", ":path: /up")
	c.data(0, 1, true, strings.Repeat("a", 100), 0)
	c.headers(0, 3, true, ":method: GET", ":scheme: https", ":authority: h", ":path: /lost", "x-new: v")
	c.flush(0)
	cutAt := len(c.writes) - 1
	c.headers(1, 1, false, ":status: 200")
	c.data(1, 1, true, "ok", 0)
	c.headers(1, 3, true, ":status: 404")
	c.flush(1)
	c.headers(0, 5, true, ":method: GET", ":scheme: https", ":authority: h", ":path: /five", "x-new: v")
	c.flush(0)
	c.headers(1, 5, true, ":status: 200")
	c.flush(1)
	// Keep stream 1's HEADERS, the DATA frame header and 40 of its 100
	// payload bytes: the rest of the write (60 bytes and stream 3's
	// HEADERS) is lost.
	w := c.writes[cutAt].b
	keep := strings.Index(string(w), strings.Repeat("a", 100)) + 40
	conn, out := feedCut(c, cutAt, keep)
	for _, s := range out {
		if strings.Contains(s, "x-new=v") && strings.HasPrefix(s, "5 ") {
			// x-new: v was inserted by the lost block; a reference to it
			// must not resolve to an entry that happens to be there.
			t.Errorf("stream 5 decoded a field the lost block inserted: %s", s)
		}
	}
	var five string
	for _, s := range out {
		if strings.HasPrefix(s, "5 ") {
			five = s
		}
	}
	// x-new and :authority referenced the table: unknown, not guessed.
	if !strings.Contains(five, "desynced") || !strings.Contains(five, "unknown=2/") || !strings.Contains(five, ":path=/five") {
		t.Errorf("stream 5: %q, want its path, two unknown fields, and desynced", five)
	}
	if st := conn.Stats(); st.LostFrameRuns != 1 {
		t.Errorf("stats %+v", st)
	}
}

// On the server's wire the lost frames held stream 3's response header
// block; its DATA then comes without one: stream 3 is flagged, not reported
// with a response it did not show, and stream 1's body length is unknown.
func TestCutWriteLostResponseHeaders(t *testing.T) {
	c := newConv(t).preface()
	c.headers(0, 1, true, ":method: GET", ":scheme: https", ":authority: h", ":path: /one")
	c.headers(0, 3, true, ":method: GET", ":scheme: https", ":authority: h", ":path: /two")
	c.flush(0)
	c.headers(1, 1, false, ":status: 200")
	c.data(1, 1, false, strings.Repeat("a", 100), 0)
	c.headers(1, 3, false, ":status: 200", "x-s: new")
	c.flush(1)
	cutAt := len(c.writes) - 1
	keep := strings.Index(string(c.writes[cutAt].b), strings.Repeat("a", 100)) + 40
	c.data(1, 1, true, "end", 0)
	c.data(1, 3, true, "x", 0)
	c.flush(1)
	conn, out := feedCut(c, cutAt, keep)
	check(t, out, []string{
		"1 [:method=GET :scheme=https :authority=h :path=/one] body=0 [:status=200] body=103 trailer=[] unknown=0/0 [desynced missing lenunknown]",
		"3 [:method=GET :scheme=https :authority=h :path=/two] body=0 [] body=1 trailer=[] unknown=0/0 [desynced]",
	})
	if st := conn.Stats(); st.LostFrameRuns != 1 {
		t.Errorf("stats %+v", st)
	}
}

// The lost frames held the trailers that ended stream 1 (as a gRPC server
// writes its last message and trailers at once): stream 1 never ends and
// is flagged, and stream 3's trailer, which references the entry the lost
// block inserted, is unknown, not resolved through a table the loss
// changed.
func TestCutWriteLostTrailers(t *testing.T) {
	c := newConv(t).preface()
	c.headers(0, 1, true, ":method: POST", ":scheme: https", ":authority: h", ":path: /svc/A")
	c.flush(0)
	c.headers(1, 1, false, ":status: 200")
	c.data(1, 1, false, strings.Repeat("a", 100), 0)
	c.headers(1, 1, true, "grpc-status: 0")
	c.flush(1)
	cutAt := len(c.writes) - 1
	keep := strings.Index(string(c.writes[cutAt].b), strings.Repeat("a", 100)) + 40
	c.headers(0, 3, true, ":method: POST", ":scheme: https", ":authority: h", ":path: /svc/B")
	c.flush(0)
	c.headers(1, 3, false, ":status: 200")
	c.headers(1, 3, true, "grpc-status: 0")
	c.flush(1)
	_, out := feedCut(c, cutAt, keep)
	if len(out) != 2 {
		t.Fatalf("%d streams: %v", len(out), out)
	}
	for _, s := range out {
		if !strings.Contains(s, "desynced") {
			t.Errorf("%s: want desynced", s)
		}
		if strings.HasPrefix(s, "3 ") && strings.Contains(s, "grpc-status=0") {
			t.Errorf("stream 3's trailer resolved through a table the lost block changed: %s", s)
		}
	}
}

// A response whose header block was lost in a gap, whose trailers then end
// the stream: the trailers are not taken for the response's headers (no
// status, grpc-status as a header field), and the exchange is flagged.
func TestTrailersAfterLostHeaders(t *testing.T) {
	c := newConv(t).preface()
	c.headers(0, 1, true, ":method: POST", ":scheme: https", ":authority: h", ":path: /svc/A")
	c.flush(0)
	c.headers(1, 1, false, ":status: 200", "content-type: application/grpc")
	c.flush(1)
	lost := len(c.writes) - 1
	c.data(1, 1, false, "\x00\x00\x00\x00\x02ok", 0)
	c.headers(1, 1, true, "grpc-status: 0")
	c.flush(1)
	var out []string
	conn := NewConn(client0, func(s *Stream) { out = append(out, summary(s)) })
	for i, w := range c.writes {
		if i == lost {
			conn.Gap(w.wire, int64(len(w.b)), bytetime.Times{First: 1, Last: 1})
			continue
		}
		conn.Feed(w.wire, w.b, bytetime.Times{First: 2, Last: 2})
	}
	conn.Close(bytetime.Times{First: 3, Last: 3})
	check(t, out, []string{
		"1 [:method=POST :scheme=https :authority=h :path=/svc/A] body=0 [] body=7 trailer=[grpc-status=0] unknown=0/0 [desynced]",
	})
}
