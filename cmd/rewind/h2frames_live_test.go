//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture/record"
)

// goTLSUploads is the workload of TestLiveH2BigFrames: request i is a GET
// for even i and a POST of goTLSUploadSize(i) bytes for odd i.
const goTLSUploads = 50

func goTLSUploadSize(i int) int { return (i * 2000) % (48 << 10) }

// goTLSServer serves HTTP/2 over TLS (Go's crypto/tls and net/http): it
// reads each request's body and answers with its length.
func goTLSServer(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d\n", n)
	}))
	srv.Listener = ln
	srv.EnableHTTP2 = true
	srv.StartTLS()
	fmt.Println("ready")
	select {}
}

// goTLSClient makes the goTLSUploads requests over one HTTP/2 connection.
// Go writes full 16,384-byte DATA frames: 16,393-byte writes, just over
// the recorder's default snaplen.
func goTLSClient(addr string) {
	time.Sleep(time.Second) // the recorder attaches to a new program within about 100 ms
	cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true,
	}}
	for i := 0; i < goTLSUploads; i++ {
		url := fmt.Sprintf("https://%s/up?i=%d", addr, i)
		var resp *http.Response
		var err error
		if i%2 == 0 {
			resp, err = cl.Get(url)
		} else {
			resp, err = cl.Post(url, "application/octet-stream", bytes.NewReader(make([]byte, goTLSUploadSize(i))))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "client:", err)
			os.Exit(1)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			fmt.Fprintln(os.Stderr, "client: not HTTP/2:", resp.Proto)
			os.Exit(1)
		}
	}
	fmt.Println("done")
}

// TestLiveH2BigFrames records a Go HTTP/2-over-TLS client uploading bodies
// of up to 48 KB to a Go server at the default snaplen (16 KiB). The
// client's 16,393-byte writes of full DATA frames are cut: each cut is a
// gap of known size inside a DATA frame, which must cost the payload bytes
// only. Both sides: every request, exact body lengths, no desynced or
// incomplete rows; the cut ones flagged truncated.
func TestLiveH2BigFrames(t *testing.T) {
	bpftest.RequireRoot(t)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	env := append(os.Environ(), "REWIND_H2_ADDR="+addr)
	srv := exec.Command(os.Args[0])
	srv.Env = append(env, workloadEnv+"=gotls-server")
	startChild(t, srv, "ready")
	rec := startRecording(t, record.Options{Ports: []int{port}, TLS: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli := exec.CommandContext(ctx, os.Args[0])
	cli.Env = append(env, workloadEnv+"=gotls-client")
	if out, err := cli.CombinedOutput(); err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	rec.stop()
	exs, sum := replayFile(t, rec.path)
	server, client := byPID(exs, srv.Process.Pid, cli.Process.Pid)
	for side, got := range map[string][]*analyze.Exchange{"server": server, "client": client} {
		seen, truncated := map[int]bool{}, 0
		for _, e := range got {
			i, err := strconv.Atoi(e.Request.Query[len("i="):])
			if e.Proto != "HTTP/2" || e.Request.Path != "/up" || err != nil || e.Response.Status != 200 {
				t.Errorf("%s: %s %s %s -> %d flags %v: not one of the requests", side, e.Proto, e.Request.Method, e.Request.Target, e.Response.Status, e.Flags.Names())
				continue
			}
			want := int64(0)
			if i%2 == 1 {
				want = int64(goTLSUploadSize(i))
			}
			if e.Request.BodyBytes != want && !(want == 0 && e.Request.BodyBytes == -1) {
				t.Errorf("%s: request %d: body %d bytes, want %d (flags %v)", side, i, e.Request.BodyBytes, want, e.Flags.Names())
			}
			if e.Flags&(analyze.FlagDesynced|analyze.FlagIncomplete) != 0 {
				t.Errorf("%s: request %d: flags %v", side, i, e.Flags.Names())
			}
			if e.Flags&analyze.FlagTruncated != 0 {
				truncated++
			}
			seen[i] = true
		}
		if len(seen) != goTLSUploads || len(got) != goTLSUploads {
			t.Errorf("%s: %d exchanges for %d of the %d requests (warnings %v)", side, len(got), len(seen), goTLSUploads, sum.Warnings)
		}
		t.Logf("%s: %d exchanges, %d flagged truncated", side, len(got), truncated)
	}
}
