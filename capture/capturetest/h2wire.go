package capturetest

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// H2Wire writes the frames of one direction of an HTTP/2 connection, for
// [Conn.Read] and [Conn.Write]. Its HPACK encoder indexes fields as real
// peers do, so that a capture joining later cannot decode what refers to
// the dynamic table. Methods fail the test on an error and return the wire,
// to be chained:
//
//	c.Write(sv.Headers(1, false, ":status", "200").Data(1, true, "hi").Take())
type H2Wire struct {
	t   testing.TB
	buf bytes.Buffer
	fr  *http2.Framer
	hb  bytes.Buffer
	enc *hpack.Encoder
}

// NewH2Wire returns an empty wire whose errors fail t.
func NewH2Wire(t testing.TB) *H2Wire {
	w := &H2Wire{t: t}
	w.fr = http2.NewFramer(&w.buf, nil)
	w.enc = hpack.NewEncoder(&w.hb)
	return w
}

// Must fails the test when err, from a write through [H2Wire.Framer], is
// not nil.
func (w *H2Wire) Must(err error) *H2Wire {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
	return w
}

// Framer writes the frames the other methods do not (RST_STREAM, …).
func (w *H2Wire) Framer() *http2.Framer { return w.fr }

// Take returns and clears what was written.
func (w *H2Wire) Take() string {
	s := w.buf.String()
	w.buf.Reset()
	return s
}

// Len is how many bytes were written since the last [H2Wire.Take].
func (w *H2Wire) Len() int { return w.buf.Len() }

// Headers writes one HEADERS frame of stream id with the fields kv (name,
// value, name, value…), ending the stream when end is set.
func (w *H2Wire) Headers(id uint32, end bool, kv ...string) *H2Wire {
	w.hb.Reset()
	for i := 0; i < len(kv); i += 2 {
		w.Must(w.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}))
	}
	return w.Must(w.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: w.hb.Bytes(), EndStream: end, EndHeaders: true}))
}

// Data writes one DATA frame of stream id.
func (w *H2Wire) Data(id uint32, end bool, s string) *H2Wire {
	return w.Must(w.fr.WriteData(id, end, []byte(s)))
}

// Settings writes a SETTINGS frame: MAX_CONCURRENT_STREAMS 100, then extra.
func (w *H2Wire) Settings(extra ...http2.Setting) *H2Wire {
	s := append([]http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 100}}, extra...)
	return w.Must(w.fr.WriteSettings(s...))
}
