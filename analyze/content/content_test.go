package content

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

func enc(t testing.TB, coding string, in []byte) []byte {
	var b bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch coding {
	case "gzip", "x-gzip":
		w = gzip.NewWriter(&b)
	case "deflate":
		w = zlib.NewWriter(&b)
	case "rawdeflate":
		fw, _ := flate.NewWriter(&b, flate.DefaultCompression)
		w = fw
	case "br":
		w = brotli.NewWriter(&b)
	case "zstd":
		zw, err := zstd.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	default:
		return in
	}
	if _, err := w.Write(in); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var sample = []byte(strings.Repeat(`{"id":42,"name":"rewind","tags":["a","b"]}`+"\n", 200))

func TestDecode(t *testing.T) {
	tests := []struct {
		header string
		stack  []string // encoders applied in order
	}{
		{"gzip", []string{"gzip"}},
		{"x-gzip", []string{"gzip"}},
		{"GZIP", []string{"gzip"}},
		{"deflate", []string{"deflate"}},
		{"deflate", []string{"rawdeflate"}},
		{"br", []string{"br"}},
		{"zstd", []string{"zstd"}},
		{"identity", nil},
		{"", nil},
		{"gzip, br", []string{"gzip", "br"}},
		{"br,zstd", []string{"br", "zstd"}},
		{"deflate, identity, gzip", []string{"rawdeflate", "gzip"}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%v", tc.header, tc.stack), func(t *testing.T) {
			body := sample
			for _, c := range tc.stack {
				body = enc(t, c, body)
			}
			got, err := Decode(tc.header, body, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, sample) {
				t.Fatalf("got %d bytes, want %d", len(got), len(sample))
			}
		})
	}
}

func TestDecodeLimit(t *testing.T) {
	bomb := bytes.Repeat([]byte{0}, 10<<20)
	for _, c := range []string{"gzip", "deflate", "br", "zstd"} {
		got, err := Decode(c, enc(t, c, bomb), 1000)
		if !errors.Is(err, ErrLimit) || len(got) != 1000 {
			t.Errorf("%s: %d bytes, %v; want 1000 bytes and ErrLimit", c, len(got), err)
		}
	}
	// Stacked bomb: the inner stage is bounded too.
	got, err := Decode("gzip, gzip", enc(t, "gzip", enc(t, "gzip", bomb)), 1000)
	if !errors.Is(err, ErrLimit) || len(got) > 1000 {
		t.Errorf("stacked: %d bytes, %v", len(got), err)
	}
	got, err = Decode("identity", sample, 10)
	if !errors.Is(err, ErrLimit) || len(got) != 10 {
		t.Errorf("identity: %d bytes, %v", len(got), err)
	}
}

func TestDecodeTruncated(t *testing.T) {
	for _, c := range []string{"gzip", "deflate", "br", "zstd"} {
		full := enc(t, c, sample)
		got, err := Decode(c, full[:len(full)*2/3], 1<<20)
		if err == nil {
			t.Errorf("%s: no error for a truncated body", c)
		}
		if !bytes.HasPrefix(sample, got) {
			t.Errorf("%s: partial output is not a prefix", c)
		}
	}
}

func TestDecodeUnsupported(t *testing.T) {
	got, err := Decode("compress", sample, 0)
	if !errors.Is(err, ErrUnsupported) || !bytes.Equal(got, sample) {
		t.Errorf("got %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range []string{"gzip", "deflate", "rawdeflate", "br", "zstd"} {
		h := c
		if c == "rawdeflate" {
			h = "deflate"
		}
		f.Add(h, enc(f, c, sample[:300]))
	}
	f.Add("gzip, br", enc(f, "br", enc(f, "gzip", []byte("hello"))))
	f.Add("identity", []byte("x"))
	f.Fuzz(func(t *testing.T, coding string, body []byte) {
		out, _ := Decode(coding, body, 1<<16)
		if len(out) > 1<<16 && !bytes.Equal(out, body) {
			t.Fatalf("output %d bytes over the limit", len(out))
		}
	})
}

func BenchmarkDecodeGzip(b *testing.B) {
	body := enc(b, "gzip", sample)
	b.SetBytes(int64(len(sample)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode("gzip", body, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}
