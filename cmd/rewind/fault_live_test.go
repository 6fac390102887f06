//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
)

// recordProc is `rewind record` running as a child process.
type recordProc struct {
	cmd    *exec.Cmd
	stderr *strings.Builder
	done   chan error
}

// startRecordProc starts `rewind record` with args and waits for its
// "recording" line.
func startRecordProc(t *testing.T, bin string, args ...string) *recordProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"record"}, args...)...)
	pipe, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &recordProc{cmd: cmd, stderr: &strings.Builder{}, done: make(chan error, 1)}
	// stderr is read by one goroutine and by the test after exit.
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sent := false
		for sc.Scan() {
			p.stderr.WriteString(sc.Text() + "\n")
			if !sent && strings.Contains(sc.Text(), "rewind: recording") {
				ready <- true
				sent = true
			}
		}
		if !sent {
			ready <- false
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("record exited before attaching:\n%s", p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("record did not attach within 30s:\n%s", p.stderr)
	}
	return p
}

// wait waits for record to exit, at most d. It is safe to call from any
// goroutine; timedOut says record was still running.
func (p *recordProc) wait(d time.Duration) (err error, timedOut bool) {
	select {
	case err := <-p.done:
		p.done <- err // let later waiters see it too
		return err, false
	case <-time.After(d):
		return nil, true
	}
}

func (p *recordProc) mustExit(t *testing.T, d time.Duration) error {
	t.Helper()
	err, timedOut := p.wait(d)
	if timedOut {
		ps, _ := exec.Command("ps", "-o", "pid,stat,wchan:32,cmd", "-p", fmt.Sprint(p.cmd.Process.Pid)).CombinedOutput()
		t.Fatalf("record did not stop within %v:\n%s\n%s", d, p.stderr, ps)
	}
	return err
}

// traffic sends requests to a local server from this process until ctx
// ends, and returns how many completed.
func traffic(ctx context.Context, body int) int {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(strings.Repeat("r", body)))
	}))
	defer srv.Close()
	n := 0
	for ctx.Err() == nil {
		resp, err := srv.Client().Get(srv.URL + fmt.Sprintf("/item/%d", n))
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		n++
		time.Sleep(time.Millisecond)
	}
	return n
}

func infoJSONOf(t *testing.T, bin, path string) map[string]any {
	t.Helper()
	out, err := exec.Command(bin, "info", "--json", path).Output()
	if err != nil {
		t.Fatalf("info %s: %v", path, err)
	}
	var j map[string]any
	if err := json.Unmarshal(out, &j); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestLiveRecordFaults kills, fills and limits the recorder and checks that
// what it wrote is always readable and says what happened.
func TestLiveRecordFaults(t *testing.T) {
	bpftest.RequireRoot(t)
	bin := buildRewind(t)
	pid := fmt.Sprint(os.Getpid())

	t.Run("SIGKILL", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "killed.rwd")
		p := startRecordProc(t, bin, "-o", path, "--pid", pid)
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		n := traffic(ctx, 100)
		cancel()
		p.cmd.Process.Signal(syscall.SIGKILL)
		// The kernel removes the recorder's uprobes one by one at exit (about
		// 0.1 s each), so a killed recorder can take seconds to go.
		p.mustExit(t, 60*time.Second)
		j := infoJSONOf(t, bin, path)
		byKind := j["events_by_kind"].(map[string]any)
		if j["clean_close"] != false || byKind["data"].(float64) == 0 || j["chunks_recovered"].(float64) < 1 {
			t.Fatalf("after SIGKILL (%d requests sent): %v", n, j)
		}
		// analyze reads it and warns.
		out, err := exec.Command(bin, "analyze", path, "--report", "json").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "not closed cleanly") {
			t.Fatalf("analyze after SIGKILL: %v\n%s", err, out)
		}
		t.Logf("SIGKILL after %d requests: %v data events, %v chunks recovered", n, byKind["data"], j["chunks_recovered"])
	})

	t.Run("max-size", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "limited.rwd")
		p := startRecordProc(t, bin, "-o", path, "--pid", pid, "--max-size", "64KiB")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		go func() { p.wait(25 * time.Second); cancel() }()
		traffic(ctx, 4000)
		cancel()
		p.mustExit(t, 5*time.Second)
		j := infoJSONOf(t, bin, path)
		st, _ := os.Stat(path)
		if j["clean_close"] != true || j["stop_reason"] != "max-size" || st.Size() > 96<<10 {
			t.Fatalf("max-size: size %d, %v", st.Size(), j)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("capture mode %v, want 0600", st.Mode().Perm())
		}
	})

	t.Run("duration", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "timed.rwd")
		start := time.Now()
		p := startRecordProc(t, bin, "-o", path, "--pid", pid, "--duration", "1s")
		if err := p.mustExit(t, 20*time.Second); err != nil {
			t.Fatalf("record --duration: %v\n%s", err, p.stderr)
		}
		j := infoJSONOf(t, bin, path)
		if j["clean_close"] != true || j["stop_reason"] != "duration" || time.Since(start) > 15*time.Second {
			t.Fatalf("duration: %v", j)
		}
	})

	t.Run("full disk", func(t *testing.T) {
		dir := t.TempDir()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", dir).CombinedOutput(); err != nil {
			bpftest.Unavailable(t, fmt.Sprintf("cannot mount a tmpfs: %v %s", err, out))
		}
		defer exec.Command("umount", dir).Run()
		path := filepath.Join(dir, "full.rwd")
		p := startRecordProc(t, bin, "-o", path, "--pid", pid)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		go func() { p.wait(25 * time.Second); cancel() }()
		traffic(ctx, 8000)
		cancel()
		err := p.mustExit(t, 5*time.Second)
		if err == nil || !strings.Contains(p.stderr.String(), "no space left") {
			t.Fatalf("full disk: exit %v, stderr:\n%s", err, p.stderr)
		}
		j := infoJSONOf(t, bin, path)
		if j["chunks_recovered"].(float64) < 1 || j["events_by_kind"].(map[string]any)["data"].(float64) == 0 {
			t.Fatalf("full disk: file not readable: %v", j)
		}
		t.Logf("full disk: %s", strings.TrimSpace(p.stderr.String()))
	})
}
