//go:build linux

package record

import (
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/capture"
)

func TestRecordRedactor(t *testing.T) {
	r := newRecordRedactor(Options{Redact: true, RedactHeaders: []string{"X-Api-Key"}})
	data := func(fd int32, dir capture.Direction, src capture.Source, s string) *capture.Data {
		return &capture.Data{PID: 7, FD: fd, Gen: 1, Dir: dir, Source: src, Payload: []byte(s)}
	}
	// A value split across calls, a header name split across calls, and a
	// configured header; the other direction and the TLS layer are streams
	// of their own.
	calls := []*capture.Data{
		data(3, capture.Ingress, capture.SourceRead, "GET / HTTP/1.1\r\nAuthorization: Bea"),
		data(3, capture.Egress, capture.SourceWrite, "HTTP/1.1 200 OK\r\nSet-Coo"),
		data(3, capture.Ingress, capture.SourceReadv, "rer s3cret\r\nCoo"),
		data(3, capture.Egress, capture.SourceWritev, "kie: id=42\r\n\r\nbody"),
		data(3, capture.Ingress, capture.SourceRecvfrom, "kie: a=b\r\nX-API-KEY: k1\r\nHost: h\r\n\r\n"),
		data(3, capture.Ingress, capture.SourceOpenSSL, "Cookie: tls=1\r\n"),
	}
	for _, d := range calls {
		r.apply(d)
	}
	var in, out strings.Builder
	for _, d := range calls {
		if d.Dir == capture.Ingress {
			in.Write(d.Payload)
		} else {
			out.Write(d.Payload)
		}
	}
	for _, secret := range []string{"s3cret", "Bea", "a=b", "k1", "id=42", "tls=1"} {
		if strings.Contains(in.String()+out.String(), secret) {
			t.Errorf("%q not masked:\n%s\n%s", secret, in.String(), out.String())
		}
	}
	if want := "GET / HTTP/1.1\r\nAuthorization: *************\r\nCookie: ***\r\nX-API-KEY: **\r\nHost: h\r\n\r\nCookie: *****\r\n"; in.String() != want {
		t.Errorf("ingress:\n%q\nwant\n%q", in.String(), want)
	}
	if len(r.conns) != 1 {
		t.Fatalf("%d connections tracked, want 1", len(r.conns))
	}
	r.apply(&capture.Close{PID: 7, FD: 3, Gen: 1})
	if len(r.conns) != 0 {
		t.Fatalf("close did not evict: %d left", len(r.conns))
	}
	// The state stays bounded when connections never close.
	for i := 0; i < maxRedactStreams+10; i++ {
		r.apply(&capture.Data{PID: 8, FD: int32(i), Payload: []byte("x")})
	}
	if len(r.conns) > maxRedactStreams {
		t.Fatalf("%d connections tracked, bound %d", len(r.conns), maxRedactStreams)
	}
	r.apply(&capture.Exit{PID: 8})
	if len(r.conns) != 0 {
		t.Fatalf("exit did not evict: %d left", len(r.conns))
	}
	// Off: nothing is touched.
	var off *recordRedactor = newRecordRedactor(Options{})
	d := data(3, capture.Ingress, capture.SourceRead, "Cookie: x\r\n")
	off.apply(d)
	if string(d.Payload) != "Cookie: x\r\n" {
		t.Fatal("redactor off masked")
	}
}
