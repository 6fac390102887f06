package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/capture/capturetest"
)

// infoField returns the value of info's line named key, its spacing
// (tabwriter's) collapsed.
func infoField(t *testing.T, out, key string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == key {
			return strings.Join(f[1:], " ")
		}
	}
	t.Errorf("info has no %q line:\n%s", key, out)
	return ""
}

// TestInfoWording: counts are worded for their number ("1 process",
// "2 processes") and the processes line says what it counts, "(4 data
// events)", not a bare "(4)" (#20 item 10).
func TestInfoWording(t *testing.T) {
	one := capturetest.New()
	c := one.Process(100, "nginx").Accept(0, "127.0.0.1:8080", "127.0.0.1:40000")
	c.Read("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	onePath := filepath.Join(t.TempDir(), "one.rwd")
	one.WriteFile(t, onePath)

	code, out, errOut := runCLI(t, "info", onePath)
	if code != exitOK {
		t.Fatalf("info: exit %d: %s", code, errOut)
	}
	for key, want := range map[string]string{
		"snapshot":  "1 process, 0 sockets",
		"processes": "nginx (1 data event)",
		"traffic":   "1 connection opened; 27 B in, 0 B out (27 B captured, 0 B TLS plaintext)",
	} {
		if got := infoField(t, out, key); got != want {
			t.Errorf("one process, one data event: %s %q, want %q", key, got, want)
		}
	}

	code, out, errOut = runCLI(t, "info", mixedConnections(t))
	if code != exitOK {
		t.Fatalf("info: exit %d: %s", code, errOut)
	}
	for key, want := range map[string]string{
		"snapshot":  "2 processes, 0 sockets",
		"processes": "nginx (4 data events), curl (1 data event)",
	} {
		if got := infoField(t, out, key); got != want {
			t.Errorf("two processes: %s %q, want %q", key, got, want)
		}
	}
	if got := infoField(t, out, "traffic"); !strings.HasPrefix(got, "4 connections opened;") {
		t.Errorf("two processes: traffic %q, want 4 connections opened", got)
	}
}

// mixedConnections writes a capture of 4 connections: one HTTP, two that
// carried other data (one of them a client's), one that carried none.
func mixedConnections(t *testing.T) string {
	b := capturetest.New()
	srv := b.Process(100, "nginx")
	h := srv.Accept(0, "127.0.0.1:8080", "127.0.0.1:40000")
	h.Read("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	h.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	srv.Accept(0, "127.0.0.1:8080", "127.0.0.1:40001").Close()
	o := srv.Accept(0, "127.0.0.1:8080", "127.0.0.1:40002")
	o.Read("\x16\x03\x01 not http at all\r\n\r\n")
	o.Write("something else\r\n")
	b.Process(200, "curl").Connect(0, "127.0.0.1:40003", "127.0.0.1:9").Write("hello")
	path := filepath.Join(t.TempDir(), "mixed.rwd")
	b.WriteFile(t, path)
	return path
}

var connsLine = regexp.MustCompile(`connections:? (\d+) \(HTTP (\d+), other (\d+)(?:, no data (\d+))?\)`)

// TestReportConnectionsAddUp: the connections line's parts add up to its
// total; connections that carried no data are counted when there are any
// and not mentioned otherwise, in the text and Markdown reports, and the
// JSON report's counts agree (#20 item 10).
func TestReportConnectionsAddUp(t *testing.T) {
	mixed := mixedConnections(t)
	for _, c := range []struct {
		path, want string
	}{
		{mixed, "connections 4 (HTTP 1, other 2, no data 1)"},
		{"../../testdata/curl-nginx.rwd", ""},
	} {
		var text string
		for _, format := range []string{"text", "markdown"} {
			code, out, errOut := runCLI(t, "analyze", c.path, "-q", "--report", format)
			if code != exitOK {
				t.Fatalf("analyze %s --report %s: exit %d: %s", c.path, format, code, errOut)
			}
			m := connsLine.FindStringSubmatch(out)
			if m == nil {
				t.Errorf("%s --report %s has no connections line:\n%s", c.path, format, out)
				continue
			}
			n := make([]int, 4)
			for i, s := range m[1:] {
				n[i], _ = strconv.Atoi(s)
			}
			if n[0] != n[1]+n[2]+n[3] || (m[4] != "" && n[3] == 0) {
				t.Errorf("%s --report %s: %q does not add up", c.path, format, m[0])
			}
			if format == "text" {
				text = m[0]
				if c.want != "" && text != c.want {
					t.Errorf("%s: %q, want %q", c.path, text, c.want)
				}
			} else if strings.Replace(m[0], "connections:", "connections", 1) != text {
				t.Errorf("%s: Markdown says %q, text %q", c.path, m[0], text)
			}
		}
		_, out, _ := runCLI(t, "analyze", c.path, "-q", "--report", "json")
		var r struct {
			Capture struct {
				Conns      int `json:"conns"`
				HTTPConns  int `json:"http_conns"`
				OtherConns int `json:"other_conns"`
			}
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		js := fmt.Sprintf("connections %d (HTTP %d, other %d", r.Capture.Conns, r.Capture.HTTPConns, r.Capture.OtherConns)
		if !strings.HasPrefix(text, js) {
			t.Errorf("%s: JSON counts %s…), text %q", c.path, js, text)
		}
	}
}

// TestJSONLPcapProcess: exchanges read from a pcap or pcapng have no
// process: their JSON lines carry "pid":0 and "comm":"" and no container,
// as README.md and format/jsonl/SCHEMA.md say, while a capture's carry the
// process (#20 item 9).
func TestJSONLPcapProcess(t *testing.T) {
	for doc, claim := range map[string]string{
		"../../README.md":              "| `pid`, `comm` | the process that spoke (`0` and `\"\"` for pcap input) |",
		"../../format/jsonl/SCHEMA.md": "| `pid` | int | process id; `0` for pcap input |",
	} {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(text), claim) {
			t.Errorf("%s no longer says %q: make this test check what it says now", doc, claim)
		}
	}
	for _, c := range []struct {
		file string
		pid  float64
		comm string
	}{
		{"../../analyze/pcapin/testdata/conversation.pcap", 0, ""},
		{"../../analyze/pcapin/testdata/conversation.pcapng", 0, ""},
		{"../../testdata/curl-nginx.rwd", -1, ""},
	} {
		code, out, errOut := runCLI(t, "analyze", c.file, "-q", "-o", os.DevNull, "--exchanges", "-")
		if code != exitOK || out == "" {
			t.Fatalf("analyze %s: exit %d: %s", c.file, code, errOut)
		}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var e map[string]any
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatal(err)
			}
			pid, hasPID := e["pid"].(float64)
			comm, hasComm := e["comm"].(string)
			_, hasContainer := e["container"]
			switch {
			case !hasPID || !hasComm:
				t.Errorf("%s: a line without pid or comm: %s", c.file, l)
			case c.pid == 0 && (pid != 0 || comm != "" || hasContainer):
				t.Errorf("%s: pcap input, yet pid %v, comm %q, container %v: %s", c.file, pid, comm, hasContainer, l)
			case c.pid < 0 && (pid == 0 || comm == ""):
				t.Errorf("%s: a capture's line without its process: %s", c.file, l)
			}
		}
	}
}
