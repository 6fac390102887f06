// Package jsonl writes exchanges as JSON Lines (`rewind analyze
// --exchanges FILE.jsonl`): one JSON object per exchange, in emission
// order. The schema is documented in SCHEMA.md.
package jsonl

import (
	"fmt"
	"io"
	"net/netip"
	"time"
	"unsafe"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/analyze/sli"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/container"
	"github.com/rewind-tools/rewind/format/internal/jsonenc"
)

// tsLayout is RFC 3339 with nanoseconds kept to a fixed width, so that
// timestamps sort as text.
const tsLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Writer is an [analyze.Sink] writing one line per exchange. Output is
// buffered: End flushes it, and must be called before w is closed.
type Writer struct {
	out io.Writer
	// buf holds the lines not written to out yet: each line is formatted
	// straight into it, and it is written out once it holds flushAt
	// bytes, which saves copying every line into a bufio.Writer.
	buf []byte
	err error // out's error, returned from then on as bufio.Writer does
	// router names each exchange's route, as the report does.
	router *sli.Router
	// names is scratch for flag names.
	names []string
	ts    timestamps
	// input is the "capture" and "capture_host" fields' JSON, when the
	// lines name their input ([Writer.NameInput]).
	input  []byte
	named  bool
	conns  map[string]*connJSON // by connection ID
	recent [recentConns]recentConn
	req    reqJSON
}

// reqJSON is the formatted request part of the latest line ("method" to
// "query") and what it shows. A keep-alive client sends the same request
// again and again; the replay then gives consecutive exchanges the very
// same strings (it shares their heads), which compare equal at once.
type reqJSON struct {
	method, host, path, route, query string
	json                             []byte
}

// timestamps formats exchange start times. base is the wall-clock time of
// monotonic 0 in the capture's zone: adding a monotonic time gives exactly
// [analyze.CaptureInfo.Wall] without creating a time zone per exchange.
// Exchanges come in bursts within one second, so the text up to the
// seconds and the zone suffix are kept from the previous call.
type timestamps struct {
	base   time.Time
	sec    int64  // Unix second of prefix; valid when prefix is set
	prefix []byte // "2006-01-02T15:04:05."
	zone   []byte // "+02:00" or "Z"
}

func (ts *timestamps) append(b []byte, mono uint64) []byte {
	t := ts.base.Add(time.Duration(mono))
	sec, ns := t.Unix(), t.Nanosecond()
	if ts.prefix == nil || sec != ts.sec {
		full := t.AppendFormat(nil, tsLayout)
		i := len("2006-01-02T15:04:05.")
		ts.prefix, ts.zone, ts.sec = full[:i], full[i+9:], sec
	}
	b = append(b, ts.prefix...)
	// The nanoseconds are written in place: formatted in an array and
	// appended, their byte stores were read back by one wide load, which
	// the CPU cannot forward from them.
	n := len(b)
	b = append(b, "000000000"...)
	digits := b[n : n+9]
	for i := 8; i >= 0; i-- {
		digits[i] = byte('0' + ns%10)
		ns /= 10
	}
	return append(b, ts.zone...)
}

// New returns a Writer to w. Each line's route is found as the SLI
// report finds its endpoints: the first of routes (--route) that matches
// the path, else the path's automatic template.
func New(w io.Writer, routes ...sli.Route) *Writer {
	return &Writer{out: w, buf: make([]byte, 0, bufSize), router: sli.NewRouter(routes)}
}

// NameInput makes every line name its input ("capture": its path, and
// "capture_host": the host it was recorded on), for an analysis of several
// inputs whose lines share one file: connection ids and seq numbers are
// each input's own. Call it before the replay.
func (w *Writer) NameInput() *Writer {
	w.named = true
	return w
}

