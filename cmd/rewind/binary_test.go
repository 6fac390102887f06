package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/capture/capturetest"
	"github.com/rewind-tools/rewind/internal/golden"
)

// runBinary runs the built rewind with args, standard input from stdin (a
// real pipe when it is one, else nothing), and returns its exit code,
// standard output and standard error.
func runBinary(t *testing.T, bin string, stdin *os.File, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errOut.String()
	}
	t.Fatalf("running rewind %v: %v", args, err)
	return 0, "", ""
}

// TestUsageErrorsOfTheBinary runs the built binary as a shell would: a
// usage mistake exits 2, leaves standard output empty (it may be a
// redirected report) and writes one line naming the problem and one
// pointing at the right --help to standard error (#20 item 2).
func TestUsageErrorsOfTheBinary(t *testing.T) {
	bin := buildRewind(t)
	const sample = "../../testdata/sample.rwd"
	for _, c := range []struct {
		args      []string
		msg, help string
	}{
		{nil, "rewind: missing command: ", "rewind --help"},
		{[]string{"bogus"}, `rewind: unknown command "bogus"`, "rewind --help"},
		{[]string{"analyze", "--bogus", sample}, "rewind: unknown flag: --bogus", "rewind analyze --help"},
		{[]string{"analyze", "--max-body", "-1", sample}, "rewind: --max-body -1: must be 0", "rewind analyze --help"},
		{[]string{"diff", sample}, "rewind: diff takes two captures", "rewind diff --help"},
	} {
		code, out, errOut := runBinary(t, bin, nil, c.args...)
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		if code != exitUsage || out != "" || len(lines) != 2 || !strings.HasPrefix(lines[0], c.msg) ||
			lines[1] != "Run '"+c.help+"' for usage." {
			t.Errorf("rewind %s: exit %d, %d bytes on stdout, stderr %q; want exit 2, nothing on stdout, %q… and a pointer to %q",
				strings.Join(c.args, " "), code, len(out), errOut, c.msg, c.help)
		}
	}
}

// TestVersionOnEveryCommand: --version works after every command, hidden
// ones included, as after rewind itself: the version on standard output,
// exit 0 (#20 item 2).
func TestVersionOnEveryCommand(t *testing.T) {
	bin := buildRewind(t)
	code, want, errOut := runBinary(t, bin, nil, "--version")
	if code != exitOK || !strings.HasPrefix(want, "rewind ") || strings.Count(want, "\n") != 1 || errOut != "" {
		t.Fatalf("rewind --version: exit %d, stdout %q, stderr %q", code, want, errOut)
	}
	for _, cmd := range newApp().Commands {
		code, out, errOut := runBinary(t, bin, nil, cmd.Name, "--version")
		if code != exitOK || out != want || errOut != "" {
			t.Errorf("rewind %s --version: exit %d, stdout %q, stderr %q; want exit 0 and %q", cmd.Name, code, out, errOut, want)
		}
	}
}

// pipeOf returns the read end of a pipe into which data is written in
// pieces, as cat or tcpdump -U -w - would send it.
func pipeOf(t *testing.T, data []byte) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	go func() {
		defer w.Close()
		for b := data; len(b) > 0; {
			n := min(len(b), 4096)
			if _, err := w.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
			time.Sleep(time.Millisecond)
		}
	}()
	return r
}

// TestDashReadsAPipe: `cat FILE | rewind analyze -` gives the report of
// `rewind analyze FILE`, for a capture, a pcap and a pcapng; only the
// input's name in the title differs (#20 item 1).
func TestDashReadsAPipe(t *testing.T) {
	bin := buildRewind(t)
	for _, c := range []struct{ file, kind string }{
		{"../../testdata/sample.rwd", "rewind"},
		{"../../analyze/pcapin/testdata/conversation.pcap", "pcap"},
		{"../../analyze/pcapin/testdata/conversation.pcapng", "pcapng"},
	} {
		data, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		code, want, errOut := runBinary(t, bin, nil, "analyze", c.file)
		if code != exitOK || errOut != "" {
			t.Fatalf("analyze %s: exit %d, %s", c.file, code, errOut)
		}
		code, got, errOut := runBinary(t, bin, pipeOf(t, data), "analyze", "-")
		if code != exitOK || errOut != "" {
			t.Fatalf("cat %s | rewind analyze -: exit %d, %s", c.file, code, errOut)
		}
		// The title names the input; all else is the same.
		wantTitle, gotTitle := firstLine(want), firstLine(got)
		if !strings.HasPrefix(wantTitle, "rewind SLI report: "+c.file+" ("+c.kind) ||
			gotTitle != strings.Replace(wantTitle, c.file, "standard input", 1) {
			t.Errorf("%s: titles %q from the file and %q from the pipe", c.file, wantTitle, gotTitle)
		}
		wantBody, gotBody := want[len(wantTitle):], got[len(gotTitle):]
		if gotBody != wantBody || strings.Count(wantBody, "\n") < 8 {
			t.Errorf("cat %s | rewind analyze - differs from the file's report:\n%s", c.file, golden.FirstDiff([]byte(wantBody), []byte(gotBody)))
		}
	}
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// TestDiffThresholdIsAPercentage: `diff --max-p99-increase 20` means 20 %,
// as 20% and 0.2 do. With --fail-on p99 the gate exits 3 on a p99 30 %
// higher and 0 on one 10 % higher; 25 still fires and 35 does not, which a
// bare number read as a ratio (+2500 %) never would (#20 item 3).
func TestDiffThresholdIsAPercentage(t *testing.T) {
	bin := buildRewind(t)
	dir := t.TempDir()
	build := func(name string, step time.Duration) string {
		b := capturetest.New()
		b.SetStep(step) // each call takes this long: the latency
		c := b.Process(100, "api").Accept(3, "127.0.0.1:8080", "127.0.0.1:40000")
		for i := range 40 {
			c.Read(fmt.Sprintf("GET /items/%d HTTP/1.1\r\nHost: h\r\n\r\n", i))
			c.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		c.Close()
		path := filepath.Join(dir, name)
		b.WriteFile(t, path)
		return path
	}
	base := build("base.rwd", 10*time.Millisecond)
	for _, c := range []struct {
		name   string
		step   time.Duration
		limits map[string]int // --max-p99-increase value → exit code
	}{
		{"p99 +30%", 13 * time.Millisecond, map[string]int{"20": exitSLO, "20%": exitSLO, "0.2": exitSLO, "25": exitSLO, "35": exitOK, "35%": exitOK}},
		{"p99 +10%", 11 * time.Millisecond, map[string]int{"20": exitOK, "20%": exitOK, "0.2": exitOK, "5": exitSLO}},
	} {
		after := build(strings.NewReplacer(" ", "", "+", "", "%", "").Replace(c.name)+".rwd", c.step)
		outs := map[string]string{}
		for limit, want := range c.limits {
			code, out, errOut := runBinary(t, bin, nil, "diff", base, after, "--fail-on", "p99", "--max-p99-increase", limit)
			if code != want {
				t.Errorf("%s, --max-p99-increase %s: exit %d, want %d\n%s%s", c.name, limit, code, want, out, errOut)
			}
			outs[limit] = out
		}
		if outs["20"] != outs["20%"] || outs["20"] != outs["0.2"] {
			t.Errorf("%s: --max-p99-increase 20, 20%% and 0.2 compare differently:\n%s\n%s\n%s", c.name, outs["20"], outs["20%"], outs["0.2"])
		}
	}
}
