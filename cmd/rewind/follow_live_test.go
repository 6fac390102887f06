//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
)

// follower is `rewind analyze --follow` running as a child process, its
// standard output read line by line.
type follower struct {
	name   string
	cmd    *exec.Cmd
	lines  chan string
	stderr strings.Builder
	done   chan error
}

func startFollower(t *testing.T, bin, name string, args ...string) *follower {
	t.Helper()
	f := &follower{name: name, cmd: exec.Command(bin, append([]string{"analyze", "--follow"}, args...)...),
		lines: make(chan string, 1000), done: make(chan error, 1)}
	out, _ := f.cmd.StdoutPipe()
	f.cmd.Stderr = &f.stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.cmd.Process.Kill() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
		close(f.lines)
		f.done <- f.cmd.Wait()
	}()
	return f
}

// await returns the first line containing want, within d.
func (f *follower) await(t *testing.T, want string, d time.Duration) string {
	t.Helper()
	deadline := time.After(d)
	var seen []string
	for {
		select {
		case l, ok := <-f.lines:
			if !ok {
				t.Fatalf("%s follower ended before printing %q; lines %q; stderr:\n%s", f.name, want, seen, f.stderr.String())
			}
			if strings.Contains(l, want) {
				return l
			}
			seen = append(seen, l)
		case <-deadline:
			t.Fatalf("%s follower: no line with %q within %v; lines %q; stderr:\n%s", f.name, want, d, seen, f.stderr.String())
		}
	}
}

func (f *follower) exit(t *testing.T, d time.Duration) error {
	t.Helper()
	for range f.lines {
	}
	select {
	case err := <-f.done:
		return err
	case <-time.After(d):
		t.Fatalf("%s follower did not exit within %v; stderr:\n%s", f.name, d, f.stderr.String())
		return nil
	}
}

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
