// Package har writes exchanges as an HTTP Archive (HAR 1.2) that validates
// against the HAR 1.2 JSON schema and opens in browsers' developer tools.
//
// The writer streams: each entry is written when its exchange arrives, so
// memory stays flat whatever the capture's size. Entries are in emission
// order, one per line. Beyond the standard fields it writes custom fields
// (prefixed "_", as HAR allows): on each entry _pid, _comm, _connection
// (the connection id shared with the JSONL output), _role, _tls, _flags,
// _seq, and where they apply _container (as "container" in JSON lines),
// _netns (the network namespace inode, as "netns" there),
// _streamId and _grpc; _network in timings;
// _truncated in content and postData; and _capture and _warnings on log.
package har

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/format/internal/jsonenc"
)

// DefaultMaxBodyBytes is the default cap on the body bytes written per
// message, after content decoding.
const DefaultMaxBodyBytes = 1 << 20

// Options configure a [Writer].
type Options struct {
	// MaxBodyBytes caps each body's decoded bytes in the archive; longer
	// bodies are cut and marked "_truncated". 0 means
	// [DefaultMaxBodyBytes]; negative leaves bodies out.
	MaxBodyBytes int
	// Version is rewind's version for log.creator.
	Version string
}

// Writer is an [analyze.Sink] writing a HAR document. Output is buffered:
// End completes the document and flushes it, and must be called before w
// is closed. After an error the document is incomplete.
type Writer struct {
	w       *bufio.Writer
	opts    Options
	buf     []byte
	url     []byte   // scratch for the request URL
	names   []string // scratch for flag names
	entries int
	base    time.Time // wall time of monotonic 0, see jsonl
}

// New returns a Writer to w.
func New(w io.Writer, opts Options) *Writer {
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	return &Writer{w: bufio.NewWriterSize(w, 64<<10), opts: opts, buf: make([]byte, 0, 4096)}
}

// Begin implements [analyze.Sink]: it writes the document's head.
func (w *Writer) Begin(info *analyze.CaptureInfo) error {
	w.base = info.Wall(0)
	b := w.buf[:0]
	b = append(b, `{"log":{"version":"1.2","creator":{"name":"rewind","version":`...)
	b = jsonenc.String(b, w.opts.Version)
	b = append(b, `},"_capture":{"path":`...)
	b = jsonenc.String(b, info.Path)
	b = append(b, `,"format":`...)
	b = jsonenc.String(b, info.Format)
	b = append(b, `,"host":`...)
	b = jsonenc.String(b, info.Header.Host)
	b = append(b, `},"pages":[],"entries":[`...)
	w.buf = b
	return w.write("writing HAR head")
}

// Exchange implements [analyze.Sink]: it writes one entry.
func (w *Writer) Exchange(ex *analyze.Exchange) error {
	b := w.buf[:0]
	if w.entries > 0 {
		b = append(b, ',')
	}
	b = append(b, '\n')
	w.buf = w.appendEntry(b, ex)
	w.entries++
	return w.write("writing HAR entry")
}

// End implements [analyze.Sink]: it closes the document, with the replay's
// warnings, and flushes it.
func (w *Writer) End(sum *analyze.Summary) error {
	b := append(w.buf[:0], "\n]"...)
	if sum != nil && len(sum.Warnings) > 0 {
		b = append(b, `,"_warnings":[`...)
		for i, s := range sum.Warnings {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.String(b, s)
		}
		b = append(b, ']')
	}
	b = append(b, "}}\n"...)
	w.buf = b
	if err := w.write("writing HAR end"); err != nil {
		return err
	}
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("writing HAR: %w", err)
	}
	return nil
}

func (w *Writer) write(what string) error {
	if _, err := w.w.Write(w.buf); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	// Do not keep a huge buffer after an entry with a large body.
	if cap(w.buf) > 4<<20 {
		w.buf = make([]byte, 0, 4096)
	}
	return nil
}
