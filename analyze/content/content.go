// Package content decodes HTTP message bodies according to their
// Content-Encoding, with a bound on the decoded size so that a decompression
// bomb costs at most that much memory.
package content

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// ErrLimit is returned (wrapped) when the decoded body would exceed the
// limit; the bytes decoded up to the limit are returned with it.
var ErrLimit = errors.New("decoded body exceeds the limit")

// ErrUnsupported is returned (wrapped) for a content coding this package
// does not know (compress, exi, …); the body is returned as it was.
var ErrUnsupported = errors.New("unsupported content coding")

// Decode removes the content codings listed in contentEncoding (the value of
// a Content-Encoding header, such as "gzip" or "gzip, br") from body and
// returns at most limit bytes (limit <= 0: no limit). Codings apply in the
// order listed, so they are removed last first. Supported: gzip, x-gzip,
// deflate (zlib-wrapped or raw, as browsers accept both), br, zstd and
// identity, case-insensitively.
//
// On error Decode returns what the outermost coding decoded so far: a
// truncated body (common in captures) still yields its decodable prefix,
// with the error saying why it stopped (ErrLimit when the limit cut it). An
// error in an inner stage of stacked codings returns nil. body is never
// modified; the result may be body itself.
func Decode(contentEncoding string, body []byte, limit int) ([]byte, error) {
	codings := strings.Split(contentEncoding, ",")
	out := body
	for i := len(codings) - 1; i >= 0; i-- {
		c := strings.ToLower(strings.TrimSpace(codings[i]))
		if c == "" || c == "identity" {
			continue
		}
		last := i == 0
		lim := limit
		if !last {
			// Intermediate stages get a generous bound of their own, so a
			// stacked bomb cannot blow up before the final stage.
			lim = intermediateLimit(limit)
		}
		dec, err := decodeOne(c, out, lim)
		if err != nil {
			if !last {
				// A partial intermediate stage is still encoded: useless.
				return nil, fmt.Errorf("decoding %s: %w", c, err)
			}
			return dec, fmt.Errorf("decoding %s: %w", c, err)
		}
		out = dec
	}
	if limit > 0 && len(out) > limit {
		return out[:limit], fmt.Errorf("identity body: %w", ErrLimit)
	}
	return out, nil
}

func intermediateLimit(limit int) int {
	if limit <= 0 {
		return 0
	}
	if limit > (1<<40)/16 {
		return limit
	}
	return limit * 16
}

func decodeOne(coding string, in []byte, limit int) ([]byte, error) {
	switch coding {
	case "gzip", "x-gzip":
		r, err := gzip.NewReader(bytes.NewReader(in))
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return readLimited(r, limit)
	case "deflate":
		// RFC 9110 says zlib format, but servers send raw deflate too.
		if looksZlib(in) {
			r, err := zlib.NewReader(bytes.NewReader(in))
			if err == nil {
				out, err := readLimited(r, limit)
				r.Close()
				if err == nil || errors.Is(err, ErrLimit) || len(out) > 0 {
					return out, err
				}
			}
		}
		r := flate.NewReader(bytes.NewReader(in))
		defer r.Close()
		return readLimited(r, limit)
	case "br":
		return readLimited(brotli.NewReader(bytes.NewReader(in)), limit)
	case "zstd":
		d, err := zstd.NewReader(bytes.NewReader(in),
			zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(decoderMaxMemory(limit)))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return readLimited(d, limit)
	}
	return in, fmt.Errorf("%q: %w", coding, ErrUnsupported)
}

// decoderMaxMemory bounds the zstd window and buffers.
func decoderMaxMemory(limit int) uint64 {
	const floor = 8 << 20
	if limit <= 0 || limit < floor {
		return 64 << 20
	}
	return uint64(limit) * 2
}

// looksZlib reports whether in starts with a valid zlib header (RFC 1950):
// deflate method, window ≤ 32 KiB, header checksum.
func looksZlib(in []byte) bool {
	if len(in) < 2 {
		return false
	}
	cmf, flg := in[0], in[1]
	return cmf&0x0f == 8 && cmf>>4 <= 7 && (uint16(cmf)<<8|uint16(flg))%31 == 0
}

// readLimited reads r to its end or to limit bytes (limit <= 0: no limit).
func readLimited(r io.Reader, limit int) ([]byte, error) {
	var buf bytes.Buffer
	if limit <= 0 {
		_, err := buf.ReadFrom(r)
		return buf.Bytes(), err
	}
	n, err := buf.ReadFrom(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return buf.Bytes(), err
	}
	if n > int64(limit) {
		return buf.Bytes()[:limit], ErrLimit
	}
	return buf.Bytes(), nil
}
