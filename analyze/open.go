package analyze

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rewind-tools/rewind/analyze/pcapin"
	"github.com/rewind-tools/rewind/capture"
)

// Input is an opened capture ready to replay.
type Input struct {
	Source EventSource
	Info   *CaptureInfo
	close  func() error
}

// Close releases the input's file.
func (in *Input) Close() error { return in.close() }

// WithCloser returns in with closeFn run after its own Close (to close the
// file an [OpenReader] input reads).
func (in *Input) WithCloser(closeFn func() error) *Input {
	inner := in.close
	in.close = func() error {
		err := inner()
		if cerr := closeFn(); err == nil {
			err = cerr
		}
		return err
	}
	return in
}

// ErrUnknownInput means a file is neither a rewind capture nor a pcap or
// pcapng file.
var ErrUnknownInput = errors.New("not a rewind capture, pcap or pcapng file")

// Open opens a capture for replay, recognising its format by its first bytes
// (not its name).
func Open(path string) (*Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	in, err := OpenReader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	inner := in.close
	in.close = func() error {
		inner()
		return f.Close()
	}
	return in, nil
}

// OpenReader is [Open] for an already open stream; name is used in messages
// and reports.
func OpenReader(r io.Reader, name string) (*Input, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(8)
	var se *capture.StreamError
	if errors.As(err, &se) {
		// A compressed stream that fails before its content shows a format.
		return nil, err
	}
	switch {
	case bytes.HasPrefix(head, []byte(capture.Magic)) || (len(head) < len(capture.Magic) && bytes.HasPrefix([]byte(capture.Magic), head) && len(head) > 0):
		rd, err := capture.NewReader(br)
		if err != nil {
			return nil, err
		}
		return &Input{
			Source: rd,
			Info:   &CaptureInfo{Path: filepath.ToSlash(name), Format: "rewind", Header: rd.Header()},
			close:  rd.Close,
		}, nil
	case pcapin.IsCompressed(head):
		// gzip or zstd around any of the formats: look inside.
		dr, err := pcapin.Decompress(br)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		in, err := OpenReader(dr, name)
		if err != nil {
			dr.Close()
			return nil, err
		}
		if rd, ok := in.Source.(*capture.Reader); ok {
			// A stream cut in its last bytes, after the capture's
			// trailer, is damage too.
			rd.VerifyEnd()
		}
		inner := in.close
		in.close = func() error {
			err := inner()
			dr.Close()
			return err
		}
		return in, nil
	case pcapin.IsPcap(head):
		rd, err := pcapin.NewReader(br, pcapin.Options{})
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		return &Input{
			Source: rd,
			Info:   &CaptureInfo{Path: filepath.ToSlash(name), Format: rd.Format(), Header: rd.Header()},
			close:  rd.Close,
		}, nil
	}
	return nil, ErrUnknownInput
}
