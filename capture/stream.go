package capture

import (
	"errors"
	"fmt"
	"io"
)

// StreamError is a read error that shows the input is damaged rather than
// unreadable: the gzip or zstd stream around a capture, pcap or pcapng was
// cut short or failed its check. Readers report it as damage that ends the
// input, keeping what was read before it, rather than failing.
type StreamError struct {
	Codec  string // "gzip" or "zstd"
	Offset int64  // bytes of content the stream gave before the error
	Err    error  // the decompressor's error
}

func (e *StreamError) Error() string {
	if errors.Is(e.Err, io.ErrUnexpectedEOF) {
		if e.Offset == 0 {
			return fmt.Sprintf("the %s stream is cut short before any content (unexpected end of file)", e.Codec)
		}
		return fmt.Sprintf("the %s stream is cut short after %d bytes of content (unexpected end of file)", e.Codec, e.Offset)
	}
	return fmt.Sprintf("the %s stream is damaged after %d bytes of content (%v): what was read may be wrong", e.Codec, e.Offset, e.Err)
}

// Unwrap returns the decompressor's error.
func (e *StreamError) Unwrap() error { return e.Err }
