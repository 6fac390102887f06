//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader that never reads: opened, so rewind's open succeeds.
	rd, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	report := filepath.Join(dir, "report.txt")
	os.WriteFile(report, []byte("previous report\n"), 0o600)
	// --parquet writes its own temporary file, from the first exchange on.
	pq := filepath.Join(dir, "x.parquet")
	os.WriteFile(pq, []byte("previous parquet\n"), 0o600)

	cmd := exec.Command(bin, "analyze", in, "-q", "-o", report, "--exchanges", fifo, "--parquet", pq)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Wait until the pipe is full: rewind is then blocked writing.
	deadline := time.Now().Add(20 * time.Second)
	for {
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
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		// Stopping at the first signal is fine too, if it says so.
		checkInterrupted(t, err, stderr.String())
	case <-time.After(500 * time.Millisecond):
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-done:
			checkInterrupted(t, err, stderr.String())
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Fatal("a second SIGINT did not end rewind within 5 s")
		}
	}
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

func checkInterrupted(t *testing.T, err error, stderr string) {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit: %v, want 130 (SIGINT); stderr: %s", err, stderr)
	}
}

// TestInterruptWhileReadingStdin: a Ctrl-C while analyze waits for its
// input on a pipe ends the run as any interrupted one (exit 130, outputs
// untouched), however little input follows (#19 item 3). It used to
// depend on whether 1,024 more events arrived.
func TestInterruptWhileReadingStdin(t *testing.T) {
	bin := buildRewind(t)
	capture, err := os.ReadFile(manyExchanges(t, 50))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	report := filepath.Join(dir, "report.txt")
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
	cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(200 * time.Millisecond)
	in.Write(capture[len(capture)/2:])
	in.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		checkInterrupted(t, err, stderr.String())
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("rewind did not end after its input did")
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say the run was interrupted: %q", stderr.String())
	}
	if b, _ := os.ReadFile(report); string(b) != "previous report\n" {
		t.Errorf("the interrupted run replaced the report: %q", b)
	}
}
