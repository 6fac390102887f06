//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rewind-tools/rewind/capture/capturetest"
)

// manyExchanges writes a capture of n small exchanges.
func manyExchanges(t *testing.T, n int) string {
	b := capturetest.New()
	c := b.Process(100, "nginx").Accept(0, "127.0.0.1:8080", "127.0.0.1:40000")
	for i := range n {
		c.Read(fmt.Sprintf("GET /item/%d HTTP/1.1\r\nHost: example\r\n\r\n", i))
		c.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}
	c.Close()
	path := filepath.Join(t.TempDir(), "many.rwd")
	b.WriteFile(t, path)
	return path
}

// TestClosedStdoutKeepsOtherOutputs: the report's reader went away before
// it was written (`| head -1` that already quit). The side outputs are
// still complete, and the exit says what happened (#19 item 2).
func TestClosedStdoutKeepsOtherOutputs(t *testing.T) {
	bin := buildRewind(t)
	in := manyExchanges(t, 500)
	dir := t.TempDir()
	ex, hr, pn := filepath.Join(dir, "e.jsonl"), filepath.Join(dir, "e.har"), filepath.Join(dir, "e.pcapng")
	args := []string{"analyze", in, "--exchanges", ex, "--har", hr, "--pcapng", pn}

	// Reference: the same run with stdout to /dev/null.
	ref := exec.Command(bin, args...)
	if out, err := ref.CombinedOutput(); err != nil {
		t.Fatalf("reference run: %v\n%s", err, out)
	}
	want := map[string][]byte{}
	for _, p := range []string{ex, hr, pn} {
		want[p], _ = os.ReadFile(p)
		os.Remove(p)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // the reader is gone before rewind writes
	cmd := exec.Command(bin, args...)
	cmd.Stdout = w
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	w.Close()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitError {
		t.Fatalf("exit: %v (want exit 1, not a SIGPIPE death); stderr: %s", err, stderr.String())
	}
	// The reader left before the first byte: the pipe took none of them.
	if !strings.Contains(stderr.String(), "standard output was not fully read: its reader closed the pipe; it took 0 of ") || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("stderr should be one line saying the report was not read: %q", stderr.String())
	}
	for p, w := range want {
		got, _ := os.ReadFile(p)
		if !bytes.Equal(got, w) {
			t.Errorf("%s: %d bytes, want %d (the reference run's)", filepath.Base(p), len(got), len(w))
		}
	}
	if b, _ := os.ReadFile(ex); bytes.Count(b, []byte("\n")) != 500 {
		t.Errorf("e.jsonl has %d lines, want 500", bytes.Count(b, []byte("\n")))
	}
	if b, _ := os.ReadFile(hr); !json.Valid(b) {
		t.Error("e.har is not valid JSON")
	}
}

// TestStuckPipeSecondSignal: an output FIFO whose reader stops reading
// blocks the writes. The first SIGINT asks rewind to stop, a second ends it
// at once with exit 130, leaving no temporary file (--parquet's included)
// and the previous report and Parquet file untouched (#19 items 3 and 7).
func TestStuckPipeSecondSignal(t *testing.T) {
	bin := buildRewind(t)
	in := manyExchanges(t, 20000) // far more JSON lines than a pipe holds
	dir := t.TempDir()
	report := filepath.Join(dir, "report.txt")
	os.WriteFile(report, []byte("previous report\n"), 0o600)
	// --parquet writes its own temporary file, from the first exchange on.
	pq := filepath.Join(dir, "x.parquet")
	os.WriteFile(pq, []byte("previous parquet\n"), 0o600)
	signalStuckOnPipe(t, dir, syscall.SIGINT, 130, bin, "analyze", in, "-q", "-o", report, "--parquet", pq)
	if b, _ := os.ReadFile(report); string(b) != "previous report\n" {
		t.Errorf("the interrupted run replaced the report: %q", b)
	}
	if b, _ := os.ReadFile(pq); string(b) != "previous parquet\n" {
		t.Errorf("the interrupted run replaced the parquet file: %q", b)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".rewind-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// signalStuckOnPipe runs cmdline with --exchanges going to a FIFO in dir
// whose reader never reads, waits until rewind is blocked writing to it,
// then sends sig: rewind must end with exit code want, at the first signal
// or at a second one 500 ms later.
func signalStuckOnPipe(t *testing.T, dir string, sig syscall.Signal, want int, cmdline ...string) {
	t.Helper()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader that never reads: opened, so rewind's open succeeds.
	rd, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { rd.Close(); os.Remove(fifo) }()
	cmd := exec.Command(cmdline[0], append(cmdline[1:], "--exchanges", fifo)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Wait until the pipe is full: rewind is then blocked writing.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n, err := unix.IoctlGetInt(int(rd.Fd()), unix.TIOCINQ); err == nil && n >= 65536 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("rewind ended before the pipe filled: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the pipe never filled")
		}
	}
	cmd.Process.Signal(sig)
	select {
	case err := <-done:
		// Stopping at the first signal is fine too, if it says so.
		checkExit(t, err, stderr.String(), want)
	case <-time.After(500 * time.Millisecond):
		cmd.Process.Signal(sig)
		select {
		case err := <-done:
			checkExit(t, err, stderr.String(), want)
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("a second %v did not end rewind within 5 s", sig)
		}
	}
}

// checkExit fails t unless err is an exit with code want (130 after
// SIGINT, 143 after SIGTERM).
func checkExit(t *testing.T, err error, stderr string, want int) {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != want {
		t.Errorf("exit: %v, want %d; stderr: %s", err, want, stderr)
	}
}

// TestInterruptWhileReadingStdin: a Ctrl-C while analyze waits for its
// input on a pipe ends the run as any interrupted one (exit 130, outputs
// untouched), however little input follows (#19 item 3). It used to
// depend on whether 1,024 more events arrived.
func TestInterruptWhileReadingStdin(t *testing.T) {
	signalWhileReadingStdin(t, buildRewind(t), syscall.SIGINT, 130)
}

// signalWhileReadingStdin sends sig to analyze while it waits for the
// second half of its input on a pipe: it must end with exit code want,
// say the run was interrupted, and leave the previous report as it was.
func signalWhileReadingStdin(t *testing.T, bin string, sig syscall.Signal, want int) {
	t.Helper()
	capture, err := os.ReadFile(manyExchanges(t, 50))
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "report.txt")
	os.WriteFile(report, []byte("previous report\n"), 0o600)
	cmd := exec.Command(bin, "analyze", "-", "-q", "-o", report)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in.Write(capture[:len(capture)/2])
	time.Sleep(500 * time.Millisecond) // rewind now waits for the rest
	cmd.Process.Signal(sig)
	time.Sleep(200 * time.Millisecond)
	in.Write(capture[len(capture)/2:])
	in.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		checkExit(t, err, stderr.String(), want)
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("rewind did not end after %v and the end of its input", sig)
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say the run was interrupted: %q", stderr.String())
	}
	if b, _ := os.ReadFile(report); string(b) != "previous report\n" {
		t.Errorf("the %v run replaced the report: %q", sig, b)
	}
}

