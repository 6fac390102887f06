package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/capture/capturetest"
)

// A capture recorded with --redact says so, and warns about HTTP/2
// connections, whose HPACK-compressed headers the recorder cannot mask.
func TestInfoRedactedCaptureWithHTTP2(t *testing.T) {
	b := capturetest.New()
	b.Header.Options.Redact = true
	b.Header.Options.RedactHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key"}
	p := b.Process(1, "curl")
	h1 := p.Connect(0, "127.0.0.1:4000", "127.0.0.1:80")
	h1.Write("GET / HTTP/1.1\r\nHost: x\r\nAuthorization: ************\r\n\r\n")
	h2 := p.Connect(0, "127.0.0.1:4001", "127.0.0.1:80")
	h2.Write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
	path := filepath.Join(t.TempDir(), "redacted.rwd")
	b.WriteFile(t, path)
	code, out, _ := runCLI(t, "info", path)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"--redact, --redact-header X-Api-Key", "1 HTTP/2 connections carry HPACK-compressed headers"} {
		if !strings.Contains(out, want) {
			t.Errorf("info does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "unredacted credentials") {
		t.Errorf("masked values reported as credentials:\n%s", out)
	}
}
