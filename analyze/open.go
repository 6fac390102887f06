package analyze

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

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
	head, _ := br.Peek(8)
	switch {
	case bytes.HasPrefix(head, []byte(capture.Magic)) || (len(head) < len(capture.Magic) && bytes.HasPrefix([]byte(capture.Magic), head) && len(head) > 0):
		rd, err := capture.NewReader(br)
		if err != nil {
			return nil, err
		}
		return &Input{
			Source: rd,
			Info:   &CaptureInfo{Path: name, Format: "rewind", Header: rd.Header()},
			close:  rd.Close,
		}, nil
	case isPcap(head):
		return nil, fmt.Errorf("%s is a pcap/pcapng file: reading those is not built yet", name)
	}
	return nil, ErrUnknownInput
}

func isPcap(head []byte) bool {
	if len(head) < 4 {
		return false
	}
	switch string(head[:4]) {
	case "\xd4\xc3\xb2\xa1", "\xa1\xb2\xc3\xd4", "\x4d\x3c\xb2\xa1", "\xa1\xb2\x3c\x4d", "\x0a\x0d\x0d\x0a":
		return true
	}
	return false
}
