//go:build linux || darwin

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// slowStdin feeds file to a pipe in pieces over about a second and a
// half, so that the replay outlives the progress delay.
func slowStdin(t *testing.T, file string) *os.File {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer w.Close()
		step := len(b)/6 + 1
		for off := 0; off < len(b); off += step {
			w.Write(b[off:min(off+step, len(b))])
			time.Sleep(250 * time.Millisecond)
		}
	}()
	return r
}

// TestProgressOnTerminal runs analyze with stderr on a pseudo-terminal and
// the input on a slow pipe: the progress shows bytes and rate, and is
// erased at the end; with stderr on a pipe nothing is written there
// (#20 item 5).
func TestProgressOnTerminal(t *testing.T) {
	defer func(d time.Duration) { progressDelay = d }(progressDelay)
	progressDelay = 300 * time.Millisecond
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("opening a pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&screen, ptmx); close(copied) }()

	oldIn, oldErr, oldOut := os.Stdin, os.Stderr, os.Stdout
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer devnull.Close()
	os.Stdin, os.Stderr, os.Stdout = slowStdin(t, "../../testdata/sample.rwd"), tty, devnull
	code := run(context.Background(), []string{"rewind", "analyze", "-"})
	os.Stdin, os.Stderr, os.Stdout = oldIn, oldErr, oldOut
	tty.Close()
	select {
	case <-copied:
	case <-time.After(5 * time.Second):
		t.Fatal("the pseudo-terminal did not drain")
	}
	out := screen.String()
	if code != exitOK || !strings.Contains(out, "analyzing") || !strings.Contains(out, "iB/s") || !strings.Contains(out, "KiB") {
		t.Fatalf("exit %d; terminal saw %q; want progress with bytes and a rate", code, out)
	}
	if i := strings.LastIndex(out, "analyzing"); !strings.Contains(out[i:], "\r") {
		t.Errorf("progress not erased at the end: %q", out[i:])
	}

	// Not a terminal: nothing.
	pr, pw, _ := os.Pipe()
	os.Stdin, os.Stderr, os.Stdout = slowStdin(t, "../../testdata/sample.rwd"), pw, devnull
	code = run(context.Background(), []string{"rewind", "analyze", "-"})
	os.Stdin, os.Stderr, os.Stdout = oldIn, oldErr, oldOut
	pw.Close()
	if b, _ := io.ReadAll(pr); code != exitOK || len(b) != 0 {
		t.Errorf("stderr not a terminal: exit %d, stderr %q", code, b)
	}
}

// TestProgressBarShape: with a known size the bar shows the share done,
// bytes of the total, the rate and the time left.
func TestProgressBarShape(t *testing.T) {
	var b bytes.Buffer
	bar := newProgressBar(&b, 10<<20, true)
	for i := 1; i <= 3; i++ {
		time.Sleep(250 * time.Millisecond)
		bar.Set64(int64(i) << 20)
	}
	last := b.String()[strings.LastIndex(b.String(), "\r"):]
	for _, want := range []string{"analyzing", "30%", "3.0/10 MiB", "MiB/s", ":"} {
		if !strings.Contains(last, want) {
			t.Errorf("bar %q lacks %q", last, want)
		}
	}
}