// Begin implements [analyze.Sink].
func (w *Writer) Begin(info *analyze.CaptureInfo) error {
	w.ts = timestamps{base: info.Wall(0)}
	if w.named {
		b := jsonenc.Key(nil, "capture")
		b = jsonenc.String(b, info.Path)
		b = append(b, ',')
		b = jsonenc.Key(b, "capture_host")
		b = jsonenc.String(b, info.HostName())
		w.input = append(b, ',')
	}
	return nil
}

// Exchange implements [analyze.Sink].
func (w *Writer) Exchange(ex *analyze.Exchange) error {
	if w.err != nil {
		return fmt.Errorf("writing exchange %d: %w", ex.Seq, w.err)
	}
	w.buf = w.appendExchange(w.buf, ex)
	w.buf = append(w.buf, '\n')
	if len(w.buf) >= flushAt {
		if err := w.flush(); err != nil {
			return fmt.Errorf("writing exchange %d: %w", ex.Seq, err)
		}
	}
	return nil
}

// Lines are buffered up to flushAt bytes, in a buffer of bufSize: room for
// a typical line beyond flushAt, so that it rarely grows.
const (
	flushAt = 256 << 10
	bufSize = 260 << 10
)

// flush writes out the buffered lines.
func (w *Writer) flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.out.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = err
		return err
	}
	w.buf = w.buf[:0]
	return nil
}

// The optional sink interfaces the replay finds by type assertion.
var (
	_ analyze.HeaderLookupSink    = (*Writer)(nil)
	_ analyze.KeepsNoExchangeSink = (*Writer)(nil)
	_ analyze.FlushSink           = (*Writer)(nil)
)

// HeaderLookupOnly reports that the writer reads header fields only by
// name: see [analyze.HeaderLookupSink].
func (w *Writer) HeaderLookupOnly() bool { return true }

// KeepsNoExchange reports that the writer keeps no exchange: see
// [analyze.KeepsNoExchangeSink].
func (w *Writer) KeepsNoExchange() bool { return true }

// Flush implements [analyze.FlushSink]: it writes out the lines buffered,
// through the underlying writer's own Flush when it has one.
func (w *Writer) Flush() error {
	if err := w.flush(); err != nil {
		return fmt.Errorf("writing exchanges: %w", err)
	}
	if f, ok := w.out.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil {
			return fmt.Errorf("writing exchanges: %w", err)
		}
	}
	return nil
}

// End implements [analyze.Sink]: it flushes the output.
func (w *Writer) End(*analyze.Summary) error {
	if err := w.flush(); err != nil {
		return fmt.Errorf("writing exchanges: %w", err)
	}
	return nil
}

// connJSON is the formatted connection part of a line ("conn" to
// "remote"), kept per connection: consecutive exchanges of a connection
// share it while the fields it shows are unchanged.
type connJSON struct {
	id            string
	pid           uint32
	comm, tls     string
	role          capture.Role
	local, remote netip.AddrPort
	ctr           container.Info
	netns         uint64
	json          []byte
}

// maxConnJSON bounds the connections whose part is kept.
const maxConnJSON = 4096

// appendConn appends the connection part of a line.
func (w *Writer) appendConn(b []byte, c *analyze.Conn) []byte {
	// The replay hands a connection's consecutive exchanges the same Conn
	// while its description is unchanged: most lines find their part by
	// pointer, without hashing the ID.
	slot := &w.recent[(uintptr(unsafe.Pointer(c))>>7)%uintptr(len(w.recent))]
	if slot.c == c && slot.e.shows(c) {
		return append(b, slot.e.json...)
	}
	e := w.conns[c.ID]
	if e == nil {
		if w.conns == nil || len(w.conns) >= maxConnJSON {
			w.conns = map[string]*connJSON{}
			w.recent = [recentConns]recentConn{}
		}
		e = &connJSON{}
		w.conns[c.ID] = e
	}
	if !e.shows(c) {
		*e = connJSON{id: c.ID, pid: c.PID, comm: c.Comm, tls: c.TLS, role: c.Role, local: c.Local, remote: c.Remote,
			ctr: c.Container, netns: c.NetNS, json: formatConn(e.json[:0], c)}
	}
	*slot = recentConn{c: c, e: e}
	return append(b, e.json...)
}

