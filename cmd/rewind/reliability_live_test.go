//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture"
)

// childEnv selects what TestHelperChild does when the test binary runs
// itself as a traced child process.
const childEnv = "REWIND_TEST_CHILD"

// TestHelperChild is not a test: it is the body of child processes that
// the live tests start from their own binary, so that a traced process can
// exit in the middle of an exchange.
func TestHelperChild(t *testing.T) {
	mode, addr, _ := strings.Cut(os.Getenv(childEnv), " ")
	switch mode {
	case "":
		t.Skip("only runs as a child process of a live test")
	case "half-request":
		// Send half a request, then exit without closing the socket.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			os.Exit(3)
		}
		fmt.Fprint(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nhalf of the body")
		time.Sleep(200 * time.Millisecond)
		os.Exit(0)
	case "half-response":
		// Serve one connection: read the request, send half a response,
		// exit.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.Exit(3)
		}
		fmt.Println(ln.Addr())
		c, err := ln.Accept()
		if err != nil {
			os.Exit(3)
		}
		br := bufio.NewReader(c)
		for {
			l, err := br.ReadString('\n')
			if err != nil || l == "\r\n" {
				break
			}
		}
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nhalf of the body")
		time.Sleep(200 * time.Millisecond)
		os.Exit(0)
	}
}

// stopRecord asks record to stop as Ctrl-C would and waits for it.
func stopRecord(t *testing.T, p *recordProc) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGINT)
	if err := p.mustExit(t, 60*time.Second); err != nil {
		t.Fatalf("record: %v\n%s", err, p.stderr)
	}
}

// exchangesOf runs analyze with args and returns its JSON lines.
func exchangesOf(t *testing.T, bin, path string, args ...string) string {
	t.Helper()
	jl := filepath.Join(t.TempDir(), "exchanges.jsonl")
	analyzeBin(t, bin, append([]string{path, "--exchanges", jl}, args...)...)
	b, err := os.ReadFile(jl)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// analyzeBin runs analyze and returns its stdout and stderr.
func analyzeBin(t *testing.T, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"analyze"}, args...)...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("analyze %v: %v\n%s", args, err, e.String())
	}
	return o.String(), e.String()
}

