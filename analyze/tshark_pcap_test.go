package analyze_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
)

// TestPcapAgreesWithTshark captures real loopback HTTP traffic with tcpdump
// and checks that rewind finds the exchanges tshark finds: same count, URIs
// and status codes.
func TestPcapAgreesWithTshark(t *testing.T) {
	bpftest.RequireRoot(t)
	for _, tool := range []string{"tcpdump", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			bpftest.Unavailable(t, tool+" is not installed (scripts/test-setup.sh installs it)")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		if code < 200 || code > 599 {
			code = 200
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "hello %s\n", r.URL.Path)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	var want, got []string
	for attempt := 1; attempt <= 3; attempt++ {
		want, got = captureAndCompare(t, port, attempt)
		if len(want) == 50 {
			break
		}
		// A capture that missed packets (a busy machine) is retried: the
		// comparison is only meaningful on a whole capture.
		t.Logf("attempt %d: tshark saw %d of 50 responses; capturing again", attempt, len(want))
	}
	sort.Strings(want)
	sort.Strings(got)
	if len(want) == 50 {
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("rewind and tshark differ:\nrewind %d: %v\ntshark %d: %v", len(got), got, len(want), want)
		}
	} else {
		// Narrowed: on a capture that missed packets, rewind recovers what it
		// can mid-stream, so it may find more than tshark; it must find
		// everything tshark finds.
		t.Logf("the capture stayed incomplete (%d of 50 responses): checking only that rewind finds all tshark finds", len(want))
		left := map[string]int{}
		for _, g := range got {
			left[g]++
		}
		for _, w := range want {
			if left[w] == 0 {
				t.Errorf("tshark found %q, rewind did not (rewind: %v)", w, got)
			}
			left[w]--
		}
	}
	t.Logf("tshark and rewind: %d and %d exchanges", len(want), len(got))
}

// captureAndCompare runs one capture; it returns tshark's and rewind's
// (status, target) lists.
func captureAndCompare(t *testing.T, port, attempt int) (want, got []string) {
	file := filepath.Join(t.TempDir(), fmt.Sprintf("live%d.pcap", attempt))
	dump := exec.Command("tcpdump", "-Z", "root", "--immediate-mode", "-i", "lo", "-s", "0", "-U", "-w", file, "tcp port "+strconv.Itoa(port))
	stderr := &lockedBuilder{}
	dump.Stderr = stderr
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && !strings.Contains(stderr.String(), "listening"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // "listening" comes a little before the capture is live

	// 50 requests over keep-alive and fresh connections, some errors.
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 50; i++ {
		path := fmt.Sprintf("/item/%d", i)
		if i%7 == 3 {
			path = "/status/404"
		} else if i%11 == 5 {
			path = "/status/503"
		}
		if i%10 == 9 {
			client.CloseIdleConnections()
		}
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	client.CloseIdleConnections()
	time.Sleep(500 * time.Millisecond)
	dump.Process.Signal(os.Interrupt)
	dump.Wait()
	if st, err := os.Stat(file); err != nil || st.Size() <= 24 {
		t.Fatalf("tcpdump captured nothing (%v): %s", err, stderr)
	}

	out, err := exec.Command("tshark", "-r", file, "-d", fmt.Sprintf("tcp.port==%d,http", port), "-Y", "http.response", "-T", "fields",
		"-e", "http.response.code", "-e", "http.response_for.uri").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "\t")
		if len(f) == 2 {
			// response_for.uri is absolute: keep the path.
			u := f[1]
			if i := strings.Index(u, "://"); i >= 0 {
				if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
					u = u[i+3+j:]
				}
			}
			want = append(want, f[0]+" "+u)
		}
	}
	for _, e := range replayFile(t, file) {
		got = append(got, strconv.Itoa(e.Response.Status)+" "+e.Request.Target)
	}
	return want, got
}

// lockedBuilder is a strings.Builder that a command may write to while the
// test reads it.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
