package http2

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rewind-tools/rewind/analyze/bytetime"
)

// conv builds both byte streams of an HTTP/2 conversation with the x/net
// Framer and hpack.Encoder, as a list of writes in the order they happen.
type conv struct {
	t      testing.TB
	writes []write
	buf    [2]bytes.Buffer
	fr     [2]*http2.Framer
	enc    [2]*hpack.Encoder
	hb     [2]bytes.Buffer
	// maxFrag splits header blocks into HEADERS + CONTINUATION frames.
	maxFrag int
}

type write struct {
	wire int // 0 client, 1 server
	b    []byte
}

func newConv(t testing.TB) *conv {
	c := &conv{t: t, maxFrag: 1 << 14}
	for i := range c.fr {
		c.fr[i] = http2.NewFramer(&c.buf[i], nil)
		c.enc[i] = hpack.NewEncoder(&c.hb[i])
	}
	return c
}

// flush ends the current write of wire w.
func (c *conv) flush(w int) {
	if c.buf[w].Len() == 0 {
		return
	}
	c.writes = append(c.writes, write{w, bytes.Clone(c.buf[w].Bytes())})
	c.buf[w].Reset()
}

func (c *conv) preface() *conv {
	c.buf[0].WriteString(ClientPreface)
	c.must(c.fr[0].WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0}))
	c.flush(0)
	c.must(c.fr[1].WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100}))
	c.flush(1)
	c.must(c.fr[0].WriteSettingsAck())
	c.flush(0)
	c.must(c.fr[1].WriteSettingsAck())
	c.flush(1)
	return c
}

func (c *conv) must(err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
}

// block encodes "name: value" fields (one string each, split at the first
// ": " after position 0) with wire w's encoder.
func (c *conv) block(w int, fields ...string) []byte {
	c.hb[w].Reset()
	for _, f := range fields {
		i := strings.Index(f[1:], ": ") + 1
		c.must(c.enc[w].WriteField(hpack.HeaderField{Name: f[:i], Value: f[i+2:]}))
	}
	return bytes.Clone(c.hb[w].Bytes())
}

// headers writes a header block on stream id from wire w (0 client).
func (c *conv) headers(w int, id uint32, end bool, fields ...string) {
	b := c.block(w, fields...)
	first := true
	for first || len(b) > 0 {
		n := min(len(b), c.maxFrag)
		frag := b[:n]
		b = b[n:]
		if first {
			c.must(c.fr[w].WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag,
				EndStream: end, EndHeaders: len(b) == 0}))
			first = false
		} else {
			c.must(c.fr[w].WriteContinuation(id, len(b) == 0, frag))
		}
	}
}

func (c *conv) data(w int, id uint32, end bool, body string, pad int) {
	if pad > 0 {
		c.must(c.fr[w].WriteDataPadded(id, end, []byte(body), make([]byte, pad)))
	} else {
		c.must(c.fr[w].WriteData(id, end, []byte(body)))
	}
}

// streams feeds the writes (split per split) and returns the summaries of
// the emitted streams.
func run(opts Options, writes []write, split func(w write) [][]byte) ([]string, Stats) {
	var out []string
	c := NewConn(opts, func(s *Stream) { out = append(out, summary(s)) })
	tm := uint64(1000)
	for _, w := range writes {
		parts := [][]byte{w.b}
		if split != nil {
			parts = split(w)
		}
		for _, p := range parts {
			c.Feed(w.wire, p, bytetime.Times{First: tm, Last: tm + 5})
			tm += 10
		}
	}
	c.Close(bytetime.Times{First: tm, Last: tm})
	return out, c.Stats()
}

func fieldsString(f []hpack.HeaderField) string {
	var sb strings.Builder
	for i, x := range f {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(x.Name + "=" + x.Value)
	}
	return sb.String()
}

func summary(s *Stream) string {
	var fl []string
	for _, f := range []struct {
		b bool
		n string
	}{{s.Reset, "reset"}, {s.Refused, "refused"}, {s.Incomplete, "incomplete"}, {s.Desynced(), "desynced"},
		{s.Pushed, "pushed"}, {s.Upgraded, "upgraded"}, {s.Request.BodyMissing || s.Response.BodyMissing, "missing"},
		{s.Request.LengthUnknown || s.Response.LengthUnknown, "lenunknown"}} {
		if f.b {
			fl = append(fl, f.n)
		}
	}
	g := ""
	if s.GRPC {
		g = fmt.Sprintf(" grpc=%d/%d,%d/%d", s.Request.GRPC.Msgs, s.Request.GRPC.Bytes, s.Response.GRPC.Msgs, s.Response.GRPC.Bytes)
	}
	return fmt.Sprintf("%d [%s] body=%d [%s] body=%d trailer=[%s] unknown=%d/%d%s %v",
		s.ID, fieldsString(s.Request.Header), s.Request.BodyBytes,
		fieldsString(s.Response.Header), s.Response.BodyBytes, fieldsString(s.Response.Trailer),
		s.Request.UnknownFields, s.Response.UnknownFields, g, fl)
}

func concat(writes []write, wire int) []byte {
	var b []byte
	for _, w := range writes {
		if w.wire == wire {
			b = append(b, w.b...)
		}
	}
	return b
}
