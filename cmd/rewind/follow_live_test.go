//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
)

// TestLiveFollow follows a capture while rewind record writes it: each
// request shows as a line within a few seconds of being answered, the
// filters apply, --exchanges - gives JSON lines, Ctrl-C stops following
// with exit 0, and closing the recording ends the follow (#20 item 6).
func TestLiveFollow(t *testing.T) {
	bpftest.RequireRoot(t)
	bin := buildRewind(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "followed")
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	file := filepath.Join(t.TempDir(), "live.rwd")
	rec := startRecordProc(t, bin, "-o", file, "--port", u.Port(), "--no-tls")

	text := startFollower(t, bin, "text", file, "--role", "server")
	jsonl := startFollower(t, bin, "jsonl", file, "--exchanges", "-", "--role", "client")
	stopped := startFollower(t, bin, "interrupted", file)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 5 {
		path := fmt.Sprintf("/follow/%d", i)
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		answered := time.Now()
		l := text.await(t, path, 10*time.Second)
		if took := time.Since(answered); took > 5*time.Second {
			t.Errorf("%s shown %v after its answer", path, took)
		}
		if !strings.Contains(l, " server ") || !strings.Contains(l, "  200  8 B  ") {
			t.Errorf("line %q: want a server exchange, 200, 8 B", l)
		}
		var ex struct {
			Role, Path string
			Status     int
		}
		if err := json.Unmarshal([]byte(jsonl.await(t, path, 10*time.Second)), &ex); err != nil || ex.Role != "client" || ex.Status != 200 {
			t.Errorf("JSON line of %s: %+v, %v", path, ex, err)
		}
		if i == 2 {
			// Ctrl-C: the follower stops at once, exit 0, and says the
			// recording was still going.
			stopped.await(t, "/follow/2", 10*time.Second)
			stopped.cmd.Process.Signal(syscall.SIGINT)
			if err := stopped.exit(t, 10*time.Second); err != nil || !strings.Contains(stopped.stderr.String(), "stopped following") {
				t.Errorf("after Ctrl-C: %v; stderr %q", err, stopped.stderr.String())
			}
		}
	}
	select {
	case l, ok := <-text.lines:
		if ok && strings.Contains(l, " client ") {
			t.Errorf("--role server printed a client line: %q", l)
		}
	case <-time.After(500 * time.Millisecond):
	}
	// The recording closes the file: both followers end on their own.
	rec.cmd.Process.Signal(syscall.SIGINT)
	rec.mustExit(t, 60*time.Second)
	for name, f := range map[string]*follower{"text": text, "jsonl": jsonl} {
		if err := f.exit(t, 15*time.Second); err != nil {
			t.Errorf("%s follower: %v\n%s", name, err, f.stderr.String())
		}
		if strings.Contains(f.stderr.String(), "not closed cleanly") {
			t.Errorf("%s follower: %s", name, f.stderr.String())
		}
	}
}
