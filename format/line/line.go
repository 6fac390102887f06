// Package line writes exchanges as one line of text each, for a person
// watching a capture as it is recorded (rewind analyze --follow):
//
//	03:46:29.659971  server rewind[6985]  127.0.0.1:37450 → 127.0.0.1:44767  GET 127.0.0.1:44767/api/users/759  200  41 B  0.172ms
//
// Columns: the request's start in the capture's zone (µs), the side and
// process, the client → server addresses, method, host and target, status
// ("-" without a response), response body bytes, total latency ("-" when
// unknown), then the flags, if any. The line is for reading, not parsing:
// use --exchanges for JSON lines.
package line

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
)

// Writer is an [analyze.Sink] writing a line per exchange. It buffers;
// Flush (called by the replay when a followed capture pauses) and End write
// the lines out.
type Writer struct {
	w     *bufio.Writer
	info  *analyze.CaptureInfo
	buf   []byte
	flags []string
}

// New returns a Writer to w.
func New(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 16<<10)}
}

// Begin implements [analyze.Sink].
func (w *Writer) Begin(info *analyze.CaptureInfo) error {
	w.info = info
	return nil
}

// Exchange implements [analyze.Sink].
func (w *Writer) Exchange(ex *analyze.Exchange) error {
	w.buf = w.appendLine(w.buf[:0], ex)
	if _, err := w.w.Write(w.buf); err != nil {
		return fmt.Errorf("writing exchange %d: %w", ex.Seq, err)
	}
	return nil
}

// Flush implements [analyze.FlushSink].
func (w *Writer) Flush() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("writing exchanges: %w", err)
	}
	return nil
}

// End implements [analyze.Sink].
func (w *Writer) End(*analyze.Summary) error { return w.Flush() }

// The optional sink interfaces the replay finds by type assertion.
var (
	_ analyze.HeaderLookupSink    = (*Writer)(nil)
	_ analyze.KeepsNoExchangeSink = (*Writer)(nil)
	_ analyze.FlushSink           = (*Writer)(nil)
)

// HeaderLookupOnly reports that the writer reads no header field: see
// [analyze.HeaderLookupSink].
func (w *Writer) HeaderLookupOnly() bool { return true }

// KeepsNoExchange reports that the writer keeps no exchange: see
// [analyze.KeepsNoExchangeSink].
func (w *Writer) KeepsNoExchange() bool { return true }

func (w *Writer) appendLine(b []byte, ex *analyze.Exchange) []byte {
	b = w.info.Wall(ex.Start()).AppendFormat(b, "15:04:05.000000")
	c := ex.Conn
	b = append(b, "  "...)
	b = append(b, c.Role.String()...)
	b = append(b, ' ')
	if c.Comm != "" || c.PID != 0 {
		b = append(b, safe(orDash(c.Comm))...)
		b = append(b, '[')
		b = strconv.AppendUint(b, uint64(c.PID), 10)
		b = append(b, ']')
	} else {
		b = append(b, "-"...)
	}
	b = append(b, "  "...)
	client, server := c.Remote, c.Local
	if c.Role == capture.RoleClient {
		client, server = c.Local, c.Remote
	}
	b = appendAddr(b, client.String(), client.IsValid())
	b = append(b, " → "...)
	b = appendAddr(b, server.String(), server.IsValid())
	b = append(b, "  "...)
	r := &ex.Request
	b = append(b, safe(orDash(r.Method))...)
	b = append(b, ' ')
	b = append(b, safe(r.Host)...)
	b = append(b, safe(r.Target)...)
	b = append(b, "  "...)
	if ex.Response.Status > 0 {
		b = strconv.AppendInt(b, int64(ex.Response.Status), 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, "  "...)
	b = appendBytes(b, ex.Response.BodyBytes)
	b = append(b, "  "...)
	if t := ex.Timings.Total; t >= 0 {
		b = appendDuration(b, time.Duration(t))
	} else {
		b = append(b, '-')
	}
	if ex.Flags != 0 {
		w.flags = ex.Flags.AppendNames(w.flags[:0])
		b = append(b, "  "...)
		b = append(b, strings.Join(w.flags, ",")...)
	}
	return append(b, '\n')
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func appendAddr(b []byte, s string, ok bool) []byte {
	if !ok {
		return append(b, '-')
	}
	return append(b, s...)
}

// safe keeps control characters of what a client or process controls (the
// target, Host, method, process name) off the watcher's terminal.
func safe(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return strconv.Quote(s)
		}
	}
	return s
}

// appendBytes writes n as B, KiB or MiB, and "-" when unknown.
func appendBytes(b []byte, n int64) []byte {
	switch {
	case n < 0:
		return append(b, '-')
	case n < 1024:
		b = strconv.AppendInt(b, n, 10)
		return append(b, " B"...)
	case n < 1<<20:
		b = strconv.AppendFloat(b, float64(n)/1024, 'f', 1, 64)
		return append(b, " KiB"...)
	}
	b = strconv.AppendFloat(b, float64(n)/(1<<20), 'f', 1, 64)
	return append(b, " MiB"...)
}

// appendDuration writes d in ms with three decimals, as the report does.
func appendDuration(b []byte, d time.Duration) []byte {
	b = strconv.AppendFloat(b, float64(d)/1e6, 'f', 3, 64)
	return append(b, "ms"...)
}
