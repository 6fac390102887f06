//go:build unix

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/capturetest"
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

// quiet fails if the follower prints a line within d: what it shows must
// wait for the chunk that holds it.
func (f *follower) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case l, ok := <-f.lines:
		if ok {
			t.Errorf("%s follower printed %q before its chunk was written", f.name, l)
		}
	case <-time.After(d):
	}
}

// growingCapture is a capture being written as `rewind record` writes one:
// a chunk at a time, each landing in the file with one write.
type growingCapture struct {
	t       *testing.T
	path    string
	file    *os.File
	pending bytes.Buffer // what the capture writer wrote, not yet in the file
	w       *capture.Writer
	events  []capture.Event
	ends    []int // events[:ends[i]] complete exchange i
}

// newGrowingCapture describes n keep-alive exchanges GET /follow/i of a
// server "api", and writes the capture's header and snapshot to a file.
func newGrowingCapture(t *testing.T, n int) *growingCapture {
	b := capturetest.New()
	c := b.Process(100, "api").Accept(0, "127.0.0.1:8080", "127.0.0.1:40000")
	g := &growingCapture{t: t, path: filepath.Join(t.TempDir(), "growing.rwd")}
	for i := range n {
		c.Read(fmt.Sprintf("GET /follow/%d HTTP/1.1\r\nHost: h\r\n\r\n", i))
		c.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		g.ends = append(g.ends, len(b.Events()))
	}
	c.Close()
	g.events = b.Events()
	var err error
	if g.file, err = os.Create(g.path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.file.Close() })
	g.w = b.Start(t, &g.pending)
	g.land(len(g.pending.Bytes()))
	return g
}

// chunk writes the events up to the end of exchange i as one chunk, and
// lands the first part bytes of it in the file (all with part < 0).
func (g *growingCapture) chunk(i, part int) {
	g.t.Helper()
	from := 0
	if i > 0 {
		from = g.ends[i-1]
	}
	for _, ev := range g.events[from:g.ends[i]] {
		if err := g.w.Write(ev); err != nil {
			g.t.Fatal(err)
		}
	}
	if err := g.w.Flush(); err != nil {
		g.t.Fatal(err)
	}
	if part < 0 {
		part = g.pending.Len()
	} else if part >= g.pending.Len() {
		g.t.Fatalf("chunk %d is %d bytes: %d of them is not a part", i, g.pending.Len(), part)
	}
	g.land(part)
}

// land appends the first n pending bytes to the file in one write.
func (g *growingCapture) land(n int) {
	g.t.Helper()
	if _, err := g.file.Write(g.pending.Next(n)); err != nil {
		g.t.Fatal(err)
	}
}

// close writes the rest of the events and the trailer, as the recorder
// does when it stops.
func (g *growingCapture) close() {
	g.t.Helper()
	for _, ev := range g.events[g.ends[len(g.ends)-1]:] {
		if err := g.w.Write(ev); err != nil {
			g.t.Fatal(err)
		}
	}
	if err := g.w.Close(); err != nil {
		g.t.Fatal(err)
	}
	g.land(g.pending.Len())
}

// TestFollowGrowingCapture runs analyze --follow on a capture written a
// chunk at a time, without root: each exchange shows as a line once its
// chunk is in the file and not before, and the follower ends by itself
// with exit 0 when the trailer is written (#20 item 6).
func TestFollowGrowingCapture(t *testing.T) {
	bin := buildRewind(t)
	const n = 4
	g := newGrowingCapture(t, n)
	f := startFollower(t, bin, "growing", g.path)
	f.quiet(t, 300*time.Millisecond)
	for i := range n {
		g.chunk(i, -1)
		path := fmt.Sprintf("/follow/%d", i)
		l := f.await(t, path, 10*time.Second)
		if !strings.Contains(l, " server api[100] ") || !strings.Contains(l, "  200  2 B  ") {
			t.Errorf("line %q: want a server exchange of api[100], 200, 2 B", l)
		}
		f.quiet(t, 300*time.Millisecond)
	}
	g.close()
	if err := f.exit(t, 15*time.Second); err != nil {
		t.Errorf("after the trailer: %v; want exit 0", err)
	}
	if s := f.stderr.String(); s != "" {
		t.Errorf("a capture closed cleanly, yet stderr says %q", s)
	}
}

// TestFollowInterrupted: Ctrl-C stops following with exit 0 and says the
// recording was still going. The recorder may be halfway through writing a
// chunk at that moment: that is a recording in progress, not damage, and
// is not reported as a skipped chunk.
func TestFollowInterrupted(t *testing.T) {
	bin := buildRewind(t)
	for name, part := range map[string]int{"at a chunk's end": 0, "inside a chunk": 40, "inside a chunk header": 5} {
		t.Run(name, func(t *testing.T) {
			g := newGrowingCapture(t, 2)
			f := startFollower(t, bin, "interrupted", g.path)
			g.chunk(0, -1)
			f.await(t, "/follow/0", 10*time.Second)
			g.chunk(1, part)
			f.quiet(t, 300*time.Millisecond)
			f.cmd.Process.Signal(syscall.SIGINT)
			err := f.exit(t, 10*time.Second)
			stderr := f.stderr.String()
			if err != nil {
				t.Errorf("after Ctrl-C: %v; want exit 0", err)
			}
			if !strings.Contains(stderr, "rewind: warning: stopped following before the recording ended") ||
				strings.Contains(stderr, "damaged") || strings.Contains(stderr, "skipped") {
				t.Errorf("after Ctrl-C, stderr %q; want only that following stopped before the recording ended", stderr)
			}
		})
	}
}