// shows says whether e is the formatted part of c as it is now.
func (e *connJSON) shows(c *analyze.Conn) bool {
	return e.id == c.ID && e.pid == c.PID && e.comm == c.Comm && e.tls == c.TLS && e.role == c.Role &&
		e.local == c.Local && e.remote == c.Remote && e.ctr == c.Container && e.netns == c.NetNS
}

// recentConn remembers which part a Conn pointer showed last.
type recentConn struct {
	c *analyze.Conn
	e *connJSON
}

// recentConns is the size of that cache, indexed by pointer.
const recentConns = 16

// formatConn appends the connection part of a line.
func formatConn(b []byte, c *analyze.Conn) []byte {
	b = jsonenc.Key(b, "conn")
	b = jsonenc.String(b, c.ID)
	b = append(b, ',')
	b = jsonenc.Key(b, "pid")
	b = jsonenc.Uint(b, uint64(c.PID))
	b = append(b, ',')
	b = jsonenc.Key(b, "comm")
	b = jsonenc.String(b, c.Comm)
	if ct := c.Container; ct.Known() {
		b = append(b, `,"container":{`...)
		b = jsonenc.Key(b, "runtime")
		b = jsonenc.String(b, ct.Runtime)
		b = append(b, ',')
		b = jsonenc.Key(b, "id")
		b = jsonenc.String(b, ct.ID)
		if ct.PodUID != "" {
			b = appendField(b, "pod_uid", ct.PodUID)
			b = appendField(b, "qos", ct.QoS)
		}
		for _, f := range [...][2]string{{"pod", ct.Pod}, {"namespace", ct.Namespace}, {"hostname", ct.Hostname}, {"name", ct.Name}} {
			if f[1] != "" {
				b = appendField(b, f[0], f[1])
			}
		}
		b = append(b, '}')
	}
	if c.NetNS != 0 {
		b = append(b, ',')
		b = jsonenc.Key(b, "netns")
		b = jsonenc.Uint(b, c.NetNS)
	}
	b = append(b, ',')
	b = jsonenc.Key(b, "role")
	b = jsonenc.String(b, c.Role.String())
	b = append(b, ',')
	b = jsonenc.Key(b, "tls")
	tls := c.TLS
	if tls == "" {
		tls = "none"
	}
	b = jsonenc.String(b, tls)
	if c.Local.IsValid() {
		b = append(b, ',')
		b = jsonenc.Key(b, "local")
		b = append(b, '"')
		b = c.Local.AppendTo(b)
		b = append(b, '"')
	}
	if c.Remote.IsValid() {
		b = append(b, ',')
		b = jsonenc.Key(b, "remote")
		b = append(b, '"')
		b = c.Remote.AppendTo(b)
		b = append(b, '"')
	}
	return b
}

// requestPart returns the request part of ex's line, from the comma
// before "method" to "query", formatted anew only when it differs from the
// previous line's.
func (w *Writer) requestPart(ex *analyze.Exchange) []byte {
	r, route := &ex.Request, w.router.Route(ex)
	q := &w.req
	if q.json != nil && r.Method == q.method && r.Host == q.host && r.Path == q.path && route == q.route && r.Query == q.query {
		return q.json
	}
	b := q.json[:0]
	b = append(b, ',')
	b = jsonenc.Key(b, "method")
	b = jsonenc.String(b, r.Method)
	b = append(b, ',')
	b = jsonenc.Key(b, "host")
	b = jsonenc.String(b, r.Host)
	b = append(b, ',')
	b = jsonenc.Key(b, "path")
	b = jsonenc.String(b, r.Path)
	b = append(b, ',')
	b = jsonenc.Key(b, "route")
	b = jsonenc.String(b, route)
	if r.Query != "" {
		b = append(b, ',')
		b = jsonenc.Key(b, "query")
		b = jsonenc.String(b, r.Query)
	}
	*q = reqJSON{method: r.Method, host: r.Host, path: r.Path, route: route, query: r.Query, json: b}
	return b
}

