package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/capture/capturetest"
)

func TestSLOExitCodes(t *testing.T) {
	const sample = "../../testdata/sample.rwd"
	code, out, errOut := runCLI(t, "analyze", sample, "--quiet", "--slo", "availability>=99.9%,p99<1s")
	if code != 3 || !strings.Contains(errOut, "objective violated: availability>=99.9%") || !strings.Contains(out, "VIOLATED") {
		t.Errorf("violated: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "analyze", sample, "--quiet", "--slo", "availability>=90%,GET /api/users/{id}:p99<50ms"); code != 0 {
		t.Errorf("met: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "analyze", sample, "--quiet", "--slo", "availability>=99.9%,p99<300")
	if code != 2 || !strings.Contains(errOut, `"300"`) {
		t.Errorf("bad objective: exit %d, stderr %q", code, errOut)
	}
	code, out, _ = runCLI(t, "analyze", sample, "--quiet", "--report", "json", "--slo", "error_rate<1%", "--apdex-t", "5ms", "--bucket", "10ms")
	var doc struct {
		Objectives []struct{ Status string }
		ApdexT     int64 `json:"apdex_t_ns"`
		Series     struct {
			BucketNS int64 `json:"bucket_ns"`
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 3 || len(doc.Objectives) != 1 ||
		doc.Objectives[0].Status != "violated" || doc.ApdexT != 5e6 || doc.Series.BucketNS != 1e7 {
		t.Errorf("json: exit %d %v %+v", code, err, doc)
	}
	if code, _, _ := runCLI(t, "analyze", sample, "--route", "users/{id}"); code != 2 {
		t.Errorf("bad --route: exit %d", code)
	}
	code, out, _ = runCLI(t, "analyze", sample, "--quiet", "--route", "/api/*", "--report", "markdown")
	if code != 0 || !strings.Contains(out, "/api/*`") || strings.Contains(out, "{id}") {
		t.Errorf("--route: exit %d\n%s", code, out)
	}
}

func TestDiff(t *testing.T) {
	const a, b = "../../testdata/sample.rwd", "../../testdata/curl-nginx.rwd"
	code, out, errOut := runCLI(t, "diff", a, a, "--fail-on", "any")
	if code != 0 || !strings.Contains(out, "0 regressions") {
		t.Errorf("same capture: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "diff", a, b, "--report", "json", "--fail-on", "vanished")
	var d struct {
		SchemaVersion int `json:"schema_version"`
		Endpoints     []struct {
			Path, Status string
			Regressions  []string
		}
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || code != 3 || d.SchemaVersion != 1 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	statuses := map[string]bool{}
	for _, e := range d.Endpoints {
		statuses[e.Status] = true
	}
	if !statuses["new"] || !statuses["vanished"] {
		t.Errorf("statuses %v", statuses)
	}
	if code, _, _ := runCLI(t, "diff", a, b, "--fail-on", "latency"); code != 2 {
		t.Errorf("bad --fail-on: exit %d", code)
	}
	if code, _, _ := runCLI(t, "diff", a, b, "--max-p99-increase", "lots"); code != 2 {
		t.Errorf("bad threshold: exit %d", code)
	}
	if code, _, _ := runCLI(t, "diff", a); code != 2 {
		t.Errorf("one capture: exit %d", code)
	}
}

// TestDiffMergesProcesses: a service is every process of its name, so 70
// curl runs are compared as one client with 70 exchanges, not as the first
// pid's one (#19 item 4).
func TestDiffMergesProcesses(t *testing.T) {
	b := capturetest.New()
	for i := range 70 {
		c := b.Process(uint32(1000+i), "curl").Connect(3, fmt.Sprintf("127.0.0.1:%d", 40000+i), "127.0.0.1:8080")
		c.Write("GET /a HTTP/1.1\r\nHost: example\r\n\r\n")
		c.Read("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		c.Close()
	}
	path := filepath.Join(t.TempDir(), "curls.rwd")
	b.WriteFile(t, path)
	code, out, errOut := runCLI(t, "diff", path, path, "--format", "json")
	var d struct {
		Endpoints []struct {
			Service, Role, Path string
			A                   struct{ Count int }
		}
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || code != 0 {
		t.Fatalf("exit %d, %v: %s %s", code, err, out, errOut)
	}
	for _, e := range d.Endpoints {
		if e.Role == "client" && e.Path == "/a" {
			if e.Service != "curl" || e.A.Count != 70 {
				t.Errorf("client /a: service %q with %d exchanges, want curl with 70", e.Service, e.A.Count)
			}
			return
		}
	}
	t.Fatalf("no client /a endpoint: %s", out)
}

// TestSLONoData: an objective with nothing to measure fails the gate and
// says why (a scope matching no endpoint is named), unless
// --slo-no-data=pass (#19 item 6).
func TestSLONoData(t *testing.T) {
	const sample = "../../testdata/sample.rwd"
	code, _, errOut := runCLI(t, "analyze", sample, "-q", "-o", os.DevNull, "--slo", "GET /nope:p99<1ms")
	if code != exitSLO || !strings.Contains(errOut, "GET /nope:p99<1ms: its scope matches no endpoint") {
		t.Errorf("unmatched scope: exit %d, %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "analyze", sample, "-q", "-o", os.DevNull, "--slo", "GET /nope:p99<1ms", "--slo-no-data", "pass")
	if code != exitOK || !strings.Contains(errOut, "objective without data") {
		t.Errorf("--slo-no-data pass: exit %d, %q", code, errOut)
	}
	if code, _, _ := runCLI(t, "analyze", sample, "--slo-no-data", "maybe"); code != exitUsage {
		t.Errorf("--slo-no-data maybe: exit %d, want 2", code)
	}
}

// TestDiffMatchesByServiceAndRoute: a server that comes back on another
// port is the same service; its slower p99 is a regression the gate sees,
// and the output says how endpoints were matched (#19 item 5).
func TestDiffMatchesByServiceAndRoute(t *testing.T) {
	build := func(port int, step time.Duration) string {
		b := capturetest.New()
		b.SetStep(step)
		c := b.Process(100, "api").Accept(3, fmt.Sprintf("127.0.0.1:%d", port), "127.0.0.1:40000")
		for i := range 40 {
			c.Read(fmt.Sprintf("GET /users/%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", i, port))
			c.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		c.Close()
		path := filepath.Join(t.TempDir(), fmt.Sprintf("api-%d.rwd", port))
		b.WriteFile(t, path)
		return path
	}
	a, b := build(8080, time.Millisecond), build(9090, 20*time.Millisecond)
	code, out, errOut := runCLI(t, "diff", a, b, "--fail-on", "p99")
	if code != exitSLO || !strings.Contains(out, "endpoints: 0 new, 0 vanished, matched by service, method and route") {
		t.Errorf("default matching: exit %d (want 3: p99 regressed)\n%s%s", code, out, errOut)
	}
	// By Host, the server address is part of the service too (as analyze
	// groups it): the service and its endpoint are on one side each, so
	// no p99 is compared.
	code, out, _ = runCLI(t, "diff", a, b, "--match-host", "--fail-on", "p99")
	if code != exitOK || !strings.Contains(out, "endpoints: 2 new, 2 vanished, matched by service, method, Host and route") {
		t.Errorf("--match-host: exit %d\n%s", code, out)
	}
	if code, out, _ := runCLI(t, "diff", a, b, "--match-host", "--fail-on", "vanished"); code != exitSLO {
		t.Errorf("--match-host, --fail-on vanished: exit %d, want 3\n%s", code, out)
	}
}
