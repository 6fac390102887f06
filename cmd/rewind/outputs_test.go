package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOutputIsInput: an output naming the input, or two outputs naming
// one file, is refused before anything is written (#19 item 1).
func TestOutputIsInput(t *testing.T) {
	in := syntheticCapture(t)
	orig, _ := os.ReadFile(in)
	dir := t.TempDir()
	link := filepath.Join(dir, "link.rwd")
	if err := os.Link(in, link); err != nil {
		t.Fatal(err)
	}
	same := filepath.Join(dir, "same")
	for _, args := range [][]string{
		{"-o", in},
		{"--exchanges", in},
		{"--har", in},
		{"--pcapng", in},
		{"--exchanges", link}, // another name for the input: compared by inode
		{"-o", same, "--exchanges", same, "--har", same},
		{"--exchanges", same, "--har", filepath.Join(dir, ".", "same")},
	} {
		code, out, errOut := runCLI(t, append([]string{"analyze", in}, args...)...)
		if code != exitUsage || out != "" {
			t.Errorf("%v: exit %d, stdout %q; want exit 2 and nothing written", args, code, out)
		}
		if !strings.Contains(errOut, "input") && !strings.Contains(errOut, "same file") {
			t.Errorf("%v: stderr does not say why: %q", args, errOut)
		}
		if b, _ := os.ReadFile(in); string(b) != string(orig) {
			t.Fatalf("%v: the input was changed", args)
		}
		if _, err := os.Stat(same); err == nil {
			t.Fatalf("%v: created %s", args, same)
		}
	}
	code, _, errOut := runCLI(t, "diff", in, in, "-o", in)
	if code != exitUsage || !strings.Contains(errOut, "input") {
		t.Errorf("diff -o INPUT: exit %d, %q", code, errOut)
	}
	// A device takes as many outputs as are sent there.
	if code, _, errOut := runCLI(t, "analyze", in, "-q", "-o", os.DevNull, "--har", os.DevNull, "--exchanges", os.DevNull, "--pcapng", os.DevNull); code != exitOK {
		t.Errorf("every output to %s: exit %d, %q; want 0", os.DevNull, code, errOut)
	}
}