// appendExchange appends ex's JSON object, without a newline, to b.
func (w *Writer) appendExchange(b []byte, ex *analyze.Exchange) []byte {
	c := ex.Conn
	if c == nil {
		c = &analyze.Conn{}
	}
	b = append(b, '{')
	b = jsonenc.Key(b, "ts")
	b = append(b, '"')
	b = w.ts.append(b, ex.Start())
	b = append(b, '"', ',')
	b = append(b, w.input...)
	b = jsonenc.Key(b, "seq")
	b = jsonenc.Int(b, int64(ex.Seq))
	b = append(b, ',')
	b = w.appendConn(b, c)
	b = append(b, ',')
	b = jsonenc.Key(b, "proto")
	b = jsonenc.String(b, ex.Proto)
	if ex.StreamID != 0 {
		b = append(b, ',')
		b = jsonenc.Key(b, "stream_id")
		b = jsonenc.Uint(b, uint64(ex.StreamID))
	}
	b = append(b, w.requestPart(ex)...)
	if ex.Response.Status != 0 {
		b = append(b, ',')
		b = jsonenc.Key(b, "status")
		b = jsonenc.Int(b, int64(ex.Response.Status))
	}
	if n := ex.Request.BodyBytes; n >= 0 {
		b = append(b, ',')
		b = jsonenc.Key(b, "req_body_bytes")
		b = jsonenc.Int(b, n)
	}
	// A response was seen when it has a status or (HTTP/0.9) an end.
	if n := ex.Response.BodyBytes; n >= 0 && (ex.Response.Status != 0 || ex.Response.End != 0) {
		b = append(b, ',')
		b = jsonenc.Key(b, "resp_body_bytes")
		b = jsonenc.Int(b, n)
	}
	if ct := ex.Response.HeaderValue("Content-Type"); ct != "" {
		b = append(b, ',')
		b = jsonenc.Key(b, "resp_content_type")
		b = jsonenc.String(b, ct)
	}
	b = append(b, ',')
	b = jsonenc.Key(b, "timings")
	b = append(b, '{')
	n := 0
	for _, t := range [...]struct {
		name string
		v    int64
	}{{"server", ex.Timings.Server}, {"transfer", ex.Timings.Transfer}, {"network", ex.Timings.Network}, {"total", ex.Timings.Total}} {
		if t.v < 0 {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = jsonenc.Key(b, t.name)
		b = jsonenc.Int(b, t.v)
	}
	b = append(b, '}', ',')
	b = jsonenc.Key(b, "flags")
	w.names = ex.Flags.AppendNames(w.names[:0])
	b = jsonenc.Strings(b, w.names)
	if g := ex.GRPC; g != nil {
		b = append(b, ',')
		b = jsonenc.Key(b, "grpc")
		b = append(b, '{')
		b = jsonenc.Key(b, "service")
		b = jsonenc.String(b, g.Service)
		b = append(b, ',')
		b = jsonenc.Key(b, "method")
		b = jsonenc.String(b, g.Method)
		if g.Status >= 0 {
			b = append(b, ',')
			b = jsonenc.Key(b, "status")
			b = jsonenc.Int(b, int64(g.Status))
		}
		if g.Message != "" {
			b = append(b, ',')
			b = jsonenc.Key(b, "message")
			b = jsonenc.String(b, g.Message)
		}
		b = append(b, ',')
		b = jsonenc.Key(b, "req_msgs")
		b = jsonenc.Int(b, int64(g.RequestMsgs))
		b = append(b, ',')
		b = jsonenc.Key(b, "resp_msgs")
		b = jsonenc.Int(b, int64(g.ResponseMsgs))
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendField appends `,"key":"value"` to b.
func appendField(b []byte, key, value string) []byte {
	b = append(b, ',')
	b = jsonenc.Key(b, key)
	return jsonenc.String(b, value)
}
