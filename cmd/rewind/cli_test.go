package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/capture/capturetest"
)

// runCLI runs the command line in-process and returns exit code, stdout and
// stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	oldOut, oldErr := os.Stdout, os.Stderr
	ro, wo, _ := os.Pipe()
	re, we, _ := os.Pipe()
	os.Stdout, os.Stderr = wo, we
	outc, errc := make(chan string), make(chan string)
	go func() { b, _ := io.ReadAll(ro); outc <- string(b) }()
	go func() { b, _ := io.ReadAll(re); errc <- string(b) }()
	code := run(context.Background(), append([]string{"rewind"}, args...))
	wo.Close()
	we.Close()
	os.Stdout, os.Stderr = oldOut, oldErr
	return code, <-outc, <-errc
}

func syntheticCapture(t *testing.T) string {
	b := capturetest.New()
	srv := b.Process(100, "nginx")
	c := srv.Accept(0, "127.0.0.1:8080", "127.0.0.1:40000")
	for _, p := range []string{"/a", "/b", "/missing"} {
		c.Read("GET " + p + " HTTP/1.1\r\nHost: example\r\n\r\n")
		if p == "/missing" {
			c.Write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
		} else {
			c.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	}
	c.Close()
	path := filepath.Join(t.TempDir(), "s.rwd")
	b.WriteFile(t, path)
	return path
}

func TestInfoJSON(t *testing.T) {
	path := syntheticCapture(t)
	code, out, errOut := runCLI(t, "info", "--json", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var j map[string]any
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"format_version", "events_total", "events_by_kind", "lost_events", "clean_close", "chunks_recovered", "chunks_skipped"} {
		if _, ok := j[k]; !ok {
			t.Errorf("info --json lacks %q", k)
		}
	}
	if j["clean_close"] != true || j["events_total"].(float64) != 9 {
		t.Errorf("info: %s", out)
	}
}

func TestInfoCutFile(t *testing.T) {
	path := syntheticCapture(t)
	data, _ := os.ReadFile(path)
	cut := filepath.Join(t.TempDir(), "cut.rwd")
	os.WriteFile(cut, data[:len(data)-10], 0o600)
	code, out, _ := runCLI(t, "info", cut)
	if code != 0 || !strings.Contains(out, "NOT closed (still being recorded, or the recording was cut off)") || !strings.Contains(out, "skipped 1 chunk ") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestInfoNotACapture(t *testing.T) {
	code, _, errOut := runCLI(t, "info", "/etc/hostname")
	if code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "not a rewind capture") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	if code, _, _ := runCLI(t, "info"); code != 2 {
		t.Errorf("info without file: exit %d, want 2", code)
	}
	if code, _, _ := runCLI(t, "analyze", "--report", "yaml", "x"); code != 2 {
		t.Errorf("bad --report: exit %d, want 2", code)
	}
	if code, _, _ := runCLI(t, "no-such-command"); code != exitUsage {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	// Usage mistakes: exit 2, nothing on stdout (it may be a redirected
	// report), one message and where to find help on stderr (#20 item 2).
	for _, args := range [][]string{
		{"analyze", "--bogus", "x"},
		{"analyze", "--apdex-t", "500", "x"},
		{},
		{"help", "nope"},
	} {
		code, out, errOut := runCLI(t, args...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code != exitUsage || out != "" || len(lines) != 2 || !strings.HasPrefix(lines[1], "Run 'rewind ") {
			t.Errorf("%v: exit %d, %d bytes on stdout, stderr %q; want exit 2, nothing on stdout, one error and a pointer to --help", args, code, len(out), errOut)
		}
	}
	// Flags are named as --help spells them.
	for args, want := range map[[3]string]string{
		{"analyze", "--bogus", "x"}:     "rewind: unknown flag: --bogus\n",
		{"analyze", "--apdex-t", "500"}: `rewind: invalid value "500" for flag --apdex-t: parse error` + "\n",
		{"diff", "--min-count", "many"}: `rewind: invalid value "many" for flag --min-count: parse error` + "\n",
		{"analyze", "-q=maybe", "x"}:    `rewind: invalid boolean value "maybe" for -q: parse error` + "\n",
	} {
		if _, _, errOut := runCLI(t, args[:]...); !strings.HasPrefix(errOut, want) {
			t.Errorf("%v: stderr %q, want it to start %q", args, errOut, want)
		}
	}
	if code, out, _ := runCLI(t, "help", "analyze"); code != exitOK || !strings.Contains(out, "rewind analyze") {
		t.Errorf("help analyze: exit %d\n%s", code, out)
	}
	for _, sub := range []string{"analyze", "info", "diff", "record"} {
		if code, out, _ := runCLI(t, sub, "--version"); code != exitOK || !strings.HasPrefix(out, "rewind ") {
			t.Errorf("%s --version: exit %d, %q", sub, code, out)
		}
	}
}

func TestAnalyzeOutputs(t *testing.T) {
	path := syntheticCapture(t)
	dir := t.TempDir()
	ex := filepath.Join(dir, "ex.jsonl")
	rep := filepath.Join(dir, "r.json")
	code, _, errOut := runCLI(t, "analyze", path, "--report", "json", "-o", rep, "--exchanges", ex)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines, _ := os.ReadFile(ex)
	if n := bytes.Count(lines, []byte("\n")); n != 3 {
		t.Fatalf("%d exchange lines:\n%s", n, lines)
	}
	var first map[string]any
	json.Unmarshal(bytes.SplitN(lines, []byte("\n"), 2)[0], &first)
	if first["method"] != "GET" || first["path"] != "/a" || first["status"].(float64) != 200 || first["role"] != "server" {
		t.Errorf("first exchange: %s", lines)
	}
	if b, _ := os.ReadFile(rep); !json.Valid(b) {
		t.Errorf("report is not JSON: %s", b)
	}
}

func TestInfoWarnsAboutCredentials(t *testing.T) {
	b := capturetest.New()
	c := b.Process(1, "curl").Connect(0, "127.0.0.1:4000", "127.0.0.1:80")
	c.Write("GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n")
	c.Write("GET /b HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dXNlcjpwYXNz\r\nCookie: s=1\r\n\r\n")
	path := filepath.Join(t.TempDir(), "creds.rwd")
	b.WriteFile(t, path)
	code, out, _ := runCLI(t, "info", path)
	// A request with both headers counts for both (#20 item 10).
	if code != 0 || !strings.Contains(out, "unredacted credentials (Authorization in 2 payloads, Cookie in 1 payload)") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	dir := t.TempDir()
	har := filepath.Join(dir, "x.har")
	png := filepath.Join(dir, "x.pcapng")
	if code, _, e := runCLI(t, "analyze", path, "--har", har, "--pcapng", png, "-o", os.DevNull); code != 0 {
		t.Fatalf("analyze: %d %s", code, e)
	}
	if b, _ := os.ReadFile(har); bytes.Contains(b, []byte("dXNlcjpwYXNz")) || !bytes.Contains(b, []byte("[REDACTED]")) {
		t.Errorf("HAR keeps the credential by default:\n%s", b)
	}
	if b, _ := os.ReadFile(png); bytes.Contains(b, []byte("dXNlcjpwYXNz")) || !bytes.Contains(b, []byte("Authorization: ****")) {
		t.Errorf("pcapng keeps the credential by default")
	}
	if code, _, e := runCLI(t, "analyze", path, "--har", har, "-o", os.DevNull, "--no-redact"); code != 0 {
		t.Fatalf("analyze: %d %s", code, e)
	}
	if b, _ := os.ReadFile(har); !bytes.Contains(b, []byte("dXNlcjpwYXNz")) {
		t.Errorf("--no-redact removed the credential")
	}
}

// TestNumbersMeanWhatTheySay: --max-body 0 keeps no body bytes and a
// negative one is refused; a relative threshold of 20 is 20 % (#20 item 3).
func TestNumbersMeanWhatTheySay(t *testing.T) {
	for in, want := range map[string]float64{"20%": 0.2, "0.2": 0.2, "20": 0.2, "150%": 1.5, "off": 0} {
		if got, err := parseThreshold(in, false); err != nil || math.Abs(got-want) > 1e-12 {
			t.Errorf("parseThreshold(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if got, _ := parseThreshold("0.1pp", true); math.Abs(got-0.001) > 1e-12 {
		t.Errorf("0.1pp = %v, want 0.001", got)
	}
	path := syntheticCapture(t)
	dir := t.TempDir()
	harOf := func(maxBody string) string {
		t.Helper()
		out := filepath.Join(dir, "b"+maxBody+".har")
		if code, _, errOut := runCLI(t, "analyze", path, "-q", "-o", os.DevNull, "--har", out, "--max-body", maxBody); code != exitOK {
			t.Fatalf("--max-body %s: exit %d: %s", maxBody, code, errOut)
		}
		b, _ := os.ReadFile(out)
		return string(b)
	}
	if h := harOf("1000"); !strings.Contains(h, `"text": "ok"`) && !strings.Contains(h, `"text":"ok"`) {
		t.Errorf("--max-body 1000: the HAR has no response body:\n%s", h)
	}
	if h := harOf("0"); strings.Contains(h, `"text": "ok"`) || strings.Contains(h, `"text":"ok"`) {
		t.Errorf("--max-body 0 kept body bytes:\n%s", h)
	}
	for _, args := range [][]string{
		{"analyze", path, "--max-body", "-1"},
		{"analyze", path, "--max-children", "-1"},
		{"diff", path, path, "--max-children", "-1"},
		{"diff", path, path, "--min-count", "-1"},
	} {
		if code, out, errOut := runCLI(t, args...); code != exitUsage || out != "" || !strings.Contains(errOut, "-1: must be 0") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and the flag named", args, code, out, errOut)
		}
	}
}

// TestJSONLRouteGroupsLikeTheReport counts the exchanges of each server
// endpoint two ways, from the report and by grouping the JSON lines on
// method and route as jq would: they agree (#20 item 9).
func TestJSONLRouteGroupsLikeTheReport(t *testing.T) {
	dir := t.TempDir()
	rep, ex := filepath.Join(dir, "r.json"), filepath.Join(dir, "e.jsonl")
	if code, _, errOut := runCLI(t, "analyze", "../../testdata/sample.rwd", "--report", "json", "-o", rep, "--exchanges", ex, "-q"); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r struct {
		Services []struct {
			Role      string
			Endpoints []struct {
				Method, Path string
				Count        int
			}
		}
	}
	b, _ := os.ReadFile(rep)
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, s := range r.Services {
		if s.Role == "server" {
			for _, e := range s.Endpoints {
				want[e.Method+" "+e.Path] += e.Count
			}
		}
	}
	got := map[string]int{}
	lines, _ := os.ReadFile(ex)
	for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		var e struct{ Role, Method, Route string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		if e.Role == "server" {
			got[e.Method+" "+e.Route]++
		}
	}
	if len(want) < 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("by JSON lines %v, by the report %v", got, want)
	}
}

// TestOutputClashes: --follow keeps standard output for its lines, and
// --parquet may not be another output's file or standard output.
func TestOutputClashes(t *testing.T) {
	dir := t.TempDir()
	x := filepath.Join(dir, "x")
	for _, args := range [][]string{
		{"--follow", "--har", "-"},
		{"--follow", "-o", "-"},
		{"--parquet", "-"},
		{"-o", x, "--parquet", x},
	} {
		code, out, errOut := runCLI(t, append([]string{"analyze", "../../testdata/sample.rwd"}, args...)...)
		if code != exitUsage || out != "" {
			t.Errorf("%v: exit %d, stdout %.80q, stderr %q; want a usage error", args, code, out, errOut)
		}
	}
}

// TestGroupByService: 70 runs of curl against one server are one client
// section listing the pids, not 70 sections of one exchange; --group-by
// pid gives the old view; diff groups the same way (#20 item 7).
func TestGroupByService(t *testing.T) {
	b := capturetest.New()
	srv := b.Process(100, "nginx")
	for i := range 70 {
		cli := b.Process(uint32(1000+i), "curl")
		c := cli.Connect(0, fmt.Sprintf("127.0.0.1:%d", 40000+i), "127.0.0.1:8080")
		s := srv.Accept(int32(10+i), "127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", 40000+i))
		c.Write("GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
		s.Read("GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
		s.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		c.Read("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}
	path := filepath.Join(t.TempDir(), "curls.rwd")
	b.WriteFile(t, path)
	code, out, errOut := runCLI(t, "analyze", path, "-q")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(out, "\nclient "); n != 1 || !strings.Contains(out, "client curl[1000,1001,1002,1003,+66] to 127.0.0.1:8080, host h: 70 exchanges") {
		t.Errorf("%d client sections:\n%s", n, out)
	}
	_, out, _ = runCLI(t, "analyze", path, "-q", "--group-by", "pid")
	if n := strings.Count(out, "\nclient curl["); n != 70 {
		t.Errorf("--group-by pid: %d client sections, want 70", n)
	}
	_, out, _ = runCLI(t, "diff", path, path, "--report", "json")
	var d struct {
		Endpoints []struct {
			Service, Role, Path string
			A                   struct{ Count int }
		}
	}
	json.Unmarshal([]byte(out), &d)
	found := false
	for _, e := range d.Endpoints {
		if e.Service == "curl" && e.Role == "client" && e.Path == "(all)" {
			found = e.A.Count == 70
		}
	}
	if !found {
		t.Errorf("diff does not see the 70 curl exchanges as one service:\n%.800s", out)
	}
	if code, _, _ := runCLI(t, "analyze", path, "--group-by", "pids"); code != exitUsage {
		t.Errorf("--group-by pids: exit %d, want %d", code, exitUsage)
	}
}