// TestLiveReliability records the faults of issue 10 that need a kernel:
// masking at record time, an overloaded ring buffer, and traced processes
// that exit in the middle of an exchange.
func TestLiveReliability(t *testing.T) {
	bpftest.RequireRoot(t)
	bin := buildRewind(t)
	pid := fmt.Sprint(os.Getpid())

	t.Run("redact", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "redacted.rwd")
		p := startRecordProc(t, bin, "-o", path, "--pid", pid, "--no-tls", "--redact", "--redact-header", "X-Api-Key")
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "srv-s3cret"})
			io.WriteString(w, "ok")
		}))
		for i := 0; i < 20; i++ {
			req, _ := http.NewRequest("GET", srv.URL+"/private", nil)
			req.Header.Set("Authorization", "Bearer cli-s3cret")
			req.Header.Set("X-Api-Key", "key-s3cret")
			req.AddCookie(&http.Cookie{Name: "c", Value: "cookie-s3cret"})
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		srv.Close()
		time.Sleep(300 * time.Millisecond)
		stopRecord(t, p)

		rd := openCapture(t, path)
		if o := rd.Header().Options; !o.Redact || len(o.RedactHeaders) != 5 {
			t.Errorf("header options %+v: want redact with 5 headers", o)
		}
		var data, masked int
		for {
			ev, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if d, ok := ev.(*capture.Data); ok {
				data++
				if strings.Contains(string(d.Payload), "s3cret") {
					t.Fatalf("secret in the capture: %q", d.Payload)
				}
				if strings.Contains(string(d.Payload), ": *****") {
					masked++
				}
			}
		}
		if masked < 40 {
			t.Fatalf("%d data events, %d with masked values: want both directions of 20 exchanges", data, masked)
		}
		j := infoJSONOf(t, bin, path)
		if c := j["unredacted_credentials"].(map[string]any); len(c) != 0 {
			t.Errorf("info reports unredacted credentials in a redacted capture: %v", c)
		}
		out := exchangesOf(t, bin, path, "--no-redact")
		if strings.Count(out, `"/private"`) < 20 {
			t.Errorf("analyze of the redacted capture lost exchanges:\n%s", out)
		}
		t.Logf("redact: %d data events, %d with masked values", data, masked)
	})

	t.Run("overload", func(t *testing.T) {
		// The smallest ring (64 KiB), drained every 50 ms, against bursts
		// of 64 KiB writes from several connections: the kernel must drop
		// records and the capture must say so.
		path := filepath.Join(t.TempDir(), "overload.rwd")
		p := startRecordProc(t, bin, "-o", path, "--pid", pid, "--no-tls", "--ring-size", "64KiB", "--snaplen", "64KiB")
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go io.Copy(io.Discard, c)
			}
		}()
		var wg sync.WaitGroup
		buf := []byte(strings.Repeat("x", 64<<10))
		deadline := time.Now().Add(2 * time.Second)
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					return
				}
				defer c.Close()
				for time.Now().Before(deadline) {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
		}
		wg.Wait()
		ln.Close()
		stopRecord(t, p)
		if !strings.Contains(p.stderr.String(), "lost") {
			t.Errorf("record did not warn about lost events:\n%s", p.stderr)
		}
		j := infoJSONOf(t, bin, path)
		lost := j["lost_events"].(float64)
		if lost == 0 || j["events_by_kind"].(map[string]any)["loss"].(float64) == 0 {
			t.Fatalf("no loss recorded under overload: %v", j)
		}
		text, err := exec.Command(bin, "info", path).Output()
		if err != nil || !strings.Contains(string(text), fmt.Sprintf("lost\t%d events", int(lost))) && !strings.Contains(string(text), fmt.Sprintf("%d events (", int(lost))) {
			t.Errorf("info text does not report %d lost events: %v\n%s", int(lost), err, text)
		}
		out, stderr := analyzeBin(t, bin, path, "--report", "text")
		warn := fmt.Sprintf("lost %d events", int(lost))
		if !strings.Contains(stderr, warn) || !strings.Contains(out, warn) {
			t.Fatalf("analyze does not report %q:\nstdout:\n%s\nstderr:\n%s", warn, out, stderr)
		}
		t.Logf("overload: %d events lost; record said: %s", int(lost), strings.TrimSpace(p.stderr.String()))
	})

	t.Run("exit mid-exchange", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "exit.rwd")
		p := startRecordProc(t, bin, "-o", path, "--pid", pid, "--no-tls")

		// A client that sends half a request and exits.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan int, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- 0
				return
			}
			n, _ := io.Copy(io.Discard, c)
			c.Close()
			got <- int(n)
		}()
		child := exec.Command(os.Args[0], "-test.run", "^TestHelperChild$")
		child.Env = append(os.Environ(), childEnv+"=half-request "+ln.Addr().String())
		if out, err := child.CombinedOutput(); err != nil {
			t.Fatalf("half-request child: %v\n%s", err, out)
		}
		if n := <-got; n == 0 {
			t.Fatal("the server read nothing from the half-request child")
		}
		ln.Close()

		// A server that sends half a response and exits.
		child = exec.Command(os.Args[0], "-test.run", "^TestHelperChild$")
		child.Env = append(os.Environ(), childEnv+"=half-response")
		stdout, _ := child.StdoutPipe()
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		addr, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			t.Fatalf("half-response child: %v", err)
		}
		c, err := net.Dial("tcp", strings.TrimSpace(addr))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, "GET /download HTTP/1.1\r\nHost: x\r\n\r\n")
		io.Copy(io.Discard, c) // ends when the child exits
		c.Close()
		child.Wait()
		time.Sleep(300 * time.Millisecond)
		stopRecord(t, p)

		out := exchangesOf(t, bin, path)
		var upload, download bool
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ex struct {
				Path  string   `json:"path"`
				Flags []string `json:"flags"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ex); err != nil {
				t.Fatalf("exchanges line %q: %v", sc.Text(), err)
			}
			incomplete := strings.Contains(strings.Join(ex.Flags, ","), "incomplete")
			switch ex.Path {
			case "/upload":
				upload = upload || incomplete
			case "/download":
				download = download || incomplete
			}
		}
		if !upload || !download {
			t.Fatalf("want /upload and /download flagged incomplete (upload %v, download %v):\n%s", upload, download, out)
		}
	})
}

// TestLivePrivileges runs record without the capabilities it needs and
// analyze as an unprivileged user.
func TestLivePrivileges(t *testing.T) {
	bpftest.RequireRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		bpftest.Unavailable(t, "setpriv (util-linux) is not installed")
	}
	// A directory that user nobody can read: the binary and a capture.
	dir, err := os.MkdirTemp("", "rewind-priv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "rewind")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sample, err := os.ReadFile(filepath.Join("..", "..", "testdata", "sample.rwd"))
	if err != nil {
		t.Fatal(err)
	}
	capPath := filepath.Join(dir, "sample.rwd")
	if err := os.WriteFile(capPath, sample, 0o644); err != nil {
		t.Fatal(err)
	}
	nobody := []string{"--reuid=65534", "--regid=65534", "--clear-groups"}

	for _, tc := range []struct {
		name    string
		setpriv []string
		missing string
	}{
		{"nobody", nobody, "missing CAP_BPF and CAP_PERFMON"},
		{"root without capabilities", []string{"--inh-caps=-all", "--bounding-set=-all"}, "missing CAP_BPF and CAP_PERFMON"},
		{"CAP_BPF only", []string{"--inh-caps=-all", "--bounding-set=-all,+bpf"}, "missing CAP_PERFMON"},
		{"CAP_PERFMON only", []string{"--inh-caps=-all", "--bounding-set=-all,+perfmon"}, "missing CAP_BPF "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := append(append([]string{}, tc.setpriv...), bin, "record", "-o", filepath.Join(dir, "x.rwd"), "--duration", "1s")
			cmd := exec.CommandContext(ctx, "setpriv", args...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("setpriv %v: want exit code 1, got %v\n%s", tc.setpriv, err, out)
			}
			if !strings.Contains(string(out), tc.missing) {
				t.Fatalf("message does not say %q:\n%s", tc.missing, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "x.rwd")); err == nil {
				t.Error("a capture file was created without privileges")
			}
		})
	}

	t.Run("analyze as nobody", func(t *testing.T) {
		args := append(append([]string{}, nobody...), bin, "analyze", capPath, "--report", "json")
		out, err := exec.Command("setpriv", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("analyze as uid 65534: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), `"exchanges"`) {
			t.Fatalf("analyze as uid 65534 printed no report:\n%s", out)
		}
	})
}
