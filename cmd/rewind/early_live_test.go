//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/record"
)

// TestLiveEarlyAnswer records curl uploading bodies of 0 to 100 KB to an
// nginx location that answers before reading them (`return 200`: nginx
// replies, then reads and discards the body), over plain HTTP and HTTPS,
// on one keep-alive connection and on fresh ones. The request body is the
// request's whenever it arrives: both sides must report every upload's
// exact length, unflagged.
func TestLiveEarlyAnswer(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[tls], func(t *testing.T) { liveEarlyAnswer(t, tls) })
	}
}

func liveEarlyAnswer(t *testing.T, tls bool) {
	bpftest.RequireRoot(t)
	curl := needTool(t, "curl")
	ngx, scheme := startNginxAnswering(t, "/early", tls)
	// Snaplen: whole uploads (curl writes them in calls larger than the
	// default 16 KiB; cut ones would be flagged truncated, rightly).
	rec := startRecording(t, record.Options{Comms: []string{"nginx", "curl"}, Ports: []int{ngx.Port}, TLS: tls, Snaplen: 256 << 10})

	dir := t.TempDir()
	sizes := []int{0, 1000, 20000, 65536, 100000, 77777}
	var want []string
	// One keep-alive connection (--next reuses it), then one connection each.
	var keep []string
	for i, n := range sizes {
		f := filepath.Join(dir, fmt.Sprintf("body%d", i))
		b := make([]byte, n)
		for j := range b {
			b[j] = byte('a' + (i+j)%26)
		}
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			keep = append(keep, "--next")
		}
		keep = append(keep, "-sS", "-k", "-o", os.DevNull, "--data-binary", "@"+f, fmt.Sprintf("%s://127.0.0.1:%d/early?k=%d", scheme, ngx.Port, i))
		want = append(want, fmt.Sprintf("POST /early?k=%d 200 %d", i, n))
		one := []string{"-sS", "-k", "-o", os.DevNull, "--data-binary", "@" + f, fmt.Sprintf("%s://127.0.0.1:%d/early?c=%d", scheme, ngx.Port, i)}
		if out, err := exec.Command(curl, one...).CombinedOutput(); err != nil {
			t.Fatalf("curl: %v %s", err, out)
		}
		want = append(want, fmt.Sprintf("POST /early?c=%d 200 %d", i, n))
	}
	if out, err := exec.Command(curl, keep...).CombinedOutput(); err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	rec.stop()
	slices.Sort(want)

	exs, sum := replayFile(t, rec.path)
	for _, side := range []struct {
		comm string
		role capture.Role
	}{{"nginx", capture.RoleServer}, {"curl", capture.RoleClient}} {
		var got []string
		for _, e := range exs {
			if e.Conn.Comm != side.comm || e.Conn.Role != side.role {
				continue
			}
			// The uploads' lengths, not the 3-byte answer.
			l := fmt.Sprintf("%s %s?%s %d %d", e.Request.Method, e.Request.Path, e.Request.Query, e.Response.Status, e.Request.BodyBytes)
			if e.Flags != 0 {
				l += fmt.Sprintf(" flags=%v", e.Flags.Names())
			}
			got = append(got, l)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s side (warnings %v):\n%s", side.comm, sum.Warnings, lineDiff(got, want))
		}
	}
}

// TestLiveChunkedUpload records `curl -T -` streaming 300,000 bytes from
// its standard input as a chunked upload, at the default snaplen. curl
// writes each chunk (size line, data, CRLF) in one call, so the snaplen
// cuts every large chunk's data and CRLF: the chunk framing goes on at the
// next call, and both sides get the exact length (the client's flagged
// truncated: its bytes were cut), plain and TLS.
func TestLiveChunkedUpload(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[tls], func(t *testing.T) { liveChunkedUpload(t, tls) })
	}
}

func liveChunkedUpload(t *testing.T, tls bool) {
	bpftest.RequireRoot(t)
	curl := needTool(t, "curl")
	ngx, scheme := startNginxAnswering(t, "/up", tls)
	rec := startRecording(t, record.Options{Comms: []string{"nginx", "curl"}, Ports: []int{ngx.Port}, TLS: tls})
	const size = 300000
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i * 7)
	}
	for i := 0; i < 3; i++ {
		cmd := exec.Command(curl, "-sS", "-k", "-o", os.DevNull, "-T", "-", "-X", "POST", fmt.Sprintf("%s://127.0.0.1:%d/up?i=%d", scheme, ngx.Port, i))
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("curl -T -: %v %s", err, out)
		}
	}
	rec.stop()
	exs, sum := replayFile(t, rec.path)
	for _, side := range []struct {
		comm string
		role capture.Role
	}{{"nginx", capture.RoleServer}, {"curl", capture.RoleClient}} {
		n := 0
		for _, e := range exs {
			if e.Conn.Comm != side.comm || e.Conn.Role != side.role {
				continue
			}
			n++
			if e.Request.BodyBytes != size || e.Flags&(analyze.FlagIncomplete|analyze.FlagDesynced) != 0 {
				t.Errorf("%s: %s %s: body %d bytes, want %d (flags %v)", side.comm, e.Request.Method, e.Request.Target, e.Request.BodyBytes, size, e.Flags.Names())
			}
		}
		if n != 3 {
			t.Errorf("%s: %d exchanges, want 3 (warnings %v)", side.comm, n, sum.Warnings)
		}
	}
}

// startNginxAnswering starts nginx with a location that answers 200 at
// once, before reading any request body (and then reads and discards it),
// over HTTPS when tls is set; it returns the server and its URL scheme.
func startNginxAnswering(t *testing.T, location string, tls bool) (*nginxServer, string) {
	t.Helper()
	extra, listen, scheme := fmt.Sprintf("location %s { return 200 \"ok\\n\"; }", location), "", "http"
	if tls {
		cert, key := makeCert(t)
		extra += fmt.Sprintf("\n    ssl_certificate %s;\n    ssl_certificate_key %s;", cert, key)
		listen, scheme = "ssl", "https"
	}
	return startNginxListen(t, wwwDir(t), listen, extra), scheme
}