// TestSideOutputReaderLeaves: the reader of an --exchanges or --pcapng
// pipe quits after its first bytes (`--exchanges >(head -c 100)`, a FIFO
// whose reader exits, `--exchanges /dev/stdout | head -2`). rewind does not
// hang: it finishes the other outputs and exits 1 with one line naming the
// output that was not fully read (#19 item 3).
func TestSideOutputReaderLeaves(t *testing.T) {
	bin := buildRewind(t)
	in := manyExchanges(t, 5000) // megabytes: far more than a pipe holds
	for _, c := range []struct {
		flag   string
		stdout bool // the output is /dev/stdout, a pipe
	}{{"--exchanges", false}, {"--pcapng", false}, {"--exchanges", true}} {
		name := c.flag
		if c.stdout {
			name += " /dev/stdout"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			report := filepath.Join(dir, "report.json")
			har := filepath.Join(dir, "e.har")
			out := filepath.Join(dir, "fifo")
			var rd *os.File
			cmd := exec.Command(bin, "analyze", in, "-q", "--report", "json", "-o", report, "--har", har)
			if c.stdout {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				rd, out, cmd.Stdout = r, "/dev/stdout", w
			} else if err := syscall.Mkfifo(out, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd.Args = append(cmd.Args, c.flag, out)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if c.stdout {
				cmd.Stdout.(*os.File).Close() // rewind holds the write end
			} else {
				// Opening the FIFO waits for rewind to open it too.
				opened := make(chan *os.File, 1)
				go func() {
					f, _ := os.OpenFile(out, os.O_RDONLY, 0)
					opened <- f
				}()
				select {
				case rd = <-opened:
				case <-time.After(30 * time.Second):
					cmd.Process.Kill()
					t.Fatalf("rewind did not open %s: %s", out, stderr.String())
				}
				if rd == nil {
					t.Fatal("opening the FIFO failed")
				}
			}
			// Like head: read a little, then go away.
			n, _ := io.ReadFull(rd, make([]byte, 100))
			rd.Close()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("rewind hung after the reader of %s left", out)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitError {
				t.Errorf("exit: %v, want 1 (not a SIGPIPE death, not 0); stderr: %s", err, stderr.String())
			}
			want := c.flag + " " + out + " was not fully read: its reader closed the pipe; it took "
			if s := stderr.String(); !strings.HasPrefix(s, "rewind: "+want) || strings.Count(s, "\n") != 1 {
				t.Errorf("stderr should be one line saying %q: %q", want, s)
			}
			if n != 100 {
				t.Errorf("the reader got %d bytes before leaving, want 100", n)
			}
			// The other outputs are complete.
			var r struct{ Capture struct{ Exchanges int } }
			if b, _ := os.ReadFile(report); json.Unmarshal(b, &r) != nil || r.Capture.Exchanges != 5000 {
				t.Errorf("the report was not completed: %d exchanges", r.Capture.Exchanges)
			}
			if b, _ := os.ReadFile(har); !json.Valid(b) {
				t.Error("the HAR was not completed")
			}
		})
	}
}

// TestSigtermExit143: SIGTERM stops analyze as SIGINT does, with the
// shell's code for it, 143: a run waiting for its input leaves the report
// as it was, and a run stuck on a pipe nobody reads ends at a second SIGTERM
// leaving no temporary file (#19 item 3).
func TestSigtermExit143(t *testing.T) {
	bin := buildRewind(t)
	t.Run("waiting for input", func(t *testing.T) {
		signalWhileReadingStdin(t, bin, syscall.SIGTERM, 143)
	})
	t.Run("stuck on a pipe", func(t *testing.T) {
		in := manyExchanges(t, 20000)
		dir := t.TempDir()
		signalStuckOnPipe(t, dir, syscall.SIGTERM, 143, bin, "analyze", in, "-q", "-o", filepath.Join(dir, "report.txt"))
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.Contains(e.Name(), ".rewind-") || e.Name() == "report.txt" {
				t.Errorf("%s left behind", e.Name())
			}
		}
	})
}