// TestFailedRunKeepsFiles: a bad output path fails before reading and
// creates nothing; a good file is replaced only by a finished run (#19
// item 7).
func TestFailedRunKeepsFiles(t *testing.T) {
	in := syntheticCapture(t)
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok.jsonl")
	pq := filepath.Join(dir, "ok.parquet")
	code, _, errOut := runCLI(t, "analyze", in, "--exchanges", ok, "--parquet", pq, "--har", "/nonexistent-dir/x.har")
	if code != exitUsage || !strings.Contains(errOut, "/nonexistent-dir does not exist") {
		t.Errorf("exit %d, %q; want exit 2 naming the missing directory", code, errOut)
	}
	for _, p := range []string{ok, pq} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was created by a run that failed", p)
		}
	}
	if err := os.WriteFile(ok, []byte("good\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pq, []byte("good parquet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The input fails after the outputs are open: they keep their content.
	bad := filepath.Join(dir, "bad.rwd")
	os.WriteFile(bad, []byte("not a capture at all"), 0o600)
	if code, _, _ := runCLI(t, "analyze", bad, "--exchanges", ok, "--parquet", pq); code == exitOK {
		t.Fatal("a non-capture was analyzed")
	}
	if b, _ := os.ReadFile(ok); string(b) != "good\n" {
		t.Errorf("a failed run replaced %s: %q", ok, b)
	}
	if b, _ := os.ReadFile(pq); string(b) != "good parquet\n" {
		t.Errorf("a failed run replaced %s: %q", pq, b)
	}
	if code, _, errOut := runCLI(t, "analyze", in, "--exchanges", ok); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if b, _ := os.ReadFile(ok); strings.Count(string(b), "\n") != 3 {
		t.Errorf("the finished run did not replace %s: %q", ok, b)
	}
	if fi, _ := os.Stat(ok); fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("%s has mode %v; outputs are 0600", ok, fi.Mode())
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".rewind-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestInfoReadsWhatAnalyzeReads: info describes pcaps, pcapngs and
// compressed inputs as analyze reads them, says where a cut pcap is
// damaged, and names a directory as one (#19 item 9).
func TestInfoReadsWhatAnalyzeReads(t *testing.T) {
	const td = "../../analyze/pcapin/testdata/"
	for _, f := range []string{"conversation.pcap", "conversation.pcapng", "conversation.pcapng.gz", "conversation-raw.pcap.zst"} {
		code, out, errOut := runCLI(t, "info", td+f)
		if code != exitOK || !strings.Contains(out, "packets    10 (1 TCP connection;") || !strings.Contains(out, "read to the end") {
			t.Errorf("info %s: exit %d\n%s%s", f, code, out, errOut)
		}
	}
	if _, out, _ := runCLI(t, "info", td+"conversation.pcapng"); !strings.Contains(out, "links      Ethernet (1, 5 packets), Linux cooked v2 (276, 5 packets)") {
		t.Errorf("info does not list the link types:\n%s", out)
	}
	whole, err := os.ReadFile(td + "conversation.pcap")
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	os.WriteFile(cut, whole[:len(whole)-10], 0o600)
	code, out, _ := runCLI(t, "info", "--json", cut)
	var j struct {
		Packets uint64
		Damaged bool
		Damage  string
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil || code != exitOK || !j.Damaged || j.Packets != 9 || j.Damage == "" {
		t.Errorf("cut pcap: exit %d, %+v, %v\n%s", code, j, err, out)
	}
	// A compressed capture reads like the plain one.
	gz := filepath.Join(t.TempDir(), "s.rwd.gz")
	raw, _ := os.ReadFile("../../testdata/sample.rwd")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	os.WriteFile(gz, buf.Bytes(), 0o600)
	_, plain, _ := runCLI(t, "info", "../../testdata/sample.rwd")
	if code, out, errOut := runCLI(t, "info", gz); code != exitOK || strings.SplitN(out, "\n", 2)[1] != strings.SplitN(plain, "\n", 2)[1] {
		t.Errorf("info of the gzipped sample: exit %d %s\n%s\nwant\n%s", code, errOut, out, plain)
	}
	if code, _, errOut := runCLI(t, "info", t.TempDir()); code == exitOK || !strings.Contains(errOut, "is a directory") {
		t.Errorf("info DIR: exit %d, %q", code, errOut)
	}
}

// TestDashIsStandardStreams: `analyze -` reads the capture from standard
// input as it is streamed in (a pipe, no size), and an output named `-`
// goes to standard output; the results equal those of the file.
func TestDashIsStandardStreams(t *testing.T) {
	data, err := os.ReadFile("sample.rwd")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	want := filepath.Join(dir, "want.jsonl")
	if code, _, stderr := runCLI(t, "analyze", "-q", "sample.rwd", "-o", os.DevNull, "--exchanges", want); code != 0 {
		t.Fatalf("analyze FILE: exit %d: %s", code, stderr)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		// In pieces, as tcpdump -U -w - or a slow copy would send it.
		for b := data; len(b) > 0; {
			n := min(len(b), 4096)
			w.Write(b[:n])
			b = b[n:]
		}
		w.Close()
	}()
	old := os.Stdin
	os.Stdin = r
	code, stdout, stderr := runCLI(t, "analyze", "-q", "-", "-o", os.DevNull, "--exchanges", "-")
	os.Stdin = old
	r.Close()
	if code != 0 {
		t.Fatalf("analyze - --exchanges -: exit %d: %s", code, stderr)
	}
	wantB, _ := os.ReadFile(want)
	if stdout != string(wantB) || len(wantB) == 0 {
		t.Errorf("exchanges from standard input (%d bytes) differ from the file's (%d bytes)", len(stdout), len(wantB))
	}
	// Two outputs on standard output is a usage error naming the way out.
	code, _, stderr = runCLI(t, "analyze", "-q", "sample.rwd", "--exchanges", "-")
	if code != 2 || !strings.Contains(stderr, "-o FILE") {
		t.Errorf("report and --exchanges both on standard output: exit %d, %q", code, stderr)
	}
}

// runStdio runs the command line in process with stdin and stdout set to
// the given files (nil: the pipes of runCLI), as a shell's `< f` and
// `>> f` would, and returns the exit code and stderr.
func runStdio(t *testing.T, stdin, stdout *os.File, args ...string) (int, string) {
	t.Helper()
	oldIn, oldOut, oldErr := os.Stdin, os.Stdout, os.Stderr
	defer func() { os.Stdin, os.Stdout, os.Stderr = oldIn, oldOut, oldErr }()
	if stdin != nil {
		os.Stdin = stdin
	}
	if stdout != nil {
		os.Stdout = stdout
	} else {
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer null.Close()
		os.Stdout = null
	}
	re, we, _ := os.Pipe()
	os.Stderr = we
	errc := make(chan string)
	go func() { b, _ := io.ReadAll(re); errc <- string(b) }()
	code := run(context.Background(), append([]string{"rewind"}, args...))
	we.Close()
	os.Stderr = oldErr
	return code, <-errc
}

// TestStdioIsInput: standard input or output redirected from or to the
// input (`analyze - -o s.rwd < s.rwd`, `analyze s.rwd >> s.rwd`) is
// refused as an output naming the input is, in one line and before
// anything is written. Pipes and devices may still be shared (#19 item 1).
func TestStdioIsInput(t *testing.T) {
	in := syntheticCapture(t)
	orig, _ := os.ReadFile(in)
	dir := t.TempDir()
	link := filepath.Join(dir, "link.rwd")
	if err := os.Link(in, link); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.rwd")
	os.WriteFile(other, orig, 0o600)
	open := func(path string) *os.File {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	appendTo := func(path string) *os.File {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	for _, c := range []struct {
		name          string
		stdin, stdout string // "": not redirected
		args          []string
	}{
		{"analyze - -o s.rwd < s.rwd", in, "", []string{"analyze", "-", "-o", in}},
		{"analyze - --exchanges s.rwd < s.rwd", in, "", []string{"analyze", "-", "-q", "--exchanges", in}},
		{"analyze - --har link < s.rwd", in, "", []string{"analyze", "-", "-q", "--har", link}},
		{"analyze - --parquet s.rwd < s.rwd", in, "", []string{"analyze", "-", "-q", "--parquet", in}},
		{"analyze s.rwd >> s.rwd", "", in, []string{"analyze", in}},
		{"analyze s.rwd >> link", "", link, []string{"analyze", in}},
		{"analyze - < s.rwd >> s.rwd", in, in, []string{"analyze", "-"}},
		{"analyze - -o /dev/null --exchanges - < s.rwd >> s.rwd", in, in, []string{"analyze", "-", "-q", "-o", os.DevNull, "--exchanges", "-"}},
		{"analyze -f s.rwd >> s.rwd", "", in, []string{"analyze", "-q", "-f", in}},
		{"diff other s.rwd >> s.rwd", "", in, []string{"diff", other, in}},
	} {
		var stdin, stdout *os.File
		if c.stdin != "" {
			stdin = open(c.stdin)
		}
		if c.stdout != "" {
			stdout = appendTo(c.stdout)
		}
		code, errOut := runStdio(t, stdin, stdout, c.args...)
		if code != exitUsage || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "refusing") {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and one line saying why", c.name, code, errOut)
		}
		if b, _ := os.ReadFile(in); !bytes.Equal(b, orig) {
			t.Fatalf("%s: the input was changed", c.name)
		}
	}
	// Other files, pipes and devices are fine.
	rep := filepath.Join(dir, "report.txt")
	os.WriteFile(rep, nil, 0o600)
	if code, errOut := runStdio(t, open(in), appendTo(rep), "analyze", "-q", "-"); code != exitOK {
		t.Errorf("analyze - < s.rwd >> report.txt: exit %d, %q", code, errOut)
	}
	if b, _ := os.ReadFile(rep); !strings.Contains(string(b), "/missing") {
		t.Errorf("the report was not appended to report.txt: %q", b)
	}
	if code, errOut := runStdio(t, open(in), nil, "analyze", "-q", "-"); code != exitOK {
		t.Errorf("analyze - < s.rwd > /dev/null: exit %d, %q", code, errOut)
	}
	if code, errOut := runStdio(t, open(os.DevNull), nil, "analyze", "-q", in); code != exitOK {
		t.Errorf("analyze s.rwd < /dev/null > /dev/null: exit %d, %q", code, errOut)
	}
}
